"""Train and apply a sequence classifier: the steps the classification recipes (and `--compare`) share.

    model = build_classifier(model_args, transfer_args, label_names)
    fit = fit_classifier(model, tokenizer, training_args, splits, label_names)
    preds, probs = predict(fit, test["text"])

Single-label data has an int `label` column; multi-label data a `labels` column of class-id lists, trained
as multi-hot targets with a sigmoid head (`problem_type="multi_label_classification"`), with one decision
threshold per label tuned on the validation split.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, List, Value
from transformers import DataCollatorWithPadding, set_seed

from nlptransfer.config import CompareArguments, ModelArguments, TransferArguments
from nlptransfer.errors import DataError
from nlptransfer.evaluation.metrics import (
    classification_metrics,
    make_compute_metrics,
    make_preprocess_logits,
)
from nlptransfer.features import (
    extract_features,
    feature_dataset,
    freeze_backbone_eval,
    head_reads_pooler,
    train_head_on_features,
)
from nlptransfer.inference import decide, predict_logits, probabilities, tune_thresholds
from nlptransfer.modeling import build_classifier, count_parameters, load_tokenizer, save_classifier
from nlptransfer.reporting import load_run, model_card, run_figures
from nlptransfer.runs import RunWriter
from nlptransfer.trainers import TransferTrainer, TransferTrainingArguments

logger = logging.getLogger("nlptransfer")


@dataclass
class FitResult:
    model: Any
    tokenizer: Any
    label_names: list[str]
    multilabel: bool
    max_length: int
    batch_size: int
    train_metrics: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    trainable_parameters: int = 0
    total_parameters: int = 0
    thresholds: np.ndarray | None = None  # multi-label only: one per label
    log_history: list[dict] = field(default_factory=list)  # the Trainer's loss/eval log, for reports


def multi_hot(label_lists: list[list[int]], num_labels: int) -> np.ndarray:
    out = np.zeros((len(label_lists), num_labels), dtype=np.float32)
    for i, ids in enumerate(label_lists):
        out[i, list(ids)] = 1.0
    return out


def encode(splits: DatasetDict, tokenizer, max_length: int, multilabel: bool, num_labels: int) -> DatasetDict:
    """Tokenize `text`; keep only model inputs and `labels` (multi-hot floats for multi-label).

    Splits with no label column (unlabelled texts, e.g. a target domain's) get no `labels`."""

    def tokenize(batch):
        out = tokenizer(batch["text"], truncation=True, max_length=max_length)
        if "label" in batch or "labels" in batch:
            out["labels"] = multi_hot(batch["labels"], num_labels).tolist() if multilabel else batch["label"]
        return out

    # Drop the source columns in map: a float multi-hot `labels` must not be cast back to the int ClassLabel.
    columns = next(iter(splits.values())).column_names
    encoded = splits.map(tokenize, batched=True, remove_columns=columns, desc="tokenize")
    if multilabel and "labels" in columns:  # BCE needs float targets; Arrow would infer int64 from 0.0/1.0
        encoded = encoded.cast_column("labels", List(Value("float32")))
    return encoded


def fit_classifier(
    model,
    tokenizer,
    training_args: TransferTrainingArguments,
    splits: DatasetDict,
    label_names: list[str],
    *,
    multilabel: bool = False,
    max_length: int = 128,
    strategy: str = "full",
    cache_features: bool = True,
    trainer_cls: type[TransferTrainer] = TransferTrainer,
    trainer_kwargs: dict | None = None,
    target_texts: Sequence[str] | None = None,
) -> FitResult:
    """Train `model` (built by `modeling.build_classifier`) on `splits["train"]`, evaluate on `validation`
    (when `splits` has one).

    `strategy="frozen"` keeps the backbone in eval mode (no dropout: it is a fixed feature extractor) and,
    with `cache_features`, trains the head on backbone features computed once and cached on disk.

    `trainer_cls` (a `TransferTrainer` subclass) and `trainer_kwargs` (extra keyword arguments of it, which
    may replace the defaults such as `data_collator`) swap the trainer, e.g. for the domain-adaptation
    trainers; `target_texts` (unlabelled texts of a target domain) are encoded like the training split
    (tokens, or cached features) and passed to it as `target_dataset`.
    """
    trainer_kwargs = dict(trainer_kwargs or {})
    trainable, total = count_parameters(model)
    compute_metrics = make_compute_metrics(label_names, multilabel=multilabel)
    if strategy == "frozen":
        freeze_backbone_eval(model)
        if cache_features and not head_reads_pooler(model):
            logger.warning(
                "feature caching does not support %s; running the frozen backbone every step "
                "(pass --cache_features false to silence this)",
                type(model).__name__,
            )
            cache_features = False
    started = time.perf_counter()
    cached = strategy == "frozen" and cache_features
    if target_texts is not None:
        trainer_kwargs["target_dataset"] = _unlabelled_dataset(
            model, tokenizer, target_texts, cached, max_length, training_args.per_device_eval_batch_size
        )
    if cached:
        if training_args.resume_from_checkpoint:
            logger.warning(
                "cached-features training restarts from step 0 (it is quick); the checkpoint is not used"
            )
        train_output, log_history = _train_on_cached_features(
            model,
            tokenizer,
            training_args,
            splits,
            label_names,
            multilabel,
            max_length,
            compute_metrics,
            trainer_cls,
            trainer_kwargs,
        )
    else:
        encoded = encode(splits, tokenizer, max_length, multilabel, len(label_names))
        trainer = trainer_cls(
            **{
                "model": model,
                "args": training_args,
                "train_dataset": encoded["train"],
                "eval_dataset": encoded.get("validation"),
                "processing_class": tokenizer,
                "data_collator": DataCollatorWithPadding(tokenizer),
                "compute_metrics": compute_metrics,
                # Keep predicted ids, not every evaluation logit, until the end of evaluation.
                "preprocess_logits_for_metrics": make_preprocess_logits(multilabel),
                **trainer_kwargs,  # may replace any of the above (e.g. the data collator)
            }
        )
        # `--resume true` sets resume_from_checkpoint to the run's last complete checkpoint-*: the Trainer
        # then restores weights, optimizer, scheduler, RNG states and skips the batches already seen.
        train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or None)
        log_history = list(trainer.state.log_history)
    seconds = time.perf_counter() - started  # for cached features: extraction (or cache hit) included
    fit = FitResult(
        model=model,  # load_best_model_at_end loads the best weights into this same object
        tokenizer=tokenizer,
        label_names=label_names,
        multilabel=multilabel,
        max_length=max_length,
        batch_size=training_args.per_device_eval_batch_size,
        train_metrics={**train_output.metrics, "wall_seconds": round(seconds, 1)},
        train_seconds=seconds,
        trainable_parameters=trainable,
        total_parameters=total,
        log_history=log_history,
    )
    if "validation" not in splits:
        return fit
    if multilabel:
        _, val_probs = predict(fit, splits["validation"]["text"])
        fit.thresholds = tune_thresholds(
            val_probs, multi_hot(splits["validation"]["labels"], len(label_names))
        )
    fit.validation_metrics = evaluate(fit, splits["validation"])
    return fit


def _train_on_cached_features(
    model,
    tokenizer,
    training_args,
    splits,
    label_names,
    multilabel,
    max_length,
    compute_metrics,
    trainer_cls,
    trainer_kwargs,
):
    """The frozen strategy's fast path: backbone features once (cached on disk), the head trained on them."""
    features, targets = {}, {}
    for split in ("train", "validation") if "validation" in splits else ("train",):
        features[split] = extract_features(
            model,
            tokenizer,
            list(splits[split]["text"]),
            max_length=max_length,
            batch_size=training_args.per_device_eval_batch_size,
        )
        rows = splits[split]
        targets[split] = (
            multi_hot(rows["labels"], len(label_names)) if multilabel else np.asarray(rows["label"])
        )
    train_output, _ = train_head_on_features(
        model,
        features["train"],
        targets["train"],
        training_args=training_args,
        eval_features=features.get("validation"),
        eval_labels=targets.get("validation"),
        compute_metrics=compute_metrics,
        trainer_cls=trainer_cls,
        trainer_kwargs=trainer_kwargs,
    )
    return train_output, []  # train_head_on_features keeps its Trainer to itself: no log history


def _unlabelled_dataset(model, tokenizer, texts, cached: bool, max_length: int, batch_size: int):
    """Unlabelled texts encoded like the training split: the head's cached features, or tokens."""
    if cached:
        features = extract_features(
            model, tokenizer, list(texts), max_length=max_length, batch_size=batch_size
        )
        return feature_dataset(features, None, model, "target")
    unlabelled = DatasetDict(target=Dataset.from_dict({"text": list(texts)}))
    return encode(unlabelled, tokenizer, max_length, False, 0)["target"]


def predict(fit: FitResult, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, probabilities) in the order of `texts`; multi-label predictions are 0/1 matrices."""
    logits = predict_logits(fit.model, fit.tokenizer, list(texts), fit.batch_size, fit.max_length)
    probs = probabilities(logits, fit.multilabel)
    return decide(probs, fit.multilabel, fit.thresholds), probs


def references(fit: FitResult, split) -> np.ndarray:
    if fit.multilabel:
        return multi_hot(split["labels"], len(fit.label_names)).astype(int)
    return np.asarray(split["label"])


def evaluate(fit: FitResult, split) -> dict[str, float]:
    preds, _ = predict(fit, split["text"])
    return classification_metrics(preds, references(fit, split), fit.label_names, multilabel=fit.multilabel)


def prediction_rows(fit: FitResult, split, preds: np.ndarray, probs: np.ndarray) -> list[dict]:
    """One JSON-able row per example, in split order: text, gold, prediction and its probability."""
    names = fit.label_names
    rows = []
    for i, text in enumerate(split["text"]):
        if fit.multilabel:
            gold = [names[j] for j in split["labels"][i]]
            predicted = [names[j] for j in np.flatnonzero(preds[i])]
            rows.append(
                {
                    "text": text,
                    "labels": gold,
                    "prediction": predicted,
                    "scores": {n: round(float(p), 6) for n, p in zip(names, probs[i], strict=True)},
                }
            )
        else:
            rows.append(
                {
                    "text": text,
                    "label": names[split["label"][i]],
                    "prediction": names[preds[i]],
                    "score": float(probs[i][preds[i]]),
                }
            )
    return rows


def save_run(
    run: RunWriter,
    fit: FitResult,
    *,
    recipe: str,
    command: str,
    config: dict,
    metrics: dict,
    results_table: str,
    predictions: list[dict],
    base_model: str,
    dataset: str,
    strategy: str,
    merge_adapters: bool = True,
    notes: Sequence[str] = (),
) -> None:
    """Write model, metrics.json, config.yaml, predictions.jsonl, README.md and the figures through `run`.

    Under `accelerate launch` only the main process writes (`RunWriter`); the run is marked complete when
    the recipe's `with run:` block ends.
    """
    save_classifier(fit.model, fit.tokenizer, run, merge_adapters=merge_adapters)
    run.write_json("metrics.json", metrics)
    run.write_yaml("config.yaml", config)
    run.write_text(
        "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in predictions)
    )
    card = model_card(
        title=f"{Path(base_model).name} for {recipe.replace('_', ' ')} ({dataset})",
        base_model=base_model,
        dataset=dataset,
        strategy=strategy,
        label_names=fit.label_names,
        results_table=results_table,
        trainable=fit.trainable_parameters,
        total=fit.total_parameters,
        command=command,
        notes=notes,
        load_snippet=load_snippet(run.output_dir, strategy, merge_adapters),
        pipeline_tag="text-classification",
    )
    run.write_text("README.md", card)
    write_run_figures(run)


def write_run_figures(run: RunWriter) -> None:
    """loss_curve.png, confusion_matrix.png, per_class.png from the run's saved metrics (those that apply)."""
    if not run.is_main:  # the figures are drawn from the files only the main process wrote
        return
    for name, png in run_figures(load_run(run.output_dir)).items():
        run.write_bytes(name, png)


def load_snippet(output_dir: Path, strategy: str, merged: bool) -> str:
    if strategy == "prompt_tuning" or (strategy in ("lora", "ia3") and not merged):
        return (
            "from peft import AutoPeftModelForSequenceClassification\n"
            "from transformers import AutoConfig, AutoTokenizer, pipeline\n"
            f"cfg = AutoConfig.from_pretrained('{output_dir}/adapter')  # labels of the trained head\n"
            "model = AutoPeftModelForSequenceClassification.from_pretrained(\n"
            f"    '{output_dir}/adapter', num_labels=cfg.num_labels, id2label=cfg.id2label, label2id=cfg.label2id)\n"
            f"clf = pipeline('text-classification', model=model, tokenizer=AutoTokenizer.from_pretrained('{output_dir}'))"
        )
    return f"from transformers import pipeline\nclf = pipeline('text-classification', model='{output_dir}')"


def comparison_methods(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    training_args: TransferTrainingArguments,
    compare_args: CompareArguments,
    splits: DatasetDict,
    label_names: list[str],
    *,
    multilabel: bool = False,
    work_dir: Path,
) -> dict[str, Callable[[int, list[int]], dict[str, float]]]:
    """`run_comparison` callbacks: TF-IDF baseline, random init, each transfer strategy.

    Each neural run trains on the given training subset with the recipe's own settings (seed replaced),
    selects nothing from the test split, and returns test metrics.
    """
    from nlptransfer.evaluation.baselines import tfidf_logreg_method

    train, test = splits["train"], splits["test"]
    test_refs = (
        multi_hot(test["labels"], len(label_names)).astype(int) if multilabel else np.asarray(test["label"])
    )
    train_targets = multi_hot(train["labels"], len(label_names)).astype(int) if multilabel else train["label"]
    methods = {
        "tfidf_logreg": tfidf_logreg_method(
            train["text"],
            train_targets,
            test["text"],
            test_refs,
            label_names,
            multilabel=multilabel,
            class_weight="balanced" if training_args.class_weighted_loss else None,
        )
    }
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)

    def neural(model_overrides: dict, strategy: str, name: str):
        lr = training_args.learning_rate if strategy == "full" else compare_args.compare_adapter_lr

        def fn(seed: int, indices: list[int]) -> dict[str, float]:
            args = dataclasses.replace(
                training_args,
                learning_rate=lr,
                seed=seed,
                output_dir=str(work_dir / f"{name}-seed{seed}-n{len(indices)}"),
                save_strategy="no",
                load_best_model_at_end=False,
                resume_from_checkpoint=None,
                report_to="none",
            )
            set_seed(seed)
            model = build_classifier(
                dataclasses.replace(model_args, **model_overrides),
                dataclasses.replace(transfer_args, strategy=strategy),
                label_names,
                problem_type="multi_label_classification" if multilabel else "single_label_classification",
            )
            subset = DatasetDict(train=train.select(indices), validation=splits["validation"])
            fit = fit_classifier(
                model,
                tokenizer,
                args,
                subset,
                label_names,
                multilabel=multilabel,
                max_length=model_args.max_length,
                strategy=strategy,
                cache_features=transfer_args.cache_features,
            )
            return evaluate(fit, test)

        return fn

    if compare_args.scratch:
        methods["scratch"] = neural({"from_scratch": True}, "full", "scratch")
    for strategy in compare_args.compare_strategies:
        methods[strategy] = neural({}, strategy, strategy)
    return methods


def run_compare(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    training_args: TransferTrainingArguments,
    compare_args: CompareArguments,
    splits: DatasetDict,
    label_names: list[str],
    run: RunWriter,
    *,
    multilabel: bool = False,
) -> list[str]:
    """`--compare`: every method on the same subsets and seeds; writes comparison files (recorded in `run`),
    prints the summary. Returns the files written (main process; [] on the others)."""
    from nlptransfer.evaluation.comparison import run_comparison
    from nlptransfer.reporting import format_summary, write_comparison

    sizes = compare_sizes(compare_args, len(splits["train"]))
    train = splits["train"]
    # The Trainer wants an output_dir per run; nothing is saved there (save_strategy="no"), so use scratch space.
    with tempfile.TemporaryDirectory(prefix="nlptransfer-compare-") as work_dir:
        methods = comparison_methods(
            model_args,
            transfer_args,
            training_args,
            compare_args,
            splits,
            label_names,
            multilabel=multilabel,
            work_dir=Path(work_dir),
        )
        result = run_comparison(
            methods,
            seeds=[training_args.seed + i for i in range(compare_args.seeds)],
            train_sizes=sizes,
            n_train=len(train),
            train_labels=None if multilabel else train["label"],
            metric="f1_macro",
        )
    if not run.is_main:
        return []
    files = run.record(write_comparison(result, run.output_dir))
    print("\n" + format_summary(result))
    return files


def compare_sizes(compare_args: CompareArguments, n_train: int) -> list[int | None]:
    """Parsed `--train_sizes`; fails (before anything is trained or written) on a size above `n_train`."""
    from nlptransfer.evaluation.comparison import parse_train_sizes

    sizes = parse_train_sizes(compare_args.train_sizes)
    too_big = [s for s in sizes if s is not None and s > n_train]
    if too_big:
        raise DataError(
            f"train size {too_big[0]} is larger than the {n_train} training examples; use sizes up to "
            f"{n_train} or 'all' (--train_sizes)"
        )
    return sizes
