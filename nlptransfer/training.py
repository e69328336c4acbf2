"""Train and apply a sequence classifier: the steps the classification recipes (and `--compare`) share.

    model = build_classifier(model_args, transfer_args, label_names)
    fit = fit_classifier(model, tokenizer, training_args, splits, label_names)
    preds, probs = predict(fit, test["text"])
    scored = score_split(fit, test)  # predictions, references and scores of a labelled split

Single-label data has an int `label` column; multi-label data a `labels` column of class-id lists, trained
as multi-hot targets with a sigmoid head (`problem_type="multi_label_classification"`), with one decision
threshold per label tuned on the validation split (`nlptransfer.inference`).

Saving a run and `--compare` are the recipes' part: `nlptransfer/recipes/_classification.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, List, Value
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import DataCollatorWithPadding, TrainerState
from transformers.trainer_utils import TrainOutput

from nlptransfer.errors import ConfigError
from nlptransfer.evaluation.metrics import (
    classification_metrics,
    collapse_warning,
    make_compute_metrics,
    make_preprocess_logits,
)
from nlptransfer.features import (
    extract_features,
    feature_dataset,
    freeze_backbone_eval,
    head_pooling,
    train_head_on_features,
)
from nlptransfer.inference import decide, predict_logits, probabilities, tune_thresholds
from nlptransfer.modeling import count_parameters, load_model
from nlptransfer.robust import linear_probe, plain_state, to_plain, wise_ft, wise_metric
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
    robust: dict = field(default_factory=dict)  # LP-FT / WiSE-FT / L2-SP phases (nlptransfer.robust)


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
        if cache_features and head_pooling(model) is None:
            logger.warning(
                "feature caching does not support %s; running the frozen backbone every step "
                "(pass --cache_features false to silence this)",
                type(model).__name__,
            )
            cache_features = False
    started = time.perf_counter()
    robust: dict = {}
    batch = training_args.per_device_eval_batch_size
    if getattr(training_args, "lp_ft", False):  # LP-FT phase 1: the head from frozen features
        train = splits["train"]
        targets = multi_hot(train["labels"], len(label_names)) if multilabel else train["label"]
        weighted = getattr(training_args, "class_weighted_loss", False)
        robust["lp"] = linear_probe(
            model,
            tokenizer,
            train["text"],
            targets,
            multilabel=multilabel,
            seed=training_args.seed,
            balanced=weighted,
            max_length=max_length,
            batch_size=batch,
        )
        if "validation" in splits:
            probe = FitResult(model, tokenizer, label_names, multilabel, max_length, batch)
            robust["lp"]["validation"] = validate(probe, splits["validation"]).scores
    wise_alpha = getattr(training_args, "wise_alpha", None)
    if wise_alpha == "auto" and "validation" not in splits:
        raise ConfigError("--wise_alpha auto chooses alpha on the validation split; pass a number")
    theta_0 = plain_state(model) if wise_alpha is not None else None  # WiSE-FT's starting point
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
        trainer = classifier_trainer(
            model, tokenizer, training_args, encoded, label_names, multilabel, trainer_cls, trainer_kwargs
        )
        # `--resume true` sets resume_from_checkpoint to the run's last complete checkpoint-*: the Trainer
        # then restores weights, optimizer, scheduler, RNG states and skips the batches already seen.
        train_output = train_or_restore(trainer, training_args.resume_from_checkpoint or None)
        log_history = list(trainer.state.log_history)
        if trainer.l2sp_reference:
            robust["l2sp"] = {"weight": training_args.l2sp_weight, "distance": trainer.l2sp_distance()}
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
        robust=robust,
    )
    if "lp" in robust:  # both phases in the training metrics
        fit.train_metrics.update(
            lp_train_accuracy=robust["lp"]["logreg_train_accuracy"], lp_seconds=robust["lp"]["seconds"]
        )
    if theta_0 is not None:  # WiSE-FT: the saved model is the interpolated plain one
        fit.model = to_plain(fit.model)
        robust["wise"] = wise_ft(
            fit.model,
            theta_0,
            wise_alpha,
            lambda: validate(fit, splits["validation"]).scores,
            metric=wise_metric(training_args),
            keep_head="lp" not in robust,
        )
        fit.train_seconds += robust["wise"]["seconds"]
        fit.train_metrics["wise_alpha"] = robust["wise"]["alpha"]
    if "validation" not in splits:
        return fit
    scored = validate(fit, splits["validation"])
    fit.validation_metrics = scored.scores
    if warning := collapse_warning(scored.preds, label_names, multilabel):
        logger.warning(warning)
    return fit


def validate(fit: FitResult, validation) -> ScoredSplit:
    """Score the validation split; multi-label: the per-label thresholds are tuned on it first."""
    if fit.multilabel:
        _, probs = predict(fit, validation["text"])
        fit.thresholds = tune_thresholds(probs, multi_hot(validation["labels"], len(fit.label_names)))
    return score_split(fit, validation)


def classifier_trainer(
    model,
    tokenizer,
    training_args: TransferTrainingArguments,
    encoded: DatasetDict,
    label_names: list[str],
    multilabel: bool = False,
    trainer_cls: type[TransferTrainer] = TransferTrainer,
    trainer_kwargs: dict | None = None,
) -> TransferTrainer:
    """The trainer of `fit_classifier`'s token path on `encode`d splits (train, and validation when there is
    one); `trainer_kwargs` may replace any default, e.g. `model=None, model_init=...` for a search
    (`nlptransfer.hpo`)."""
    return trainer_cls(
        **{
            "model": model,
            "args": training_args,
            "train_dataset": encoded["train"],
            "eval_dataset": encoded.get("validation"),
            "processing_class": tokenizer,
            "data_collator": DataCollatorWithPadding(tokenizer),
            "compute_metrics": make_compute_metrics(label_names, multilabel=multilabel),
            # Keep predicted ids, not every evaluation logit, until the end of evaluation.
            "preprocess_logits_for_metrics": make_preprocess_logits(multilabel),
            **(trainer_kwargs or {}),  # may replace any of the above (e.g. the data collator)
        }
    )


def train_or_restore(trainer, checkpoint: str | None = None) -> TrainOutput:
    """`trainer.train(resume_from_checkpoint=checkpoint)`, except for a checkpoint saved when training had
    ended (global_step == max_steps: the run was killed while testing or saving). The Trainer would take one
    more optimizer step from it; here its weights (the best checkpoint's with load_best_model_at_end) and
    state are restored instead, and the output's training_loss is None (no step ran in this process)."""
    if checkpoint is None:
        return trainer.train()
    state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    if not (state.max_steps > 0 and state.global_step >= state.max_steps):
        return trainer.train(resume_from_checkpoint=checkpoint)
    best = state.best_model_checkpoint if trainer.args.load_best_model_at_end else None
    source = Path(best) if best and Path(best).is_dir() else Path(checkpoint)
    if isinstance(trainer.model, PeftModel):
        set_peft_model_state_dict(trainer.model, load_file(source / "adapter_model.safetensors"))
    else:  # the same class, read through the one loader (safetensors; any sharding; tied weights)
        trainer.model.load_state_dict(load_model(type(trainer.model), source).state_dict())
    trainer.state = state
    logger.info("training had finished at %s: restored it, no further step", source)
    return TrainOutput(state.global_step, None, {})


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


@dataclass
class ScoredSplit:
    """A labelled split and what the classifier made of it; `preds`, `probs`, `refs` in the split's row order."""

    split: Any
    preds: np.ndarray
    probs: np.ndarray
    refs: np.ndarray
    scores: dict[str, float]


def score_split(fit: FitResult, split) -> ScoredSplit:
    """Predict every row of a labelled split and score the predictions against its references."""
    preds, probs = predict(fit, split["text"])
    refs = references(fit, split)
    scores = classification_metrics(preds, refs, fit.label_names, multilabel=fit.multilabel)
    return ScoredSplit(split, preds, probs, refs, scores)


def evaluate(fit: FitResult, split) -> dict[str, float]:
    return score_split(fit, split).scores


def prediction_rows(fit: FitResult, split, preds: np.ndarray, probs: np.ndarray) -> list[dict]:
    """One JSON-able row per example, in split order, in the schema of `nlptransfer predict` plus the gold
    label: text, `gold`, `label` (the prediction; lists for multi-label), `score` (single-label: the
    predicted class's probability) and every class's `probabilities`."""
    names = fit.label_names
    rows = []
    for i, text in enumerate(split["text"]):
        shares = {n: round(float(p), 6) for n, p in zip(names, probs[i], strict=True)}
        if fit.multilabel:
            gold = [names[j] for j in split["labels"][i]]
            predicted = [names[j] for j in np.flatnonzero(preds[i])]
            rows.append({"text": text, "gold": gold, "label": predicted, "probabilities": shares})
        else:
            rows.append(
                {
                    "text": text,
                    "gold": names[split["label"][i]],
                    "label": names[preds[i]],
                    "score": round(float(probs[i][preds[i]]), 6),
                    "probabilities": shares,
                }
            )
    return rows
