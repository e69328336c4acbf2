"""Best-of-N hyperparameter search (`--hpo_trials N`) against the recipe's default settings, on sentiment
(vader-movies) and text_classification (pubmed-pubtype).

    .venv/bin/python -m benchmarks.bench_hpo                      # the measured run: ~45 min, idle 2-core CPU
    .venv/bin/python -m benchmarks.bench_hpo --quick              # smoke test: 2 trials on tiny data, ~5 min idle
    .venv/bin/python -m benchmarks.bench_hpo --trials 12 --seeds 3 --out outputs/bench-hpo-12 -- --max_train_samples 1600
    .venv/bin/python -m benchmarks.bench_hpo --render_only

Per task: the recipe with its defaults at seeds 42, 43, ... (one process each); the search with
`--hpo_trials N --seed 42` (trials tuned on the validation split; the best trial retrained and tested: seed
42 of the tuned row); the best trial's settings retrained at the other seeds (the same flags, no search).
Test metric: sentiment movies micro-F1, pubmed-pubtype macro-F1 (the in-domain test split, never seen by the
search). Every run of a task gets the same budget flags (`BUDGET`, or `QUICK` with --quick); extra recipe
flags after `--` (e.g. `--strategy lora`) are appended to every run and win over the budget.

Default budget (N=8 trials, 5 seeds; the search space is the strategy's in recipes/hpo_space.yaml):
- sentiment: 800 training snippets, 500 rows per evaluated split, the recipe's YAML otherwise (lr 5e-5,
  2 epochs, batch 32, warmup 0.1, weight decay 0.01; `--min_train_steps 0`, so the default stays 2 epochs):
  ~25 steps per epoch of about 1 s.
- pubmed-pubtype: 400 training abstracts, 300 per evaluated split, 96 tokens (the YAML otherwise: lr 5e-5,
  2 epochs, batch 16, best epoch by validation macro-F1): ~25 steps per epoch of about 0.8 s.
- processes: per task 5 default runs, 1 search (8 trials of 1-4 epochs, some pruned, then the retrain), 4
  retrains at seeds 43-46: measured 44.5 minutes in all on an idle 2-core machine (sentiment: 1.3 min per
  run, 7.4 min search; pubmed-pubtype: 1.9 min, 11.0 min search); results.md reports every process's wall time.
Runs go one after another; results are saved after each run, so an interrupted benchmark resumes where it
stopped (only runs with the same flags and trials count as done).

Output: <out>/results.json (every run) and <out>/results.md: mean +- std over seeds of default and tuned,
their paired difference (same seeds) with a paired t-test, the search's wall time and the chosen settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from scipy import stats

from benchmarks.recipe_process import run_recipe
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

# task -> (recipe, dataset, the test metric read from metrics.json)
TASKS = {
    "sentiment": ("sentiment", "vader-movies", lambda m: m["test"]["vader-movies"]["f1_micro"]),
    "pubmed-pubtype": ("text_classification", "pubmed-pubtype", lambda m: m["test"]["f1_macro"]),
}
METRIC = {"sentiment": "movies micro-F1", "pubmed-pubtype": "macro-F1"}
FIRST_SEED = 42
# The budget of every run of a task (see the module doc); --quick: a smoke test of the whole pipeline.
BUDGET = {
    "sentiment": ["--max_train_samples", "800", "--max_eval_samples", "500", "--min_train_steps", "0"],
    "pubmed-pubtype": ["--max_train_samples", "400", "--max_eval_samples", "300", "--max_length", "96"]
    + ["--min_train_steps", "0"],
}
QUICK = {
    "sentiment": ["--max_train_samples", "64", "--max_eval_samples", "48", "--max_length", "32"]
    + ["--min_train_steps", "0"],
    "pubmed-pubtype": ["--max_train_samples", "48", "--max_eval_samples", "48", "--max_length", "48"]
    + ["--min_train_steps", "0", "--per_device_eval_batch_size", "48"],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--trials", type=int, default=None, help="N of --hpo_trials (default 8; --quick: 2)")
    p.add_argument(
        "--seeds", type=int, default=None, help="seeds of default and tuned (default 5; --quick: 1)"
    )
    p.add_argument("--quick", action="store_true", help="smoke test: 2 trials, 1 seed, tiny data (QUICK)")
    p.add_argument("--out", default=None, help="default outputs/bench-hpo (--quick: outputs/bench-hpo-quick)")
    p.add_argument("--render_only", action="store_true")
    p.add_argument("recipe_flags", nargs=argparse.REMAINDER, help="after --: extra recipe flags, every run")
    args = p.parse_args(argv)
    args.recipe_flags = [f for f in args.recipe_flags if f != "--"]
    args.trials = args.trials or (2 if args.quick else 8)
    args.seeds = args.seeds or (1 if args.quick else 5)
    args.out = args.out or ("outputs/bench-hpo-quick" if args.quick else "outputs/bench-hpo")
    if args.trials < 1 or args.seeds < 1:
        p.error("--trials and --seeds must be >= 1")
    return args


def task_flags(args, task: str) -> list[str]:
    """The flags of every run of `task`: its budget, then the user's extra flags (the last value wins)."""
    return [*(QUICK if args.quick else BUDGET)[task], *args.recipe_flags]


def run_one(out: Path, task: str, kind: str, seed: int, flags: list[str], extra: list[str]) -> dict:
    """One recipe process (`kind`: default, search, retrain); its test metric, time and settings. `flags`:
    the task's budget (what makes runs comparable, recorded); `extra`: this kind's own flags."""
    recipe, dataset, metric = TASKS[task]
    run_dir = out / "runs" / f"{task}-{kind}-seed{seed}"
    cmd = [sys.executable, "-m", f"nlptransfer.recipes.{recipe}", "--dataset", dataset, "--seed", str(seed)]
    cmd += ["--output_dir", str(run_dir), "--overwrite_output_dir", "true", *flags, *extra]
    process = run_recipe(cmd, out / "logs" / f"{run_dir.name}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "task": task,
        "kind": kind,
        "seed": seed,
        "flags": flags,
        "test": metric(metrics),
        "validation_f1_macro": (metrics.get("validation") or {}).get("f1_macro"),
        "train_seconds": metrics["train"].get("wall_seconds"),
        "hpo": metrics.get("hpo"),
        **process,
    }


def best_flags(search: dict) -> list[str]:
    """The search's best settings as recipe flags (the retrain at other seeds)."""
    flags = []
    for key, value in search["hpo"]["best_params"].items():
        flags += [f"--{key}", str(value)]
    return flags


def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}" if values else "-"


def render(results: list[dict], trials: int, flags: str) -> str:
    rows = []
    for task in TASKS:
        default = {r["seed"]: r["test"] for r in results if r["task"] == task and r["kind"] == "default"}
        tuned = {
            r["seed"]: r["test"] for r in results if r["task"] == task and r["kind"] in ("search", "retrain")
        }
        search = next((r for r in results if r["task"] == task and r["kind"] == "search"), None)
        if not default and not tuned:
            continue
        paired = [(tuned[s], default[s]) for s in sorted(default) if s in tuned]
        row = {
            "task": task,
            "test metric": METRIC[task],
            "default": _mean_std(list(default.values())),
            f"best of {trials}": _mean_std(list(tuned.values())),
        }
        if paired:
            a, b = zip(*paired, strict=True)
            diff = f"{statistics.mean(a) - statistics.mean(b):+.4f}"
            if len(paired) > 1:
                diff += f" (p={stats.ttest_rel(a, b).pvalue:.2g}, n={len(paired)})"
            row["tuned - default"] = diff
        runs = [r["process_seconds"] for r in results if r["task"] == task and r["kind"] != "search"]
        row["run min"] = f"{statistics.mean(runs) / 60:.1f}" if runs else "-"
        if search is not None:
            hpo = search["hpo"]
            row["search min"] = f"{search['process_seconds'] / 60:.1f}"
            row["pruned"] = f"{hpo['pruned']}/{hpo['trials']}"
            row["chosen"] = ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in hpo["best_params"].items()
            )
        rows.append(row)
    loads = [r["load_before"] for r in results] or [0.0]
    total = sum(r["process_seconds"] for r in results) / 60
    head = (
        f"# Best of {trials} trials (--hpo_trials) vs the recipe's defaults\n\n"
        f"{len(results)} runs, one at a time, {total:.1f} min in all; load average before each run "
        f"{min(loads):.2f}-{max(loads):.2f}; flags of every run: {flags}.\nTest metric mean ± std over seeds; "
        "the difference is paired by seed (paired t-test); `run min`: one default or retrain process; "
        "`search min`: the whole search + retrain process.\n\n"
    )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return head + markdown_table(rows, columns) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    saved = json.loads(path.read_text()) if path.exists() else []
    # Only runs of this budget and N count (an earlier benchmark in `out` with other flags is kept aside).
    mine = {task: task_flags(args, task) for task in args.tasks}
    results = [r for r in saved if mine.get(r["task"]) == r.get("flags") and _same_n(r, args.trials)]
    others = [r for r in saved if r not in results]
    flags_shown = " | ".join(f"{task}: {' '.join(flags)}" for task, flags in mine.items())

    def record(result: dict) -> dict:
        if result["kind"] != "default":
            result["trials"] = args.trials
        results.append(result)
        write_json_atomic(path, others + results)
        write_text_atomic(out / "results.md", render(results, args.trials, flags_shown))
        return result

    if not args.render_only:
        done = {(r["task"], r["kind"], r["seed"]): r for r in results}
        seeds = [FIRST_SEED + i for i in range(args.seeds)]
        for task in args.tasks:
            flags = mine[task]
            for seed in seeds:
                if (task, "default", seed) not in done:
                    print(f"{task} default seed={seed} ...", flush=True)
                    record(run_one(out, task, "default", seed, flags, []))
            search = done.get((task, "search", FIRST_SEED))
            if search is None:
                print(f"{task} search: {args.trials} trials, seed={FIRST_SEED} ...", flush=True)
                trials = ["--hpo_trials", str(args.trials)]
                search = record(run_one(out, task, "search", FIRST_SEED, flags, trials))
            for seed in seeds[1:]:
                if (task, "retrain", seed) not in done:
                    print(f"{task} best settings seed={seed} ...", flush=True)
                    record(run_one(out, task, "retrain", seed, flags, best_flags(search)))
    write_text_atomic(out / "results.md", render(results, args.trials, flags_shown))
    print(render(results, args.trials, flags_shown))


def _same_n(result: dict, trials: int) -> bool:
    """A default run serves any N; a search or retrain only its own."""
    if result["kind"] == "default":
        return True
    return result.get("trials") == trials


if __name__ == "__main__":
    main()
