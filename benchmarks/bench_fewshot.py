"""Few-shot transfer (issue 17): plain fine-tuning vs frozen features + logistic regression vs contrastive
(SetFit-style) fine-tuning, K labelled examples per class, seeds; one recipe process per run.

    .venv/bin/python -m benchmarks.bench_fewshot                                   # the measured run
    .venv/bin/python -m benchmarks.bench_fewshot --datasets movies --ks 16 --seeds 1   # a quick look
    .venv/bin/python -m benchmarks.bench_fewshot --render_only --out outputs/bench-fewshot

Protocol:
- movies: `python -m nlptransfer.recipes.sentiment` on vader-movies with `--train_labels negative positive
  --examples_per_class K`: K training snippets of each of negative and positive (the recipe draws them with
  `--seed`), tested 3-class on the movies test half (neutral is never trained, so always wrong): micro-F1.
  The SetFit library (1.2.0, same embedded MiniLM, same protocol) reached 0.66 at K = 16 (one seed).
- pubmed: `python -m nlptransfer.recipes.text_classification` on pubmed-pubtype with `--examples_per_class
  K` of all four publication types, tested on the recipe's stratified 1,000-abstract test sample: macro-F1.
- methods (`METHODS`, the flags each run adds): `full` (plain fine-tuning, cross-entropy, every weight),
  `logreg` (frozen mean-pooled features + scikit-learn logistic regression), `contrastive` (contrastive
  fine-tuning of the encoder on 20 pair iterations, then logistic regression on the tuned embeddings).
  Every method with the same seed trains on the same K examples per class, so seeds pair the runs.
Runs go one after another (never two at once on 2 cores); results.json is rewritten after every run, so an
interrupted benchmark resumes where it stopped (finished runs are skipped). Extra recipe flags go after `--`.

Output: <out>/results.json (every run: scores, training and process wall time, peak memory) and
<out>/results.md: mean ± std over seeds per dataset, K and method, the paired difference to `full` with a
paired t-test, and the mean wall time of each method.
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

# dataset key -> (recipe, recipe flags, test key in metrics.json or None for the recipe's single test, metric)
DATASETS = {
    "movies": (
        "sentiment",
        ["--dataset", "vader-movies", "--eval_datasets", "none", "--train_labels", "negative", "positive"],
        "vader-movies",
        "f1_micro",
    ),
    "pubmed": ("text_classification", ["--dataset", "pubmed-pubtype"], None, "f1_macro"),
}
# Few-shot runs select nothing on validation: a fixed budget, no checkpoints.
COMMON = ["--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"]
METHODS = {
    # 16 to 128 rows: batches of 8 and 20 epochs give 40-320 optimizer steps at the recipe's learning rate
    "full": ["--method", "finetune", "--strategy", "full", "--num_train_epochs", "20"]
    + ["--per_device_train_batch_size", "8", "--warmup_steps", "0.1"],
    "logreg": ["--method", "logreg", "--strategy", "frozen"],
    # SetFit's defaults: 20 iterations, 1 epoch, batch 16, learning rate 2e-5
    "contrastive": ["--method", "contrastive", "--strategy", "full", "--contrastive_iterations", "20"]
    + [
        "--contrastive_epochs",
        "1",
        "--contrastive_learning_rate",
        "2e-5",
        "--per_device_train_batch_size",
        "16",
    ],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--ks", nargs="+", type=int, default=[8, 16, 32, 64], help="examples per class")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--out", default="outputs/bench-fewshot")
    p.add_argument("--render_only", action="store_true")
    p.add_argument("recipe_flags", nargs=argparse.REMAINDER, help="after --: extra recipe flags")
    args = p.parse_args(argv)
    args.recipe_flags = [f for f in args.recipe_flags if f != "--"]
    return args


def run_one(out: Path, dataset: str, method: str, k: int, seed: int, flags: list[str]) -> dict:
    """One recipe process; its score, wall times and peak memory."""
    recipe, data_flags, test_key, metric = DATASETS[dataset]
    run_dir = out / "runs" / f"{dataset}-{method}-k{k}-seed{seed}"
    cmd = [sys.executable, "-m", f"nlptransfer.recipes.{recipe}", *data_flags, *COMMON, *METHODS[method]]
    cmd += ["--examples_per_class", str(k), "--seed", str(seed)]
    cmd += ["--output_dir", str(run_dir), "--overwrite_output_dir", "true", *flags]
    process = run_recipe(cmd, out / "logs" / f"{run_dir.name}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = metrics["test"][test_key] if test_key else metrics["test"]
    return {
        "dataset": dataset,
        "method": method,
        "k": k,
        "seed": seed,
        "metric": metric,
        "score": test[metric],
        "test": test,
        "train_seconds": metrics["train"].get("wall_seconds"),
        **process,
        "command": " ".join(cmd),
    }


def render(results: list[dict]) -> str:
    by_key = {(r["dataset"], r["method"], r["k"], r["seed"]): r for r in results}
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        for k in sorted({r["k"] for r in results if r["dataset"] == dataset}):
            for method in dict.fromkeys(r["method"] for r in results):
                runs = [r for r in results if (r["dataset"], r["k"], r["method"]) == (dataset, k, method)]
                if not runs:
                    continue
                row = {"dataset": dataset, "K/class": k, "method": method, "seeds": len(runs)}
                row["metric"] = "micro-F1" if runs[0]["metric"] == "f1_micro" else "macro-F1"
                row["score"] = mean_std([r["score"] for r in runs])
                paired = [
                    (r["score"], by_key[(dataset, "full", k, r["seed"])]["score"])
                    for r in runs
                    if (dataset, "full", k, r["seed"]) in by_key
                ]
                row["vs full"] = "-"
                if method != "full" and len(paired) >= 2:
                    a, b = zip(*paired, strict=True)
                    diff = statistics.mean(a) - statistics.mean(b)
                    row["vs full"] = f"{diff:+.3f} (p={stats.ttest_rel(a, b).pvalue:.2g})"
                row["train s"] = f"{statistics.mean(r['train_seconds'] for r in runs):.1f}"
                row["process s"] = f"{statistics.mean(r['process_seconds'] for r in runs):.1f}"
                rows.append(row)
    loads = [r["load_before"] for r in results] or [0.0]
    head = (
        "# Few-shot transfer: K examples per class (benchmarks/bench_fewshot.py)\n\n"
        f"{len(results)} runs, one at a time; load average before each run {min(loads):.2f}-{max(loads):.2f}.\n"
        "movies: trained on negative + positive, tested 3-class on the movies test half (micro-F1); pubmed: "
        "pubmed-pubtype, 4 classes (macro-F1). Mean ± std over seeds; `vs full`: paired difference and "
        "paired t-test (same seed = same training examples); wall times are means per run.\n\n"
    )
    columns = ["dataset", "K/class", "method", "seeds", "metric", "score", "vs full", "train s", "process s"]
    return head + markdown_table(rows, columns) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []
    if not args.render_only:
        done = {(r["dataset"], r["method"], r["k"], r["seed"]) for r in results}
        for seed in range(args.seeds):  # seed-major: every cell has seed 0 before any has seed 1
            for dataset in args.datasets:
                for k in args.ks:
                    for method in args.methods:
                        if (dataset, method, k, seed) in done:
                            continue
                        print(f"{dataset} {method} K={k} seed={seed} ...", flush=True)
                        results.append(run_one(out, dataset, method, k, seed, args.recipe_flags))
                        write_json_atomic(path, results)
                        write_text_atomic(out / "results.md", render(results))
    write_text_atomic(out / "results.md", render(results))
    print(render(results))


if __name__ == "__main__":
    main()
