"""nlptransfer's default sentiment training and batch prediction vs plain `transformers` recipes, on MiniLM.

    .venv/bin/python -m benchmarks.bench_trainer            # full vader-movies train split, 2 epochs, 2 repeats
    .venv/bin/python -m benchmarks.bench_trainer --max_train 1000 --epochs 1 --repeats 1 --max_test 2000 \
        --infer_texts 2000 --infer_repeats 1                   # quick: ~10 minutes on a busy 2-core CPU
    .venv/bin/python -m benchmarks.bench_trainer --render_only   # rewrite BENCHMARKS.md from the saved JSON
    .venv/bin/python -m benchmarks.bench_trainer --render_only --merge results/<other>.json  # more repeats

Training, same model (embedded all-MiniLM-L6-v2, same seed, same new head), same training texts, same
epochs, learning rate and batch size:
  (a) the standard example recipe: `padding="max_length", max_length=128` in `Dataset.map` and a plain
      `transformers.Trainer` with its defaults (default collator);
  (b) a careful plain `Trainer`: truncation only, dynamic padding with `DataCollatorWithPadding`;
  (c) nlptransfer: `fit_classifier` with the sentiment recipe's DEFAULTS (group_by_length, warmup 0.1,
      weight decay 0.01, ...) except `eval_strategy="no"`, so no configuration pays for evaluation.
Each configuration runs in its own fresh subprocess (peak RSS = that process's `ru_maxrss` after training),
in the order a, b, c, a, b, c, ... (`--repeats`), so the c/a and c/b ratios pair runs taken close in time.
All three are scored with the same routine (`predict_logits` on the vader-movies test half, micro-F1).
Training FLOP/s = 6 x non-embedding parameters x tokens the model processed (padding included) / Trainer
train time, against the float32 matmul peak measured in the same run (attention FLOPs are not counted).

Inference: `predict_logits` (length-sorted batches of 128) vs `pipeline("text-classification")` with its
defaults (batch size 1), on `--infer_texts` texts from the four vader test halves; the base model with a
fresh 3-way head (speed only, not accuracy). Writes benchmarks/results/<date>-trainer.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import transformers

from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic, write_text_atomic

RESULTS_DIR = Path(__file__).parent / "results"
MARKDOWN = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 128
SEED = 42
CONFIGS = {
    "a": "(a) plain Trainer, padding=max_length 128",
    "b": "(b) plain Trainer, dynamic padding",
    "c": "(c) nlptransfer fit_classifier (DEFAULTS)",
    "d": "(d) (c) + --torch_compile true",
}
TARGETS = {"speedup_vs_a": 3.0, "speedup_vs_b": 1.3, "max_f1_drop_points": 0.5, "inference_speedup": 2.0}


# ---------------------------------------------------------------------------------------------- workers


class TokenCounter:
    """Forward pre-hook: tokens (padded and real) the model sees while in training mode."""

    def __init__(self):
        self.padded = 0
        self.real = 0
        self.forwards = 0

    def __call__(self, module, args, kwargs):
        if module.training and kwargs.get("input_ids") is not None:
            ids = kwargs["input_ids"]
            self.padded += ids.numel()
            mask = kwargs.get("attention_mask")
            self.real += int(mask.sum()) if mask is not None else ids.numel()
            self.forwards += 1


def non_embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings." not in n)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _quiet() -> None:
    import datasets

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()


def _source(max_train: int | None, max_test: int | None = None):
    from nlptransfer.data import load_source, subsample

    source = load_source("vader-movies", seed=SEED)
    source["test"] = subsample(source["test"], max_test, SEED)  # the same test subset for every configuration
    source["train"] = subsample(source["train"], max_train, SEED)  # as the sentiment recipe subsamples
    return source


def train_worker(config: str, epochs: float, max_train: int | None, max_test: int | None, out: Path) -> None:
    """Train one configuration in this (fresh) process; write its measurements to `out`."""
    _quiet()
    from datasets import DatasetDict
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from nlptransfer.config import ModelArguments, TransferArguments, configs_dir, read_yaml
    from nlptransfer.evaluation.metrics import classification_metrics
    from nlptransfer.inference import predict_logits
    from nlptransfer.modeling import build_classifier, load_tokenizer
    from nlptransfer.trainers import TransferTrainingArguments
    from nlptransfer.training import fit_classifier

    DEFAULTS = read_yaml(configs_dir() / "sentiment" / "minilm_full.yaml")  # the recipe's no-argument run

    source = _source(max_train, max_test)
    label_names = source["train"].features["label"].names
    tokenizer = load_tokenizer(MODEL)
    set_seed(SEED)  # the same new head in every configuration
    model = build_classifier(ModelArguments(model_name_or_path=MODEL), TransferArguments(), label_names)
    counter = TokenCounter()
    model.register_forward_pre_hook(counter, with_kwargs=True)
    ours = {
        k: v
        for k, v in DEFAULTS.items()
        if k in {f.name for f in dataclasses.fields(TransferTrainingArguments)}
    }
    lr, batch = ours["learning_rate"], ours["per_device_train_batch_size"]
    rss_before = _peak_rss_mb()

    with tempfile.TemporaryDirectory(prefix=f"bench-trainer-{config}-") as tmp:
        started = time.perf_counter()  # wall: tokenisation + Trainer set-up + training
        if config in ("a", "b"):
            plain = TrainingArguments(
                output_dir=tmp,
                num_train_epochs=epochs,
                learning_rate=lr,
                per_device_train_batch_size=batch,
                report_to="none",
                save_strategy="no",
            )
            if config == "a":  # the tutorial: pad everything to max_length, default collator
                tokenize = lambda b: tokenizer(  # noqa: E731
                    b["text"], padding="max_length", truncation=True, max_length=MAX_LENGTH
                )
                train = source["train"].map(tokenize, batched=True).remove_columns("text")
                trainer = Trainer(model=model, args=plain, train_dataset=train)
            else:
                tokenize = lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH)  # noqa: E731
                train = source["train"].map(tokenize, batched=True).remove_columns("text")
                trainer = Trainer(
                    model=model,
                    args=plain,
                    train_dataset=train,
                    processing_class=tokenizer,
                    data_collator=DataCollatorWithPadding(tokenizer),
                )
            train_runtime = trainer.train().metrics["train_runtime"]
        else:
            args = TransferTrainingArguments(
                **{
                    **ours,
                    "output_dir": tmp,
                    "num_train_epochs": epochs,
                    "eval_strategy": "no",  # timing fairness: (a) and (b) do not evaluate either
                    "torch_compile": config == "d",  # does inductor help on this CPU? (measured, not default)
                }
            )
            fit = fit_classifier(
                model,
                tokenizer,
                args,
                DatasetDict(train=source["train"], validation=source["validation"]),
                label_names,
                max_length=MAX_LENGTH,
                strategy="full",
            )
            train_runtime = fit.train_metrics["train_runtime"]
        wall = time.perf_counter() - started
    rss_train = _peak_rss_mb()

    test = source["test"]
    started = time.perf_counter()
    logits = predict_logits(
        model, tokenizer, list(test["text"]), DEFAULTS["per_device_eval_batch_size"], MAX_LENGTH
    )
    predict_s = time.perf_counter() - started
    scores = classification_metrics(logits.argmax(-1), test["label"], label_names)
    n_train = len(source["train"])
    params = non_embedding_parameters(model)
    write_json_atomic(
        out,
        {
            "config": config,
            "train_texts": n_train,
            "epochs": epochs,
            "learning_rate": lr,
            "batch_size": batch,
            "train_wall_s": round(wall, 2),
            "train_runtime_s": round(train_runtime, 2),
            "train_samples_per_s": round(n_train * epochs / train_runtime, 2),
            "tokens_processed": counter.padded,
            "real_tokens": counter.real,
            "padding_fraction": round(1 - counter.real / counter.padded, 4) if counter.padded else None,
            "training_forwards": counter.forwards,
            "non_embedding_parameters": params,
            "train_flop": 6 * params * counter.padded,
            "train_flops_per_s": 6 * params * counter.padded / train_runtime,
            "peak_rss_mb_after_load": round(rss_before, 1),
            "peak_rss_mb_train": round(rss_train, 1),
            "test_texts": len(test),
            "test_f1_micro": round(scores["f1_micro"], 4),
            "test_f1_macro": round(scores["f1_macro"], 4),
            "predict_s": round(predict_s, 2),
            "threads": torch.get_num_threads(),
        },
    )


def infer_worker(n_texts: int, repeats: int, out: Path) -> None:
    """predict_logits vs pipeline (defaults, and batch_size=128) on the same texts, alternating."""
    _quiet()
    from datasets import concatenate_datasets
    from transformers import pipeline, set_seed

    from nlptransfer.config import ModelArguments, TransferArguments
    from nlptransfer.data import load_source
    from nlptransfer.inference import predict_logits
    from nlptransfer.modeling import build_classifier, load_tokenizer

    tests = [load_source(f"vader-{d}", seed=SEED)["test"] for d in ("movies", "tweets", "amazon", "nyt")]
    pool = concatenate_datasets([t.select_columns(["text"]) for t in tests]).shuffle(seed=SEED)
    texts = list(pool.select(range(min(n_texts, len(pool))))["text"])
    tokenizer = load_tokenizer(MODEL)
    set_seed(SEED)
    model = build_classifier(
        ModelArguments(model_name_or_path=MODEL), TransferArguments(), ["negative", "neutral", "positive"]
    ).eval()
    clf = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    runs = {
        "predict_logits (batch 128, length-sorted)": lambda: predict_logits(
            model, tokenizer, texts, 128, MAX_LENGTH
        ),
        "pipeline defaults (batch 1)": lambda: clf(texts),
        "pipeline batch_size=128": lambda: clf(texts, batch_size=128),
    }
    # Warm-up: first-call allocations and lazy imports stay out of the timings.
    predict_logits(model, tokenizer, texts[:256], 128, MAX_LENGTH)
    clf(texts[:64])
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            started = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - started)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    write_json_atomic(
        out,
        {
            "texts": len(texts),
            "mean_tokens": round(float(np.mean(lengths)), 1),
            "max_tokens": int(max(lengths)),
            "model": "base MiniLM + fresh 3-way head (speed only)",
            "seconds": {k: [round(s, 2) for s in v] for k, v in seconds.items()},
            "texts_per_s": {k: round(len(texts) / min(v), 1) for k, v in seconds.items()},
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        },
    )


# ---------------------------------------------------------------------------------------------- driver


def matmul_peak(n: int = 2048, seconds: float = 3.0) -> float:
    """float32 FLOP/s of repeated n x n matmuls (best of several timed bursts)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(5):
            torch.matmul(a, b)
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - started))
    return best


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _run_worker(argv: list[str], out: Path, log: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_trainer", *argv, "--worker_out", str(out)]
    with log.open("a") as fh:
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
    return json.loads(out.read_text())


def _ratio(xs: Sequence[float]) -> float:
    return round(statistics.median(xs), 2)


def summarise(runs: list[dict], inference: dict | None) -> dict:
    """Paired ratios (c vs a, c vs b; repeat i of each) and the inference speed-up, against TARGETS."""
    by = {
        c: sorted((r for r in runs if r["config"] == c), key=lambda r: r["repeat"])
        for c in CONFIGS
        if any(r["config"] == c for r in runs)
    }
    summary: dict = {}
    if "c" in by:
        for other in ("a", "b"):
            if other not in by:
                continue
            pairs = list(zip(by[other], by["c"], strict=False))
            speed = [o["train_runtime_s"] / c["train_runtime_s"] for o, c in pairs]
            wall = [o["train_wall_s"] / c["train_wall_s"] for o, c in pairs]
            drop = [100 * (o["test_f1_micro"] - c["test_f1_micro"]) for o, c in pairs]
            target = TARGETS[f"speedup_vs_{other}"]
            summary[f"c_vs_{other}"] = {
                "speedup_train_runtime_per_repeat": [round(s, 2) for s in speed],
                "speedup_train_runtime_median": _ratio(speed),
                "speedup_wall_median": _ratio(wall),
                "f1_micro_points_c_minus_other": [round(-d, 2) for d in drop],
                "target_speedup": target,
                "meets_speed_target": _ratio(speed) >= target,
                "meets_accuracy_target": max(drop) <= TARGETS["max_f1_drop_points"],
            }
    if "c" in by and "d" in by:
        pairs = list(zip(by["c"], by["d"], strict=False))
        speed = [c["train_runtime_s"] / d["train_runtime_s"] for c, d in pairs]
        summary["d_vs_c"] = {
            "speedup_train_runtime_per_repeat": [round(x, 2) for x in speed],
            "speedup_train_runtime_median": _ratio(speed),
            "speedup_wall_median": _ratio([c["train_wall_s"] / d["train_wall_s"] for c, d in pairs]),
        }
    if inference:
        tps = inference["texts_per_s"]
        ours = tps["predict_logits (batch 128, length-sorted)"]
        summary["inference_speedup_vs_pipeline_defaults"] = round(
            ours / tps["pipeline defaults (batch 1)"], 2
        )
        summary["inference_speedup_vs_pipeline_batch128"] = round(ours / tps["pipeline batch_size=128"], 2)
        summary["meets_inference_target"] = (
            summary["inference_speedup_vs_pipeline_defaults"] >= TARGETS["inference_speedup"]
        )

    return summary


def run(opts: argparse.Namespace, command: str) -> dict:
    loads = {"start": _load()}
    peak_before = matmul_peak()
    runs: list[dict] = []
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        log = Path(tmp) / "workers.log"
        try:
            for repeat in range(opts.repeats):
                for config in opts.configs:
                    load = _load()
                    argv = ["--worker", config, "--epochs", str(opts.epochs)]
                    argv += ["--max_train", str(opts.max_train)] if opts.max_train else []
                    argv += ["--max_test", str(opts.max_test)] if opts.max_test else []
                    row = _run_worker(argv, Path(tmp) / f"{config}{repeat}.json", log)
                    row.update(repeat=repeat, load_1min_before=load, load_1min_after=_load())
                    runs.append(row)
                    print(
                        f"repeat {repeat} {CONFIGS[config]}: {row['train_runtime_s']:.1f} s train, "
                        f"{row['train_samples_per_s']:.1f} samples/s, F1 {row['test_f1_micro']:.4f}, "
                        f"RSS {row['peak_rss_mb_train']:.0f} MB (load {load})",
                        flush=True,
                    )
            inference = None
            if opts.infer_texts:
                load = _load()
                argv = ["--worker", "infer", "--infer_texts", str(opts.infer_texts)]
                inference = _run_worker(
                    argv + ["--repeats", str(opts.infer_repeats)], Path(tmp) / "i.json", log
                )
                inference.update(load_1min_before=load, load_1min_after=_load())
        except subprocess.CalledProcessError:
            print(log.read_text()[-5000:], file=sys.stderr)
            raise
    peak_after = matmul_peak()
    loads["end"] = _load()
    peak = max(peak_before, peak_after)
    for row in runs:
        row["fraction_of_matmul_peak"] = round(row["train_flops_per_s"] / peak, 4)

    summary = summarise(runs, inference)

    return {
        "date": datetime.date.today().isoformat(),
        "command": command,
        "model": MODEL,
        "dataset": "vader-movies",
        "max_length": MAX_LENGTH,
        "targets": TARGETS,
        "matmul_peak_flops_per_s": round(peak),
        "matmul_peak_gflops_before_after": [round(peak_before / 1e9, 1), round(peak_after / 1e9, 1)],
        "runs": runs,
        "summary": summary,
        "inference": inference,
        "load_1min": loads,
        "environment": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }


def merge(result: dict, others: list[dict], names: list[str]) -> dict:
    """`result` plus the training runs of `others` (renumbered as later repeats); summary recomputed."""
    key = ("train_texts", "epochs", "learning_rate", "batch_size", "test_texts")
    want = {tuple(r[k] for k in key) for r in result["runs"]}
    result = {**result, "merged_commands": []}  # re-merging replaces an earlier merge
    runs = [dict(r) for r in result["runs"] if not r.get("merged_from")]
    for other, name in zip(others, names, strict=True):
        if {tuple(r[k] for k in key) for r in other["runs"]} != want:
            raise SystemExit(f"{name}: different settings ({key}); not merged")
        offset = 1 + max(r["repeat"] for r in runs)
        runs += [
            {**r, "repeat": r["repeat"] + offset, "merged_from": other["command"]} for r in other["runs"]
        ]
        result.setdefault("merged_commands", []).append(other["command"])
    result = {**result, "runs": runs}
    result["summary"] = summarise(runs, result.get("inference"))
    return result


# ---------------------------------------------------------------------------------------------- report


def training_table(result: dict) -> str:
    rows = []
    for r in result["runs"]:
        rows.append(
            {
                "config": CONFIGS[r["config"]],
                "rep": r["repeat"],
                "train s": f"{r['train_runtime_s']:.1f}",
                "wall s": f"{r['train_wall_s']:.1f}",
                "samples/s": f"{r['train_samples_per_s']:.1f}",
                "tokens (padding)": f"{r['tokens_processed']:,} ({100 * r['padding_fraction']:.0f}%)",
                "GFLOP/s": f"{r['train_flops_per_s'] / 1e9:.1f}",
                "% of peak": f"{100 * r['fraction_of_matmul_peak']:.1f}",
                "peak RSS MB": f"{r['peak_rss_mb_train']:.0f}",
                "test micro-F1": f"{r['test_f1_micro']:.4f}",
                "macro-F1": f"{r['test_f1_macro']:.4f}",
                "load": f"{r['load_1min_before']}",
            }
        )
    cols = [
        "config",
        "rep",
        "train s",
        "wall s",
        "samples/s",
        "tokens (padding)",
        "GFLOP/s",
        "% of peak",
        "peak RSS MB",
        "test micro-F1",
        "macro-F1",
        "load",
    ]
    return markdown_table(rows, cols)


def summary_lines(result: dict) -> list[str]:
    lines = []
    for other in ("a", "b"):
        s = result["summary"].get(f"c_vs_{other}")
        if not s:
            continue
        lines.append(
            f"- (c) vs ({other}): {s['speedup_train_runtime_median']}x faster training (per repeat "
            f"{s['speedup_train_runtime_per_repeat']}; wall incl. tokenisation {s['speedup_wall_median']}x), "
            f"target >= {s['target_speedup']}x: {'met' if s['meets_speed_target'] else 'NOT met'}; "
            f"micro-F1 (c) minus ({other}): {s['f1_micro_points_c_minus_other']} points, target within "
            f"{TARGETS['max_f1_drop_points']}: {'met' if s['meets_accuracy_target'] else 'NOT met'}"
        )
    if s := result["summary"].get("d_vs_c"):
        lines.append(
            f"- torch.compile: (d) is {s['speedup_train_runtime_median']}x the training speed of (c) (per repeat "
            f"{s['speedup_train_runtime_per_repeat']}; wall incl. compilation {s['speedup_wall_median']}x)"
        )
    if result["runs"] and max(r["test_f1_macro"] for r in result["runs"]) < 0.34:
        lines.append(
            "- CAUTION: every model predicts (almost) only the majority class (macro-F1 <= 1/3), so the "
            "accuracy comparison says nothing here; train longer (the default run) to compare accuracy"
        )
    loads = [r["load_1min_before"] for r in result["runs"]]
    if loads and max(loads) > 1.05 * (result["environment"]["cpus"] or 1):
        lines.append(
            f"- CAUTION: 1-min load averages up to {max(loads)} on {result['environment']['cpus']} CPUs: "
            "other work shared the CPU in some runs; compare rows run at low load"
        )
    if "inference_speedup_vs_pipeline_defaults" in result["summary"]:
        s = result["summary"]
        lines.append(
            f"- inference: predict_logits {s['inference_speedup_vs_pipeline_defaults']}x the texts/s of "
            f"pipeline defaults (target >= {TARGETS['inference_speedup']}x: "
            f"{'met' if s['meets_inference_target'] else 'NOT met'}); "
            f"{s['inference_speedup_vs_pipeline_batch128']}x pipeline with batch_size=128"
        )
    return lines


def inference_table(inf: dict) -> str:
    rows = [
        {
            "method": k,
            "texts/s (best)": f"{v:.1f}",
            "seconds per run": ", ".join(f"{s:.1f}" for s in inf["seconds"][k]),
        }
        for k, v in inf["texts_per_s"].items()
    ]
    return markdown_table(rows, ["method", "texts/s (best)", "seconds per run"])


def features_section(path: Path) -> str:
    if not path.exists():
        return "No `benchmarks/results/features.json` yet: run `python -m benchmarks.bench_features`.\n"
    f = json.loads(path.read_text())
    eq = f["equivalence"]
    rows = [
        {
            "method": "(a) full fine-tuning",
            "s / epoch": f"{f['full_finetune_s_per_epoch']:.1f}",
            "speedup of (c)": f"{f['speedup_full_vs_cached']}x",
        },
        {
            "method": "(b) frozen, backbone every step",
            "s / epoch": f"{f['frozen_every_step_s_per_epoch']:.1f}",
            "speedup of (c)": f"{f['speedup_frozen_vs_cached']}x",
        },
        {
            "method": "(c) frozen, cached features",
            "s / epoch": f"{f['cached_head_s_per_epoch']:.2f}",
            "one-time s": f"{f['cached_extraction_s']} extraction (cache hit {f['cached_extraction_cache_hit_s']})",
        },
    ]
    return (
        f"`python -m benchmarks.bench_features` ({f['train_texts']} vader-movies texts, batch "
        f"{f['batch_size']}, {f['max_length']} tokens, {f['environment']['threads']} threads, load average "
        f"{f['environment']['load_average_1min_at_start']} at start; from `benchmarks/results/features.json`)\n\n"
        + markdown_table(rows, ["method", "s / epoch", "one-time s", "speedup of (c)"])
        + f"\n\nEquivalence ({eq['epochs']} epochs, {eq['train_texts']} texts): validation accuracy "
        f"{eq['accuracy_frozen_every_step']} (every step) vs {eq['accuracy_cached']} (cached), prediction "
        f"agreement {eq['prediction_agreement']}, max |logit diff| {eq['max_abs_logit_diff']:.1e}.\n"
    )


def render_markdown(result: dict, features: Path) -> str:
    env = result["environment"]
    first = result["runs"][0] if result["runs"] else {}
    inf = result.get("inference")
    parts = [
        "# Benchmarks\n",
        "Generated by `python -m benchmarks.bench_trainer` (do not edit by hand; results in "
        "`benchmarks/results/`, which is not committed).\n",
        f"## Training and prediction vs plain transformers ({result['date']})\n",
        f"Command: `{result['command']}`"
        + "".join(
            f"; merged in as repeat {i + 1}: `{c}`" for i, c in enumerate(result.get("merged_commands", []))
        )
        + "\n",
        f"Model {result['model']}, {result['dataset']}: {first.get('train_texts')} training texts, "
        f"{first.get('epochs')} epoch(s), lr {first.get('learning_rate')}, batch {first.get('batch_size')}, "
        f"{first.get('test_texts')} test texts; torch {env['torch']}, transformers {env['transformers']}, "
        f"{env['threads']} threads on {env['cpus']} CPUs. Load average (1 min): {result['load_1min']['start']} "
        f"at start, {result['load_1min']['end']} at end; per run in the table. float32 matmul peak "
        f"(2048x2048, best of before/after {result['matmul_peak_gflops_before_after']}): "
        f"{result['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s.\n",
        "Each row is a fresh process; the configurations alternate within each repeat. `train s` is the Trainer's "
        "train_runtime; `wall s` adds tokenisation and Trainer set-up. (c) runs with `eval_strategy=no` "
        "(the recipe evaluates every epoch) so that no configuration pays for evaluation. GFLOP/s = 6 x "
        "non-embedding parameters x tokens processed (padding included) / train s; attention not counted. "
        "Micro-F1 for all three comes from the same `predict_logits` call on the test split.\n",
        training_table(result),
        "",
        *summary_lines(result),
        "",
    ]
    if inf:
        parts += [
            f"### Batch prediction ({inf['texts']} texts from the four vader test halves, mean "
            f"{inf['mean_tokens']} tokens, max {inf['max_tokens']}; {inf['model']}; load "
            f"{inf['load_1min_before']})\n",
            inference_table(inf),
            "",
        ]
    parts += ["## Cached frozen features\n", features_section(features)]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_trainer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--epochs", type=float, default=2, help="training epochs (the recipe's default: 2)")
    parser.add_argument("--max_train", type=int, default=0, help="subsample the training split (0: all)")
    parser.add_argument("--max_test", type=int, default=0, help="subsample the test split (0: all)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating a, b, c rounds")
    parser.add_argument("--configs", default="abc", help="which configurations to run, e.g. 'bc'")
    parser.add_argument(
        "--infer_texts", type=int, default=5000, help="texts for the inference test (0: skip)"
    )
    parser.add_argument("--infer_repeats", type=int, default=2, help="alternating inference rounds")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file (default results/<date>-trainer.json)"
    )
    parser.add_argument("--markdown", type=Path, default=MARKDOWN, help="markdown report to regenerate")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="add the training runs of these earlier JSON results as further repeats (same settings only)",
    )
    parser.add_argument("--render_only", action="store_true", help="only rewrite the markdown from --output")
    parser.add_argument("--worker", choices=[*CONFIGS, "infer"], help=argparse.SUPPRESS)
    parser.add_argument("--worker_out", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)

    if opts.worker == "infer":
        infer_worker(opts.infer_texts, opts.repeats, opts.worker_out)
        return None
    if opts.worker:
        train_worker(opts.worker, opts.epochs, opts.max_train or None, opts.max_test or None, opts.worker_out)
        return None

    output = opts.output or RESULTS_DIR / f"{datetime.date.today().isoformat()}-trainer.json"
    if opts.render_only:
        if opts.output is None:  # the newest saved run
            output = max(RESULTS_DIR.glob("*-trainer.json"))
        result = json.loads(output.read_text())
    else:
        command = "python -m benchmarks.bench_trainer " + shlex.join(
            list(sys.argv[1:] if argv is None else argv)
        )
        result = run(opts, command.strip())
    if opts.merge:
        result = merge(result, [json.loads(p.read_text()) for p in opts.merge], [str(p) for p in opts.merge])
    if not opts.render_only or opts.merge:
        write_json_atomic(output, result)
    write_text_atomic(opts.markdown, render_markdown(result, RESULTS_DIR / "features.json"))
    print("\n" + training_table(result) + "\n" + "\n".join(summary_lines(result)))
    if result.get("inference"):
        print(inference_table(result["inference"]))
    print(f"Saved to {output} and {opts.markdown}")
    return result


if __name__ == "__main__":
    main()
