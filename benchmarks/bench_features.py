"""Cached frozen-backbone features vs running the backbone every step, on the embedded MiniLM and VADER movies.

    .venv/bin/python -m benchmarks.bench_features            # ~1 minute on an idle 2-core CPU
    .venv/bin/python -m benchmarks.bench_features --train_texts 500 --timed_steps 5   # a quick look

Measures, on the same training texts and batch size:
  (a) full fine-tuning, per epoch;
  (b) frozen backbone run every step (`--strategy frozen` without caching), per epoch;
  (c) cached features: one-time extraction, then head training per epoch.
(a) and (b) time `--timed_steps` optimizer steps after one warm-up step and extrapolate to an epoch;
(c) trains whole epochs and its time includes the Trainer's start-up (so it is, if anything, overstated).
Then equivalence: (b) and (c) each train for `--eq_epochs` epochs on `--eq_texts` texts from the same
start, seed and hyperparameters (the frozen recipe's); we compare validation accuracy, predictions and
head weights. Prints a markdown table; writes benchmarks/results/features.json.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import DataCollatorWithPadding, TrainerCallback, set_seed

from nlptransfer.config import ModelArguments, TransferArguments, default_config, read_yaml
from nlptransfer.data import load_source, subsample
from nlptransfer.features import extract_features, freeze_backbone_eval, train_head_on_features
from nlptransfer.inference import predict_logits
from nlptransfer.modeling import build_classifier, load_tokenizer
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_json_atomic
from nlptransfer.trainers import TransferTrainer, TransferTrainingArguments

RESULTS = Path(__file__).parent / "results" / "features.json"
BATCH = 32
MAX_LENGTH = 128
SEED = 42
HP_KEYS = ("learning_rate", "warmup_steps", "weight_decay")


def recipe_hp(name: str) -> dict:
    """The shipped sentiment YAML's optimizer settings (read, never copied, so the benchmark follows them)."""
    config = read_yaml(default_config(f"sentiment/{name}"))
    return {key: config[key] for key in HP_KEYS}


# recipes/sentiment/minilm_frozen.yaml for the frozen runs, minilm_full.yaml for the full run.
FROZEN_HP = recipe_hp("minilm_frozen.yaml")
FULL_HP = recipe_hp("minilm_full.yaml")


class StepClock(TrainerCallback):
    """Wall-clock time at the end of every optimizer step."""

    def __init__(self):
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        # From the end of step 1 (warm-up: allocations, first-call overheads) to the end of the last.
        return (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)


def _args(out: str, **kw) -> TransferTrainingArguments:
    return TransferTrainingArguments(
        output_dir=out,
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=128,
        seed=SEED,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        **kw,
    )


def _model(strategy: str, label_names: list[str]):
    set_seed(SEED)  # the same new head for every run
    return build_classifier(ModelArguments(), TransferArguments(strategy=strategy), label_names)


def _tokenized(tokenizer, texts: list[str], labels: list[int]) -> Dataset:
    ds = Dataset.from_dict({"text": texts, "label": labels})
    ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True)
    return ds.remove_columns("text")


def _per_step_trainer(model, tokenizer, train: Dataset, args) -> TransferTrainer:
    return TransferTrainer(
        model=model,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
    )


def time_per_step(model, tokenizer, train: Dataset, steps: int, out: str, hp: dict) -> float:
    clock = StepClock()
    trainer = _per_step_trainer(model, tokenizer, train, _args(out, max_steps=steps + 1, **hp))
    trainer.add_callback(clock)
    trainer.train()
    return clock.seconds_per_step()


def accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    return float((logits.argmax(-1) == np.asarray(labels)).mean())


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_features", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--train_texts", type=int, default=2000, help="texts per epoch for the timings")
    parser.add_argument("--timed_steps", type=int, default=20, help="optimizer steps timed for (a) and (b)")
    parser.add_argument("--head_epochs", type=int, default=3, help="epochs timed for (c)")
    parser.add_argument("--eq_texts", type=int, default=1000, help="training texts of the equivalence run")
    parser.add_argument("--eq_epochs", type=int, default=2, help="epochs of the equivalence run")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    load_at_start = os.getloadavg()[0]  # other work on the machine slows every timing below

    source = load_source("vader-movies", seed=SEED)
    label_names = source["train"].features["label"].names
    train = subsample(source["train"], opts.train_texts, SEED)
    texts, labels = list(train["text"]), list(train["label"])
    val_texts, val_labels = list(source["validation"]["text"]), list(source["validation"]["label"])
    steps_per_epoch = math.ceil(len(texts) / BATCH)
    tokenizer = load_tokenizer(ModelArguments().model_name_or_path)
    encoded = _tokenized(tokenizer, texts, labels)

    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        cache = Path(tmp) / "cache"  # cold cache: the extraction really runs

        # (a) full fine-tuning and (b) frozen backbone every step: timed steps, extrapolated to an epoch.
        full_step = time_per_step(
            _model("full", label_names), tokenizer, encoded, opts.timed_steps, f"{tmp}/a", FULL_HP
        )
        frozen = _model("frozen", label_names)
        freeze_backbone_eval(frozen)
        frozen_step = time_per_step(frozen, tokenizer, encoded, opts.timed_steps, f"{tmp}/b", FROZEN_HP)

        # (c) cached: extraction once, then whole epochs of head training.
        cached = _model("frozen", label_names)
        started = time.perf_counter()
        features = extract_features(cached, tokenizer, texts, max_length=MAX_LENGTH, cache=cache)
        extract_s = time.perf_counter() - started
        started = time.perf_counter()
        extract_features(cached, tokenizer, texts, max_length=MAX_LENGTH, cache=cache)
        hit_s = time.perf_counter() - started
        started = time.perf_counter()
        train_head_on_features(
            cached,
            features,
            labels,
            training_args=_args(f"{tmp}/c", num_train_epochs=opts.head_epochs, **FROZEN_HP),
        )
        head_epoch_s = (time.perf_counter() - started) / opts.head_epochs

        # Equivalence: (b) vs (c) from the same start for eq_epochs epochs on eq_texts texts.
        n = min(opts.eq_texts, len(texts))
        start = _model("frozen", label_names)
        per_step, from_cache = copy.deepcopy(start), copy.deepcopy(start)
        eq_args = _args(f"{tmp}/eq", num_train_epochs=opts.eq_epochs, **FROZEN_HP)
        freeze_backbone_eval(per_step)
        started = time.perf_counter()
        _per_step_trainer(per_step, tokenizer, encoded.select(range(n)), eq_args).train()
        per_step_s = time.perf_counter() - started
        started = time.perf_counter()
        eq_features = extract_features(from_cache, tokenizer, texts[:n], max_length=MAX_LENGTH, cache=cache)
        train_head_on_features(from_cache, eq_features, labels[:n], training_args=eq_args)
        cached_s = time.perf_counter() - started
        logits_b = predict_logits(per_step, tokenizer, val_texts, 128, MAX_LENGTH)
        logits_c = predict_logits(from_cache, tokenizer, val_texts, 128, MAX_LENGTH)
        head_diff = max(
            (getattr(per_step.classifier, p) - getattr(from_cache.classifier, p)).abs().max().item()
            for p in ("weight", "bias")
        )

    full_epoch, frozen_epoch = full_step * steps_per_epoch, frozen_step * steps_per_epoch
    results = {
        "model": ModelArguments().model_name_or_path,
        "dataset": "vader-movies",
        "train_texts": len(texts),
        "batch_size": BATCH,
        "max_length": MAX_LENGTH,
        "steps_per_epoch": steps_per_epoch,
        "timed_steps": opts.timed_steps,
        "full_finetune_s_per_epoch": round(full_epoch, 2),
        "frozen_every_step_s_per_epoch": round(frozen_epoch, 2),
        "cached_extraction_s": round(extract_s, 2),
        "cached_extraction_cache_hit_s": round(hit_s, 3),
        "cached_head_s_per_epoch": round(head_epoch_s, 3),
        "speedup_full_vs_cached": round(full_epoch / head_epoch_s, 1),
        "speedup_frozen_vs_cached": round(frozen_epoch / head_epoch_s, 1),
        "equivalence": {
            "train_texts": n,
            "epochs": opts.eq_epochs,
            "validation_texts": len(val_texts),
            "accuracy_frozen_every_step": round(accuracy(logits_b, val_labels), 4),
            "accuracy_cached": round(accuracy(logits_c, val_labels), 4),
            "prediction_agreement": float((logits_b.argmax(-1) == logits_c.argmax(-1)).mean()),
            "max_abs_logit_diff": float(np.abs(logits_b - logits_c).max()),
            "max_abs_head_weight_diff": head_diff,
            "wall_s_frozen_every_step": round(per_step_s, 1),
            "wall_s_cached_incl_extraction": round(cached_s, 1),
        },
        "environment": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_start": round(load_at_start, 2),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    write_json_atomic(opts.output, results)

    eq = results["equivalence"]
    rows = [
        {
            "method": "(a) full fine-tuning",
            "s / epoch": f"{full_epoch:.1f}",
            "speedup of (c)": f"{results['speedup_full_vs_cached']}x",
        },
        {
            "method": "(b) frozen, backbone every step",
            "s / epoch": f"{frozen_epoch:.1f}",
            "speedup of (c)": f"{results['speedup_frozen_vs_cached']}x",
        },
        {
            "method": "(c) frozen, cached features",
            "s / epoch": f"{head_epoch_s:.2f}",
            "one-time s": f"{extract_s:.1f} extraction (cache hit: {hit_s:.2f})",
        },
    ]
    eq_rows = [
        {
            "run": "(b) frozen, backbone every step",
            "val accuracy": f"{eq['accuracy_frozen_every_step']:.4f}",
            "wall s": f"{per_step_s:.1f}",
        },
        {
            "run": "(c) cached features (incl. extraction)",
            "val accuracy": f"{eq['accuracy_cached']:.4f}",
            "wall s": f"{cached_s:.1f}",
        },
    ]
    print(
        f"\nPer-epoch time, {len(texts)} vader-movies texts, batch {BATCH}, MiniLM-L6, "
        f"{torch.get_num_threads()} CPU threads\n"
        + markdown_table(rows, ["method", "s / epoch", "one-time s", "speedup of (c)"])
        + f"\n\nEquivalence: {eq['epochs']} epochs on {n} texts, {len(val_texts)} validation texts\n"
        + markdown_table(eq_rows, ["run", "val accuracy", "wall s"])
        + f"\nprediction agreement {eq['prediction_agreement']:.4f}, max |head weight diff| "
        f"{eq['max_abs_head_weight_diff']:.2e}, max |logit diff| {eq['max_abs_logit_diff']:.2e}\n"
        f"Saved to {opts.output}"
    )
    return results


if __name__ == "__main__":
    main()
