"""Teacher vs distilled student: test accuracy and inference speed (texts/s) on this machine.

    .venv/bin/python -m benchmarks.bench_distillation --run outputs/distill-minilm-vader
    .venv/bin/python -m benchmarks.bench_distillation --run <dir> --texts 800 --repeats 3 --batch_sizes 1 64

`--run` is an output directory of `python -m nlptransfer.recipes.distill` (`make distill`): the student at its
top level, the teacher under `teacher/` (or pass `--teacher <dir>`). Accuracy and macro-F1 are measured
on the run's own test split (dataset, split seed and row cap read from its config.yaml). Speed: ordered
batched prediction (`nlptransfer.inference.predict_logits`, length-sorted batches) over the first `--texts`
test texts at each batch size, teacher and student alternating (t, s, t, s, ...) so that each pair runs
close in time; the best of `--repeats` is reported (the least disturbed by other work) with the 1-minute
load average, since other jobs sharing the CPU slow every figure. Writes
benchmarks/results/<date>-distillation.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path

import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from nlptransfer.data import load_source, subsample
from nlptransfer.evaluation.metrics import classification_metrics
from nlptransfer.inference import predict_logits
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic

RESULTS_DIR = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="output directory of the distill recipe")
    parser.add_argument("--teacher", help="teacher directory (default: <run>/teacher)")
    parser.add_argument("--texts", type=int, default=800, help="test texts per speed measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--output", help="results JSON (default benchmarks/results/<date>-distillation.json)")
    args = parser.parse_args(argv)

    run = Path(args.run)
    teacher_dir = Path(args.teacher) if args.teacher else run / "teacher"
    for path in (run, teacher_dir):
        if not (path / "config.json").is_file():
            raise SystemExit(f"error: {path} holds no model; run `make distill` (or pass --run/--teacher)")
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    test = load_source(
        config["dataset"],
        text_column=config["text_column"],
        label_column=config["label_column"],
        seed=config["split_seed"],
    )["test"]
    test = subsample(
        test, config.get("max_eval_samples"), config["split_seed"], label_column=None
    )  # as the recipe
    texts, labels = list(test["text"]), list(test["label"])
    max_length = config["max_length"]

    models = {}
    for name, path in (("teacher", teacher_dir), ("student", run)):
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        models[name] = (model, AutoTokenizer.from_pretrained(path))
    label_names = [
        models["teacher"][0].config.id2label[i] for i in range(models["teacher"][0].config.num_labels)
    ]

    results = {}
    for name, (model, tok) in models.items():
        preds = predict_logits(model, tok, texts, 64, max_length).argmax(-1)
        scores = classification_metrics(preds, labels, label_names)
        results[name] = {
            "layers": model.config.num_hidden_layers,
            "parameters": sum(p.numel() for p in model.parameters()),
            "accuracy": scores["accuracy"],
            "f1_macro": scores["f1_macro"],
            "texts_per_second": {},
            "load_average": {},
        }
    speed_texts = texts[: args.texts]
    for batch_size in args.batch_sizes:
        best = {name: 0.0 for name in models}
        loads = {name: [] for name in models}
        for _ in range(args.repeats):
            for name, (model, tok) in models.items():
                started = time.perf_counter()
                predict_logits(model, tok, speed_texts, batch_size, max_length, desc=f"{name} bs{batch_size}")
                best[name] = max(best[name], len(speed_texts) / (time.perf_counter() - started))
                loads[name].append(os.getloadavg()[0])
        for name in models:
            results[name]["texts_per_second"][batch_size] = round(best[name], 1)
            results[name]["load_average"][batch_size] = [round(v, 2) for v in loads[name]]

    rows = []
    for name, r in results.items():
        row = {
            "model": name,
            "layers": r["layers"],
            "parameters": f"{r['parameters'] / 1e6:.1f}M",
            "test accuracy": r["accuracy"],
            "macro-F1": r["f1_macro"],
        }
        for batch_size in args.batch_sizes:
            row[f"texts/s (batch {batch_size})"] = f"{r['texts_per_second'][batch_size]:.0f}"
        rows.append(row)
    speedups = {
        b: round(results["student"]["texts_per_second"][b] / results["teacher"]["texts_per_second"][b], 2)
        for b in args.batch_sizes
    }
    table = markdown_table(rows, list(rows[0]))
    report = {
        "date": datetime.date.today().isoformat(),
        "run": str(run),
        "dataset": config["dataset"],
        "test_rows": len(texts),
        "speed_texts": len(speed_texts),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "results": results,
        "student_speedup": speedups,
        "table": table,
    }
    output = Path(args.output) if args.output else RESULTS_DIR / f"{report['date']}-distillation.json"
    write_json_atomic(output, report)
    print(
        f"{config['dataset']} test ({len(texts)} texts); speed over {len(speed_texts)} texts, best of "
        f"{args.repeats}, {torch.get_num_threads()} torch threads on {os.cpu_count()} CPUs\n{table}\n"
        f"student speed-up: {speedups}; load averages per run in {output}"
    )
    return report


if __name__ == "__main__":
    main()
