"""Every transfer strategy side by side on the sentiment recipe: vader-movies -> four test halves, seeds.

    .venv/bin/python -m benchmarks.bench_strategies                                   # the measured run
    .venv/bin/python -m benchmarks.bench_strategies --strategies full lora frozen --seeds 3
    .venv/bin/python -m benchmarks.bench_strategies --strategies lora --pooling pooler mean   # which pooling
    .venv/bin/python -m benchmarks.bench_strategies --render_only --out outputs/bench-strategies

Each (strategy, pooling, seed) is one `python -m nlptransfer.recipes.sentiment` process with the recipe's
defaults (recipes/sentiment/minilm_full.yaml: 2 epochs of the movies training half, batch 32) and the
strategy's own defaults (recipes/strategy_defaults.yaml), so every row is what a user gets from
`--strategy X`; extra recipe flags go after `--`. Measured per run: trainable parameters, training wall time
(the Trainer's, feature extraction included for cached frozen features), peak resident memory of the
process (os.wait4), micro- and macro-F1 on the four test halves. Runs go one after another (never two
at once: on 2 cores they would thrash); results are saved after every run, so an interrupted benchmark
resumes where it stopped (finished runs are skipped).

Output: <out>/results.json (every run) and <out>/results.md: mean +- std over seeds, and per strategy a
paired t-test against `full` on movies micro-F1 (same seeds = same data order and head init).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from scipy import stats

from benchmarks.recipe_process import mean_std, run_recipe
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

DOMAINS = ("vader-movies", "vader-tweets", "vader-amazon", "vader-nyt")
SHORT = {"vader-movies": "movies", "vader-tweets": "tweets", "vader-amazon": "amazon", "vader-nyt": "nyt"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", nargs="+", default=["full", "lora", "frozen"])
    p.add_argument("--pooling", nargs="+", default=["auto"], help="poolings to try per strategy")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="outputs/bench-strategies")
    p.add_argument("--render_only", action="store_true")
    p.add_argument("recipe_flags", nargs=argparse.REMAINDER, help="after --: extra sentiment recipe flags")
    args = p.parse_args(argv)
    args.recipe_flags = [f for f in args.recipe_flags if f != "--"]
    return args


def run_one(out: Path, strategy: str, pooling: str, seed: int, flags: list[str]) -> dict:
    """One recipe process; its metrics, wall time and peak memory."""
    run_dir = out / "runs" / f"{strategy}-{pooling}-seed{seed}"
    cmd = [sys.executable, "-m", "nlptransfer.recipes.sentiment", "--strategy", strategy, "--seed", str(seed)]
    cmd += ["--output_dir", str(run_dir), "--overwrite_output_dir", "true", *flags]
    if pooling != "auto":
        cmd += ["--pooling", pooling]
    process = run_recipe(cmd, out / "logs" / f"{run_dir.name}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = (run_dir / "config.yaml").read_text()
    return {
        "strategy": strategy,
        "pooling": pooling,
        "seed": seed,
        "test": {d: metrics["test"][d] for d in DOMAINS if d in metrics["test"]},
        "validation": metrics.get("validation", {}),
        "trainable_parameters": metrics["trainable_parameters"],
        "total_parameters": metrics["total_parameters"],
        "train_seconds": metrics["train"].get("wall_seconds"),
        **process,
        "config": config,
    }


def render(results: list[dict]) -> str:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["strategy"], r["pooling"]), []).append(r)
    # the baseline: full fine-tuning with the pooling `auto` picks for it (the pretrained pooler)
    full = {r["seed"]: r for r in results if r["strategy"] == "full" and r["pooling"] in ("auto", "pooler")}
    rows = []
    for (strategy, pooling), runs in groups.items():
        row = {"strategy": strategy, "pooling": pooling, "seeds": len(runs)}
        row["trainable"] = f"{statistics.mean(r['trainable_parameters'] for r in runs) / 1e6:.3f}M"
        row["train min"] = f"{statistics.mean(r['train_seconds'] for r in runs) / 60:.1f}"
        row["peak RSS MB"] = f"{max(r['peak_rss_mb'] for r in runs):.0f}"
        for d in DOMAINS:
            row[f"{SHORT[d]} micro-F1"] = mean_std([r["test"][d]["f1_micro"] for r in runs if d in r["test"]])
        row["movies macro-F1"] = mean_std([r["test"]["vader-movies"]["f1_macro"] for r in runs])
        paired = [
            (r["test"]["vader-movies"]["f1_micro"], full[r["seed"]]["test"]["vader-movies"]["f1_micro"])
            for r in runs
            if r["seed"] in full
        ]
        if strategy != "full" and len(paired) >= 2:
            a, b = zip(*paired, strict=True)
            diff = statistics.mean(a) - statistics.mean(b)
            p = stats.ttest_rel(a, b).pvalue
            row["vs full (movies)"] = f"{diff:+.3f} (p={p:.2g})"
        else:
            row["vs full (movies)"] = "-"
        rows.append(row)
    loads = [r["load_before"] for r in results]
    head = (
        "# Transfer strategies on the sentiment recipe (vader-movies -> 4 test halves)\n\n"
        f"{len(results)} runs, one at a time; load average before each run {min(loads):.2f}-{max(loads):.2f}.\n"
        "micro-F1 mean ± std over seeds; `vs full`: paired difference in movies micro-F1 and paired t-test.\n\n"
    )
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return head + markdown_table(rows, columns) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    if not args.render_only:
        done = {(r["strategy"], r["pooling"], r["seed"]) for r in results}
        for seed in range(args.seeds):  # seed-major: every strategy has seed 0 before any has seed 1
            for strategy in args.strategies:
                for pooling in args.pooling:
                    if (strategy, pooling, seed) in done:
                        continue
                    print(f"{strategy} pooling={pooling} seed={seed} ...", flush=True)
                    results.append(run_one(out, strategy, pooling, seed, args.recipe_flags))
                    write_json_atomic(path, results)
                    write_text_atomic(out / "results.md", render(results))
    write_text_atomic(out / "results.md", render(results))
    print(render(results))


if __name__ == "__main__":
    main()
