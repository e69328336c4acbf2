"""ONNX export (issue 20): texts/s, micro-F1 and size on disk of one trained sentiment run served four ways.

    .venv/bin/python -m benchmarks.bench_export                                   # outputs/sentiment-minilm-full
    .venv/bin/python -m benchmarks.bench_export outputs/my-run --out outputs/bench-export --rounds 3
    .venv/bin/python -m benchmarks.bench_export outputs/tiny-run --quick --out /tmp/bench-export   # smoke test

Back-ends, all on the same run directory (default: the one `make sentiment` writes):
- `pipeline()` defaults: `transformers.pipeline("text-classification", model=RUN_DIR)` called on the list of
  texts with no other argument (batch size 1);
- PyTorch predict: `nlptransfer.predictor.TorchPredictor` (what `nlptransfer predict --model RUN_DIR` runs:
  length-sorted batches of `--batch_size`);
- ONNX fp32 and ONNX int8: `nlptransfer export RUN_DIR [--quantize int8]` (written afresh into --out each time,
  checked on the run's first `--check_rows` test rows, timed), run by `OnnxPredictor` (what
  `nlptransfer predict --model EXPORT_DIR` runs), same batching.

Speed: texts/s on the 5,000 VADER test texts (`--texts`: the four domains' test halves, split as the sentiment
recipe splits them, `load_source(vader-<domain>, seed=split_seed)`, concatenated and shuffled with seed 42:
the same 5,000 texts as bench_trainer's inference test when split_seed is 42), after a warm-up batch; `--rounds` rounds, the back-ends alternating (their order rotates each round); the median round counts.
Accuracy: micro-F1 of each back-end on every row of each domain's test half (`classification_metrics`, the
recipes' metrics), untimed. Size: the weights files on disk (run: *.safetensors; export: the .onnx file).
Writes <out>/results.json and <out>/results.md with the issue's targets (ONNX int8 >= 5x pipeline() defaults;
micro-F1 within 0.5 points of PyTorch predict on every domain). `--limit N` cuts texts and test rows to N;
`--quick` = `--limit 200 --rounds 1 --check_rows 100` (a smoke test of the script, no meaningful figures).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

DOMAINS = ("movies", "tweets", "amazon", "nyt")
BACKENDS = ("pipeline() defaults", "PyTorch predict", "ONNX fp32", "ONNX int8")


def test_halves(run_dir: Path, limit: int | None) -> dict[str, tuple[list[str], list[str]]]:
    """(texts, gold label names) of each VADER domain's test half, split with the run's split_seed."""
    from nlptransfer.data import load_source
    from nlptransfer.run_dirs import read_run_file

    seed = read_run_file(run_dir / "config.yaml").get("split_seed", 42)
    halves = {}
    for domain in DOMAINS:
        test = load_source(f"vader-{domain}", seed=seed)["test"]
        names = test.features["label"].names
        rows = range(min(limit, len(test))) if limit else range(len(test))
        halves[domain] = ([test["text"][i] for i in rows], [names[test["label"][i]] for i in rows])
    return halves


def speed_texts(halves: dict, n: int, seed: int = 42) -> list[str]:
    """The first `n` of the test halves' texts (in DOMAINS order) shuffled with `seed` (datasets' shuffle)."""
    from datasets import Dataset

    pool = Dataset.from_dict({"text": [t for texts, _ in halves.values() for t in texts]}).shuffle(seed=seed)
    return list(pool.select(range(min(n, len(pool))))["text"])


def exported(run_dir: Path, out: Path, quantize: str | None, check_rows: int) -> tuple[Path, float]:
    """(the run's export in `out`, written afresh (a previous export there is replaced), seconds it took)."""
    from nlptransfer.export import export_run

    folder = out / ("onnx-int8" if quantize else "onnx-fp32")
    started = time.perf_counter()
    export_run(run_dir, folder, quantize=quantize, force=True, overwrite=True, max_rows=check_rows)
    return folder, time.perf_counter() - started


def backends(run_dir: Path, out: Path, batch_size: int, check_rows: int) -> dict:
    """name -> (labels of texts, size in bytes, export.json check or None, export seconds or None)."""
    from transformers import pipeline

    from nlptransfer.predictor import TorchPredictor, load_predictor

    clf = pipeline("text-classification", model=str(run_dir), device="cpu")
    torch_side = TorchPredictor(run_dir)
    weights = sum(p.stat().st_size for p in run_dir.glob("*.safetensors"))
    found = {
        "pipeline() defaults": (lambda texts: [r["label"] for r in clf(texts)], weights, None, None),
        "PyTorch predict": (
            lambda texts: [r["label"] for r in torch_side.predict(texts, batch_size)],
            weights,
            None,
            None,
        ),
    }
    for name, quantize in (("ONNX fp32", None), ("ONNX int8", "int8")):
        folder, seconds = exported(run_dir, out, quantize, check_rows)
        predictor = load_predictor(folder)
        size = (predictor.path / predictor.record["model_file"]).stat().st_size
        found[name] = (
            lambda texts, p=predictor: [r["label"] for r in p.predict(texts, batch_size)],
            size,
            predictor.record["check"],
            seconds,
        )
    return found


def measure(run_dir: Path, out: Path, args) -> dict:
    from nlptransfer.evaluation.metrics import classification_metrics

    load_before = os.getloadavg()
    halves = test_halves(run_dir, args.limit)
    texts = speed_texts(halves, min(args.texts, args.limit or args.texts))
    found = backends(run_dir, out, args.batch_size, args.check_rows)
    for predict, *_ in found.values():  # warm-up: lazy imports and first allocations stay out
        predict(texts[:64])
    seconds: dict[str, list[float]] = {name: [] for name in found}
    order = list(found)
    for round_ in range(args.rounds):
        for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
            started = time.perf_counter()
            found[name][0](texts)
            seconds[name].append(time.perf_counter() - started)
    results = {}
    for name, (predict, size, check, export_s) in found.items():
        f1 = {}
        for domain, (domain_texts, gold) in halves.items():
            predicted = predict(domain_texts)
            labels = sorted(set(gold) | set(predicted))
            ids = {n: i for i, n in enumerate(labels)}
            scores = classification_metrics([ids[p] for p in predicted], [ids[g] for g in gold], labels)
            f1[domain] = round(100 * scores["f1_micro"], 2)
        results[name] = {
            "texts_per_s": round(len(texts) / statistics.median(seconds[name]), 1),
            "seconds": [round(s, 3) for s in seconds[name]],
            "micro_f1": f1,
            "size_mb": round(size / 1e6, 1),
            "agreement_at_export": None if check is None else check["agreement"],
            "max_probability_difference_at_export": None
            if check is None
            else check["max_probability_difference"],
            "export_s": None if export_s is None else round(export_s, 1),
        }
    base = results["pipeline() defaults"]["texts_per_s"]
    for r in results.values():
        r["speedup_vs_pipeline"] = round(r["texts_per_s"] / base, 2)
    return {
        "run_dir": str(run_dir),
        "texts": len(texts),
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "check_rows": args.check_rows,
        "test_rows": {d: len(t) for d, (t, _) in halves.items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": load_before},
        "results": results,
    }


def render(data: dict) -> str:
    results = data["results"]
    rows = [
        {
            "back-end": name,
            "texts/s": f"{r['texts_per_s']:.0f}",
            "x pipeline()": f"{r['speedup_vs_pipeline']:.2f}",
            **{f"micro-F1 {d}": f"{r['micro_f1'][d]:.2f}" for d in DOMAINS},
            "size MB": f"{r['size_mb']:.1f}",
            "agreement at export": ""
            if r["agreement_at_export"] is None
            else f"{r['agreement_at_export']:.2%}",
            "max prob. diff.": ""
            if r["max_probability_difference_at_export"] is None
            else f"{r['max_probability_difference_at_export']:.1e}",
            "export s": "" if r["export_s"] is None else f"{r['export_s']:.1f}",
        }
        for name, r in results.items()
    ]
    columns = ["back-end", "texts/s", "x pipeline()", *(f"micro-F1 {d}" for d in DOMAINS), "size MB"]
    int8, torch_side = results["ONNX int8"], results["PyTorch predict"]
    gaps = {d: round(abs(int8["micro_f1"][d] - torch_side["micro_f1"][d]), 2) for d in DOMAINS}
    speed_ok = int8["speedup_vs_pipeline"] >= 5
    f1_ok = all(g <= 0.5 for g in gaps.values())
    return "\n".join(
        [
            "# ONNX export benchmark (issue 20)",
            "",
            f"Run: `{data['run_dir']}`; speed on {data['texts']} VADER test texts, {data['rounds']} alternating "
            f"rounds (median), batch size {data['batch_size']} for ours; micro-F1 (%) on the test halves "
            f"({', '.join(f'{d} {n}' for d, n in data['test_rows'].items())} rows); agreement with PyTorch checked at "
            f"export on the run's first {data['check_rows']} test rows; load average before: "
            f"{', '.join(f'{x:.2f}' for x in data['machine']['load_before'])} on {data['machine']['cpus']} CPUs.",
            "",
            markdown_table(rows, [*columns, "agreement at export", "max prob. diff.", "export s"]),
            "",
            f"- Target ONNX int8 >= 5x pipeline() defaults: {int8['speedup_vs_pipeline']}x "
            f"({'met' if speed_ok else 'NOT met'}).",
            f"- Target micro-F1 of ONNX int8 within 0.5 points of PyTorch on every domain: gaps {gaps} "
            f"({'met' if f1_ok else 'NOT met'}).",
            "",
        ]
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", default="outputs/sentiment-minilm-full")
    parser.add_argument("--out", default="outputs/bench-export", help="exports + results.md/json")
    parser.add_argument("--texts", type=int, default=5000, help="texts timed per round (default: 5000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument(
        "--limit", type=int, default=None, help="cut texts and test rows to N (a quick check)"
    )
    parser.add_argument(
        "--check_rows",
        type=int,
        default=1000,
        help="test rows of the agreement check at export (default: 1000)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: --limit 200 --rounds 1 --check_rows 100"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.rounds, args.check_rows = 200, 1, 100
    for name in ("texts", "rounds", "batch_size", "limit", "check_rows"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer")
    run_dir, out = Path(args.run_dir), Path(args.out)
    if not (run_dir / "config.json").is_file():
        parser.error(f"{run_dir} is not a trained run (no config.json); train it first: make sentiment")
    out.mkdir(parents=True, exist_ok=True)
    data = measure(run_dir, out, args)
    write_json_atomic(out / "results.json", data)
    text = render(data)
    write_text_atomic(out / "results.md", text)
    print(text)
    return data


if __name__ == "__main__":
    main()
