"""Continued pretraining curve (issue 19): pubmed-pubtype macro-F1 after 0, N, 2N, 4N masked-LM steps of TAPT
and of DAPT, 3 fine-tuning seeds, the same fine-tuning budget; one recipe process per run.

    .venv/bin/python -m benchmarks.bench_dapt                      # 0/200/400/800 steps (~70 min, quiet 2-core CPU)
    .venv/bin/python -m benchmarks.bench_dapt --steps 0 200 400 800 1600   # one more point; the others are reused
    .venv/bin/python -m benchmarks.bench_dapt --quick              # smoke test: 8 tiny runs
    .venv/bin/python -m benchmarks.bench_dapt --render_only --out outputs/bench-dapt

Protocol:
- pretraining: `python -m nlptransfer.recipes.domain_pretraining --config <the corpus's YAML> --max_steps S`
  (`PRETRAIN`): TAPT = recipes/domain_pretraining/minilm_pubmed_tapt.yaml (the pubmed-pubtype *training*
  abstracts, split as the classifier splits them), DAPT = minilm_pubmed_dapt.yaml (`pubmed-abstracts-
  unindexed`: none is a pubmed-pubtype text). Both: MiniLM's new MLM head warmed up alone first (encoder
  frozen, the YAML's head_warmup_steps), 128-token packed blocks, batch 16, pretraining seed 42; one
  pretraining run per (corpus, S), its own linear schedule over S steps. S = 0 is the base MiniLM.
- fine-tuning: `python -m nlptransfer.recipes.text_classification --dataset pubmed-pubtype` from the
  pretrained folder, a fixed budget without model selection (`finetune_flags`: --train stratified training
  abstracts, --epochs epochs, --max_length tokens, --learning_rate, the recipe's batch 16 and class weights),
  tested on the recipe's stratified --test-abstract test sample; seeds 0..--seeds-1 change the head init and
  data order and pair the runs: the same seed fine-tunes every pretrained model on the same examples in the
  same order. The fine-tuning abstracts are among TAPT's training texts (that is TAPT); no test text is.
- N (`N_STEPS` = 200) sizes the default to about 70 minutes on a quiet 2-core CPU (`ESTIMATE`); add points
  later (`--steps 0 200 400 800 1600`): finished runs are reused.
Runs go one after another (never two at once on 2 cores), the curve filled from the left (0 steps first);
results.json is rewritten after every run, so an interrupted benchmark resumes where it stopped (runs made with
other settings in the same --out are refused). Extra pretraining flags go after `--` (e.g. `-- --block_size
64`).

Output: <out>/results.json (every run: scores, perplexities, wall times, peak memory) and <out>/results.md:
per corpus and step count, macro-F1 mean ± std over seeds, the paired difference to 0 steps with a paired
t-test, the held-out masked-LM perplexity before / after the head warm-up / after, and pretraining minutes.
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

BASE = "sentence-transformers/all-MiniLM-L6-v2"
PRETRAIN = {
    "tapt": "recipes/domain_pretraining/minilm_pubmed_tapt.yaml",
    "dapt": "recipes/domain_pretraining/minilm_pubmed_dapt.yaml",
}
# Steps of the first point of the curve: 0, N, 2N, 4N = 0/200/400/800, the points measured for TAPT (README).
# Measured 2026-12-01 on the idle 2-core CPU: 800 masked-LM steps (16 x 128 tokens) + 50 warm-up steps + three
# held-out measurements 12.3 min (~1.2 steps/s), a fine-tune + test ~1.0 min. Default: 21 fine-tunes x ~1.1 min +
# 6 pretraining runs (7N = 1,400 steps per corpus, ~22 min) = about 65-70 minutes (`ESTIMATE`).
N_STEPS = 200
ESTIMATE = "about 65-70 minutes on a quiet 2-core CPU (2-3x longer on a loaded one)"
QUICK = {  # --quick: the whole pipeline on the real assets, 8 tiny runs (~20 min here at load 10-16)
    "steps": [0, 2],
    "seeds": 2,
    "train": 32,
    "epochs": 1.0,
    "test": 40,
    "max_length": 32,
    "out": "outputs/bench-dapt-quick",
    "pretrain_flags": ["--max_train_samples", "64", "--max_eval_samples", "8", "--head_warmup_steps", "2"],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", nargs="+", default=list(PRETRAIN), choices=list(PRETRAIN))
    p.add_argument("--steps", nargs="+", type=int, default=[0, N_STEPS, 2 * N_STEPS, 4 * N_STEPS])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train", type=int, default=600, help="fine-tuning: stratified training abstracts")
    p.add_argument("--epochs", type=float, default=2, help="fine-tuning epochs (no model selection)")
    p.add_argument("--test", type=int, default=1000, help="fine-tuning: validation and test abstracts")
    p.add_argument("--max_length", type=int, default=64, help="fine-tuning tokens per abstract")
    p.add_argument("--learning_rate", type=float, default=1e-4, help="fine-tuning learning rate")
    p.add_argument(
        "--out", default=None, help="default outputs/bench-dapt (--quick: outputs/bench-dapt-quick)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: " + ", ".join(f"{k} {v}" for k, v in QUICK.items() if k != "pretrain_flags"),
    )
    p.add_argument("--render_only", action="store_true")
    p.add_argument("pretrain_flags", nargs=argparse.REMAINDER, help="after --: extra pretraining flags")
    args = p.parse_args(argv)
    args.pretrain_flags = [f for f in args.pretrain_flags if f != "--"]
    if args.quick:  # the tiny sizes; an explicit --out and extra pretraining flags are kept
        for key, value in QUICK.items():
            if key == "pretrain_flags":
                value = value + args.pretrain_flags
            if key != "out" or args.out is None:
                setattr(args, key, value)
    args.out = args.out or "outputs/bench-dapt"
    if any(s < 0 for s in args.steps):
        p.error("--steps must be >= 0")
    if min(args.seeds, args.train, args.test, args.max_length) < 1 or args.epochs <= 0:
        p.error("--seeds, --train, --test, --max_length and --epochs must be > 0")
    return args


def finetune_flags(
    train: int, epochs: float, test: int = 1000, max_length: int = 64, lr: float = 1e-4
) -> list[str]:
    """The one fine-tuning budget of every run: a fixed number of steps, no checkpoint, no model selection."""
    return [
        "--dataset",
        "pubmed-pubtype",
        "--max_train_samples",
        str(train),
        "--num_train_epochs",
        str(epochs),
        "--max_eval_samples",
        str(test),
        "--max_length",
        str(max_length),
        "--learning_rate",
        str(lr),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--compare",
        "false",
    ]


def pretrain(out: Path, corpus: str, steps: int, flags: list[str]) -> dict:
    """One pretraining process; its perplexities, wall times and peak memory."""
    run_dir = out / "pretrain" / f"{corpus}-{steps}"
    cmd = [sys.executable, "-m", "nlptransfer.recipes.domain_pretraining", "--config", PRETRAIN[corpus]]
    cmd += ["--max_steps", str(steps), "--output_dir", str(run_dir), "--overwrite_output_dir", "true", *flags]
    process = run_recipe(cmd, out / "logs" / f"pretrain-{corpus}-{steps}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    warmup = metrics.get("head_warmup") or {}
    return {
        "kind": "pretrain",
        "corpus": corpus,
        "steps": steps,
        "model": str(run_dir),
        **{k: v for k, v in metrics.items() if k.startswith(("perplexity_", "mlm_loss_"))},
        "head_warmup_steps": warmup.get("steps", 0),
        "head_warmup_seconds": warmup.get("wall_seconds", 0.0),
        "train_seconds": metrics["train"]["wall_seconds"],
        "examples": metrics.get("examples"),
        **process,
        "command": " ".join(cmd),
    }


def finetune(out: Path, corpus: str, steps: int, model: str, seed: int, budget: list[str]) -> dict:
    """One fine-tuning process from `model`; its test macro-F1."""
    run_dir = out / "runs" / f"{corpus}-{steps}-seed{seed}"
    cmd = [sys.executable, "-m", "nlptransfer.recipes.text_classification", "--model_name_or_path", model]
    cmd += [*budget, "--seed", str(seed), "--output_dir", str(run_dir), "--overwrite_output_dir", "true"]
    process = run_recipe(cmd, out / "logs" / f"{run_dir.name}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "kind": "finetune",
        "corpus": corpus,
        "steps": steps,
        "seed": seed,
        "score": metrics["test"]["f1_macro"],
        "test": metrics["test"],
        "train_seconds": metrics["train"].get("wall_seconds"),
        **process,
        "command": " ".join(cmd),
    }


def _ppl(run: dict | None, key: str) -> str:
    return f"{run[key]:,.1f}" if run and key in run else "-"


def render(results: list[dict]) -> str:
    tuned = [r for r in results if r["kind"] == "finetune"]
    pretrained = {(r["corpus"], r["steps"]): r for r in results if r["kind"] == "pretrain"}
    base = {r["seed"]: r["score"] for r in tuned if r["steps"] == 0}
    rows = []
    for corpus in ["base", *PRETRAIN]:
        for steps in sorted({r["steps"] for r in tuned if r["corpus"] == corpus}):
            runs = [r for r in tuned if (r["corpus"], r["steps"]) == (corpus, steps)]
            row = {"pretraining": corpus, "steps": steps, "seeds": len(runs)}
            row["macro-F1"] = mean_std([r["score"] for r in runs])
            paired = [(r["score"], base[r["seed"]]) for r in runs if r["seed"] in base]
            row["vs 0 steps"] = "-"
            if steps and len(paired) >= 2:
                a, b = zip(*paired, strict=True)
                diff = statistics.mean(a) - statistics.mean(b)
                row["vs 0 steps"] = f"{diff:+.3f} (p={stats.ttest_rel(a, b).pvalue:.2g})"
            run = pretrained.get((corpus, steps))
            row["ppl before"] = _ppl(run, "perplexity_before")
            row["ppl after warm-up"] = _ppl(run, "perplexity_after_warmup")
            row["ppl after"] = _ppl(run, "perplexity_after")
            row["pretrain min"] = f"{run['process_seconds'] / 60:.1f}" if run else "-"
            row["fine-tune min"] = f"{statistics.mean(r['process_seconds'] for r in runs) / 60:.1f}"
            rows.append(row)
    loads = [r["load_before"] for r in results] or [0.0]
    head = (
        "# Continued pretraining curve: TAPT and DAPT on pubmed-pubtype (benchmarks/bench_dapt.py)\n\n"
        f"{len(results)} runs, one at a time; load average before each run {min(loads):.2f}-{max(loads):.2f}.\n"
        "macro-F1 on the recipe's stratified test sample (`--max_eval_samples` below), mean ± std over fine-tuning seeds; `vs 0 steps`: "
        "paired difference to the base MiniLM (same seed = same examples, order and head init) and paired "
        "t-test; perplexity: held-out masked-LM perplexity of the pretraining run before, after the head "
        "warm-up and after; minutes are process wall times (pretraining per run, fine-tuning mean per run).\n\n"
    )
    settings = results[0].get("settings") if results else None
    if settings:
        extra = " ".join(settings["pretrain_flags"]) or "none"
        head += f"Fine-tuning flags (every run): `{' '.join(settings['finetune'])}`; extra pretraining flags: {extra}.\n\n"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return head + markdown_table(rows, columns) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    budget = finetune_flags(args.train, args.epochs, args.test, args.max_length, args.learning_rate)
    settings = {"finetune": budget, "pretrain_flags": args.pretrain_flags}
    other = [r for r in results if r.get("settings", settings) != settings]
    if other and not args.render_only:
        raise SystemExit(
            f"{out} holds {len(other)} runs made with other settings ({other[0]['settings']}); "
            "use another --out or the same flags"
        )

    def save(record: dict) -> dict:
        record["settings"] = settings
        results.append(record)
        write_json_atomic(path, results)
        write_text_atomic(out / "results.md", render(results))
        return record

    if not args.render_only:
        print(f"bench_dapt -> {out}; the default curve takes {ESTIMATE}", flush=True)
        pretrained = {(r["corpus"], r["steps"]): r for r in results if r["kind"] == "pretrain"}
        done = {(r["corpus"], r["steps"], r["seed"]) for r in results if r["kind"] == "finetune"}
        for steps in sorted(set(args.steps)):  # the curve from the left: every corpus at S before 2S
            for corpus in ["base"] if steps == 0 else args.corpora:
                model = BASE
                if steps:
                    if (corpus, steps) not in pretrained:
                        print(f"pretrain {corpus} {steps} steps ...", flush=True)
                        pretrained[corpus, steps] = save(pretrain(out, corpus, steps, args.pretrain_flags))
                    model = pretrained[corpus, steps]["model"]
                for seed in range(args.seeds):
                    if (corpus, steps, seed) not in done:
                        print(f"fine-tune {corpus} {steps} steps seed={seed} ...", flush=True)
                        save(finetune(out, corpus, steps, model, seed, budget))
    write_text_atomic(out / "results.md", render(results))
    print(render(results))


if __name__ == "__main__":
    main()
