"""Word vectors carried into domain classifiers (issue 17, part 2): GloVe frozen / fine-tuned, domain vectors,
random init, TF-IDF + logistic regression and MiniLM full fine-tuning, on two tasks, over seeds and sizes.

    .venv/bin/python -m benchmarks.bench_wordvec                                   # the measured run
    .venv/bin/python -m benchmarks.bench_wordvec --tasks sentiment --seeds 1 --sizes all
    .venv/bin/python -m benchmarks.bench_wordvec --methods glove_full tfidf_logreg --sizes 50,200,all
    .venv/bin/python -m benchmarks.bench_wordvec --render_only --out outputs/bench-wordvec

Tasks: `sentiment` (the sentiment recipe: vader-movies training half -> the four VADER test halves) and
`pubtype` (the text_classification recipe on pubmed-pubtype, its YAML's 2,000-abstract training sample).
Metric: macro-F1 (micro-F1 recorded too). Each neural (method, size, seed) is one recipe process, one at
a time (2 cores), from the shipped YAMLs (recipes/sentiment/glove_{frozen,full}.yaml,
recipes/text_classification/glove_pubmed_pubtype.yaml, the MiniLM defaults): what a user gets from them.

- glove_frozen / glove_full: GloVe 6B 50-d (the embedded asset), vectors fixed / fine-tuned;
- domain_vectors: PPMI + SVD vectors of the training split's texts (`--model_name_or_path domain-vectors`),
  fine-tuned like glove_full;
- random_init: glove_full with `--from_scratch true` (GloVe's vocabulary, random vectors of GloVe's scale);
- tfidf_logreg: `nlptransfer.evaluation.baselines.tfidf_logreg` in this process, on exactly the recipe's
  splits and training subsample (same `load_source` + `subsample` calls and seeds);
- minilm_full: the recipe's default (MiniLM, full fine-tuning), at `--minilm_sizes` only (default: all).

Sizes (`--sizes`, the data-efficiency curve) are `--max_train_samples` values (the recipes' stratified,
seeded subsample; `all` = the YAML's own). Prediction speed: texts/s of the seed-0 full-size glove_full and
minilm_full models on the in-domain test texts (`nlptransfer.inference.predict_logits`, batch 64, after a
warm-up batch, best of 3 passes), measured in this process after the runs (`--remeasure_speed` again).
Results are saved after every run (<out>/results.json), so an interrupted benchmark resumes where it
stopped; <out>/results.md holds the mean ± std tables and the issue's targets (GloVe fine-tuned > random init at every size; > TF-IDF at
<= 200 examples; prediction >= 50x MiniLM's texts/s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.recipe_process import run_recipe as run_process
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("vader-movies", "vader-tweets", "vader-amazon", "vader-nyt")
SHORT = {"vader-movies": "movies", "vader-tweets": "tweets", "vader-amazon": "amazon", "vader-nyt": "nyt"}
TASKS = {
    "sentiment": {
        "recipe": "sentiment",
        "glove_frozen": "recipes/sentiment/glove_frozen.yaml",
        "glove_full": "recipes/sentiment/glove_full.yaml",
        "minilm": "recipes/sentiment/minilm_full.yaml",
    },
    "pubtype": {
        "recipe": "text_classification",
        # no frozen YAML for PubMed: the full one, with the sentiment one's frozen strategy and learning rate
        "glove_frozen": "recipes/text_classification/glove_pubmed_pubtype.yaml",
        "frozen_flags": "--strategy frozen --cache_features false --learning_rate 5e-3",
        "glove_full": "recipes/text_classification/glove_pubmed_pubtype.yaml",
        "minilm": "recipes/text_classification/minilm_pubmed_pubtype.yaml",
    },
}
METHODS = ("glove_frozen", "glove_full", "domain_vectors", "random_init", "tfidf_logreg", "minilm_full")
EXTRA = {
    "domain_vectors": ["--model_name_or_path", "domain-vectors"],
    "random_init": ["--from_scratch", "true"],
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--sizes", default="50,100,200,500,1000,all", help="training sizes (the curve)")
    p.add_argument("--minilm_sizes", default="all", help="training sizes of minilm_full (slow)")
    p.add_argument("--out", default="outputs/bench-wordvec")
    p.add_argument("--render_only", action="store_true")
    p.add_argument(
        "--remeasure_speed", action="store_true", help="measure the texts/s again (after a change)"
    )
    return p.parse_args(argv)


def sizes(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def yaml_path(task: str, method: str) -> Path:
    spec = TASKS[task]
    key = (
        "minilm" if method == "minilm_full" else "glove_frozen" if method == "glove_frozen" else "glove_full"
    )
    return ROOT / spec[key]


def run_name(task: str, method: str, size: str, seed: int) -> str:
    return f"{task}-{method}-n{size}-seed{seed}"


def scores(task: str, metrics_test: dict) -> dict:
    """{test set: {f1_macro, f1_micro}} from a recipe's metrics["test"]."""
    if task == "sentiment":
        return {d: _f1(metrics_test[d]) for d in DOMAINS if d in metrics_test}
    return {"pubmed-pubtype": _f1(metrics_test)}


def _f1(m: dict) -> dict:
    return {"f1_macro": m["f1_macro"], "f1_micro": m["f1_micro"]}


def run_recipe(out: Path, task: str, method: str, size: str, seed: int) -> dict:
    """One recipe process; its test scores, training time and parameter counts."""
    spec = TASKS[task]
    run_dir = out / "runs" / run_name(task, method, size, seed)
    cmd = [
        sys.executable,
        "-m",
        f"nlptransfer.recipes.{spec['recipe']}",
        "--config",
        str(yaml_path(task, method)),
    ]
    cmd += ["--seed", str(seed), "--output_dir", str(run_dir), "--overwrite_output_dir", "true"]
    if method == "glove_frozen" and "frozen_flags" in spec:
        cmd += spec["frozen_flags"].split()
    cmd += EXTRA.get(method, [])
    if size != "all":
        cmd += ["--max_train_samples", size]
    process = run_process(cmd, out / "logs" / f"{run_dir.name}.log", cwd=ROOT)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "test": scores(task, metrics["test"]),
        "train_seconds": metrics["train"].get("wall_seconds"),
        **process,
        "trainable_parameters": metrics["trainable_parameters"],
        "total_parameters": metrics["total_parameters"],
        "run_dir": str(run_dir),
    }


def recipe_splits(task: str, size: str):
    """(train, {test name: test split}, class_weight) exactly as the recipe builds them from its YAML."""
    from nlptransfer.data import check_eval_labels, load_source, subsample

    cfg = yaml.safe_load(yaml_path(task, "glove_full").read_text(encoding="utf-8"))
    seed = cfg.get("split_seed", 42)
    cap = int(size) if size != "all" else cfg.get("max_train_samples")
    source = load_source(cfg["dataset"], seed=seed)
    if task == "sentiment":
        tests = {cfg["dataset"]: source["test"]}
        for name in cfg.get("eval_datasets", []):
            tests[name] = check_eval_labels(source["train"], load_source(name, seed=seed)["test"], name)
        tests = {k: subsample(v, cfg.get("max_eval_samples"), seed) for k, v in tests.items()}
        return subsample(source["train"], cap, seed), tests, None
    test = subsample(source["test"], cfg.get("max_eval_samples"), seed, "label")
    weight = "balanced" if cfg.get("class_weighted_loss") else None
    return subsample(source["train"], cap, seed, "label"), {cfg["dataset"]: test}, weight


def run_tfidf(task: str, size: str, seed: int) -> dict:
    from nlptransfer.evaluation.baselines import tfidf_logreg
    from nlptransfer.evaluation.metrics import classification_metrics

    train, tests, weight = recipe_splits(task, size)
    names = train.features["label"].names
    started = time.time()
    result = {}
    for name, test in tests.items():
        preds = tfidf_logreg(
            list(train["text"]),
            np.asarray(train["label"]),
            list(test["text"]),
            seed=seed,
            label_count=len(names),
            class_weight=weight,
        )
        result[name] = classification_metrics(preds, np.asarray(test["label"]), names, False)
    test = result if task == "sentiment" else result[next(iter(tests))]  # scores() reads the recipe's layout
    return {"test": scores(task, test), "train_seconds": round(time.time() - started, 1)}


def throughput(run_dir: str, texts: list[str], max_length: int, repeats: int = 3) -> float:
    """Texts per second of a saved classifier on `texts` (batch 64, after a warm-up batch; best of
    `repeats` passes)."""
    from nlptransfer.inference import predict_logits
    from nlptransfer.modeling import load_tokenizer
    from nlptransfer.modeling.classifier import load_trained_classifier

    model = load_trained_classifier(run_dir)
    tokenizer = load_tokenizer(run_dir)
    predict_logits(model, tokenizer, texts[:64], batch_size=64, max_length=max_length, desc="warm-up")
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        predict_logits(model, tokenizer, texts, batch_size=64, max_length=max_length, desc="speed")
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def _in_domain(task: str) -> str:
    return "vader-movies" if task == "sentiment" else "pubmed-pubtype"


def render(results: list[dict]) -> str:
    runs = [r for r in results if r["kind"] == "run"]
    speed = {(r["task"], r["method"]): r["texts_per_s"] for r in results if r["kind"] == "speed"}
    parts = ["# Word vectors carried into domain classifiers (issue 17, part 2)\n"]
    parts.append("macro-F1 mean ± std over seeds; one recipe process at a time on the benchmark machine.\n")
    for task in TASKS:
        mine = [r for r in runs if r["task"] == task]
        if not mine:
            continue
        tests = list(dict.fromkeys(k for r in mine for k in r["test"]))
        rows = []
        for method in METHODS:
            full = [r for r in mine if r["method"] == method and r["size"] == "all"]
            if not full:
                continue
            row = {"method": method, "seeds": len(full)}
            for t in tests:
                row[f"{SHORT.get(t, t)} macro-F1"] = mean_std(
                    [r["test"][t]["f1_macro"] for r in full if t in r["test"]]
                )
            row["train s"] = f"{statistics.mean(r['train_seconds'] or 0 for r in full):.0f}"
            if full[0].get("trainable_parameters") is not None:
                row["trainable"] = f"{full[0]['trainable_parameters'] / 1e6:.2f}M"
            row["texts/s"] = f"{speed[(task, method)]:.0f}" if (task, method) in speed else "-"
            rows.append(row)
        parts.append(
            f"\n## {task}: full training set\n\n"
            + markdown_table(rows, list(dict.fromkeys(k for r in rows for k in r)))
            + "\n"
        )
        curve, in_domain = [], _in_domain(task)
        all_sizes = sorted({r["size"] for r in mine}, key=lambda s: (s == "all", int(s) if s != "all" else 0))
        means: dict[tuple[str, str], float] = {}
        for method in METHODS:
            row = {"method": method}
            for size in all_sizes:
                vals = [
                    r["test"][in_domain]["f1_macro"]
                    for r in mine
                    if r["method"] == method and r["size"] == size
                ]
                row[f"n={size}"] = mean_std(vals)
                if vals:
                    means[(method, size)] = statistics.mean(vals)
            if any(v != "-" for k, v in row.items() if k != "method"):
                curve.append(row)
        if curve:
            table = markdown_table(curve, list(curve[0]))
            parts.append(f"\n## {task}: data efficiency ({in_domain} macro-F1)\n\n{table}\n")
        parts.append("\n" + targets(task, all_sizes, means, speed) + "\n")
    return "".join(parts)


def targets(task: str, all_sizes: list[str], means: dict, speed: dict) -> str:
    """The issue's three targets, checked on the means."""
    lines = [f"Targets ({task}):"]
    pairs = [s for s in all_sizes if ("glove_full", s) in means and ("random_init", s) in means]
    if pairs:
        wins = [s for s in pairs if means[("glove_full", s)] > means[("random_init", s)]]
        lines.append(
            f"- GloVe fine-tuned > random init at every size: {len(wins) == len(pairs)} ({len(wins)}/{len(pairs)} sizes)"
        )
    small = [
        s
        for s in all_sizes
        if s != "all" and int(s) <= 200 and ("glove_full", s) in means and ("tfidf_logreg", s) in means
    ]
    if small:
        wins = [s for s in small if means[("glove_full", s)] > means[("tfidf_logreg", s)]]
        lines.append(
            f"- GloVe fine-tuned > TF-IDF at <= 200 examples: {len(wins) == len(small)} (sizes {', '.join(small)}: {len(wins)} won)"
        )
    if (task, "glove_full") in speed and (task, "minilm_full") in speed:
        ratio = speed[(task, "glove_full")] / speed[(task, "minilm_full")]
        lines.append(f"- prediction >= 50x MiniLM's texts/s: {ratio >= 50} ({ratio:.0f}x)")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else []

    def save() -> None:
        write_json_atomic(path, results)
        write_text_atomic(out / "results.md", render(results))

    if not args.render_only:
        done = {(r["task"], r["method"], r["size"], r["seed"]) for r in results if r["kind"] == "run"}
        for seed in range(args.seeds):  # seed-major: every cell has seed 0 before any has seed 1
            for task in args.tasks:
                for method in args.methods:
                    for size in sizes(args.minilm_sizes if method == "minilm_full" else args.sizes):
                        if (task, method, size, seed) in done:
                            continue
                        print(f"{task} {method} n={size} seed={seed} ...", flush=True)
                        record = (
                            run_tfidf(task, size, seed)
                            if method == "tfidf_logreg"
                            else run_recipe(out, task, method, size, seed)
                        )
                        results.append(
                            {
                                "kind": "run",
                                "task": task,
                                "method": method,
                                "size": size,
                                "seed": seed,
                                **record,
                            }
                        )
                        save()
        if args.remeasure_speed:
            results[:] = [r for r in results if r["kind"] != "speed"]
        measured = {(r["task"], r["method"]) for r in results if r["kind"] == "speed"}
        for task in args.tasks:
            _, tests, _ = recipe_splits(task, "all")
            texts = list(tests[_in_domain(task)]["text"])
            max_length = yaml.safe_load(yaml_path(task, "glove_full").read_text()).get("max_length", 128)
            for method in ("glove_full", "minilm_full"):
                run = next(
                    (
                        r
                        for r in results
                        if r["kind"] == "run"
                        and (r["task"], r["method"], r["size"], r["seed"]) == (task, method, "all", 0)
                    ),
                    None,
                )
                if run is None or (task, method) in measured:
                    continue
                cap = (
                    max_length
                    if method == "glove_full"
                    else yaml.safe_load(yaml_path(task, method).read_text()).get("max_length", 128)
                )
                print(f"{task} {method}: prediction speed on {len(texts)} texts ...", flush=True)
                rate = throughput(run["run_dir"], texts, cap)
                results.append(
                    {
                        "kind": "speed",
                        "task": task,
                        "method": method,
                        "texts": len(texts),
                        "texts_per_s": rate,
                    }
                )
                save()
    save()
    print(render(results))


if __name__ == "__main__":
    main()
