"""Few-shot transfer in the classification recipes (sentiment, text_classification): which rows train
(`--examples_per_class`, `--train_labels`) and how (`--method finetune|logreg|contrastive`).

    check_fewshot(fewshot, transfer_args, compare_args, data_args)     # conflicts, before any work
    splits = fewshot_splits(splits, fewshot, data_args, seed=training_args.seed)
    check_fewshot_rows(fewshot, splits["train"], multilabel)            # the drawn rows suit --method
    model = build_classifier(...); check_method(model, fewshot)         # before the output dir is touched
    fit = fit_fewshot(model, tokenizer, training_args, fewshot, splits, names, ...)   # a training.FitResult

- `finetune`: `training.fit_classifier` with the run's `--strategy` (cross-entropy), on the few-shot rows.
- `logreg`: scikit-learn logistic regression on the frozen encoder's pooled features (`--strategy frozen`).
- `contrastive`: `ContrastiveTrainer` (SetFit-style pairs + cosine-similarity loss) tunes the encoder
  (`--strategy full`, `lora`, ...), then logistic regression on the tuned embeddings.
logreg and contrastive copy the regression into the classifier's linear head (`fit_logistic_head`), so the
saved model is the usual classifier and loads with `nlptransfer predict` / `pipeline()`.

The K examples per class are drawn with the run's `--seed` (as `--compare` draws its subsets), through the
one subsample of `nlptransfer.data.splits`; every method given the same seed trains on the same rows.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter

from datasets import DatasetDict

from nlptransfer.config import flag_set, user_set
from nlptransfer.data import subsample
from nlptransfer.errors import ConfigError, DataError
from nlptransfer.modeling import count_parameters
from nlptransfer.trainers.contrastive import (
    ContrastiveTrainer,
    ContrastiveTrainingArguments,
    FewShotArguments,
    embed_texts,
    fit_logistic_head,
)
from nlptransfer.trainers.contrastive.config import CONTRASTIVE_FIELDS
from nlptransfer.trainers.contrastive.trainer import backbone_of, classifier_head
from nlptransfer.trainers.transfer import FineTuningArguments
from nlptransfer.training import FitResult, fit_classifier, score_split

logger = logging.getLogger("nlptransfer")


def check_fewshot(fewshot: FewShotArguments, transfer_args, compare_args, data_args) -> None:
    """Option combinations that parse but cannot work together: one `ConfigError` line naming the fix."""
    method, strategy = fewshot.method, transfer_args.strategy
    if method == "logreg" and strategy != "frozen":
        raise ConfigError(
            f"--method logreg fits a logistic regression on the frozen encoder's features, so it trains no "
            f"encoder weight: pass --strategy frozen (not {strategy!r}), or --method contrastive to tune it"
        )
    if method == "contrastive" and strategy == "frozen":
        raise ConfigError(
            "--method contrastive tunes the encoder; use --strategy full or lora (or --method logreg for "
            "frozen features)"
        )
    # A contrastive option set away from its default (the shipped YAMLs list the defaults, and passing one of
    # them with --config must not fail)
    defaults = {f.name: f.default for f in dataclasses.fields(fewshot)}
    given = [
        name
        for name in CONTRASTIVE_FIELDS
        if name in user_set(fewshot) and getattr(fewshot, name) != defaults.get(name)
    ]
    if given and method != "contrastive":
        raise ConfigError(
            f"--{given[0]} applies to --method contrastive only; drop it or add --method contrastive"
        )
    if compare_args.compare and method != "finetune":
        raise ConfigError(
            f"--compare compares fine-tuning strategies; --method {method} is not one of them (drop --compare, "
            "or run benchmarks/bench_fewshot.py for the few-shot methods side by side)"
        )
    if fewshot.examples_per_class is not None and "max_train_samples" in user_set(data_args):
        # a flag beats a --config value, either way round (recipes/text_classification/
        # minilm_pubmed_pubtype.yaml sets max_train_samples, recipes/sentiment/minilm_fewshot.yaml
        # examples_per_class); two choices at the same level are refused
        per_class_flag = "examples_per_class" in flag_set(fewshot)
        if per_class_flag and "max_train_samples" not in flag_set(data_args):
            logger.info(
                "--examples_per_class %d chooses the training rows; max_train_samples %s of --config is unused",
                fewshot.examples_per_class,
                data_args.max_train_samples,
            )
        elif not per_class_flag and "max_train_samples" in flag_set(data_args):
            logger.info(
                "--max_train_samples %d chooses the training rows; examples_per_class %d of --config is "
                "unused",
                data_args.max_train_samples,
                fewshot.examples_per_class,
            )
            fewshot.examples_per_class = None  # fewshot_splits then draws --max_train_samples rows
        else:
            raise ConfigError(
                "--examples_per_class and --max_train_samples both choose the training rows; pass one of them"
            )


def fewshot_splits(
    splits: DatasetDict, fewshot: FewShotArguments, data_args, seed: int, stratify_by: str = "label"
) -> DatasetDict:
    """`splits` with train (and validation) restricted to `--train_labels`, then the training rows:
    `--examples_per_class` K of every class (drawn with `seed`), else at most `--max_train_samples`
    (stratified, drawn with `--split_seed`). The test split is left whole."""
    if fewshot.train_labels:
        if stratify_by != "label":
            raise ConfigError("--train_labels needs single-label data (one class per row)")
        names = splits["train"].features["label"].names
        unknown = [name for name in fewshot.train_labels if name not in names]
        if unknown:
            raise DataError(
                f"--train_labels {unknown[0]!r} is not a label of the training data (labels: {', '.join(names)})"
            )
        if len(fewshot.train_labels) < 2:
            raise ConfigError("--train_labels needs at least 2 labels to train a classifier between them")
        keep = {names.index(name) for name in fewshot.train_labels}
        for split in ("train", "validation"):  # select, not filter: no cache file is written
            if split in splits:
                rows = [i for i, y in enumerate(splits[split]["label"]) if y in keep]
                splits[split] = splits[split].select(rows)
    if fewshot.examples_per_class is None:
        splits["train"] = subsample(
            splits["train"], data_args.max_train_samples, data_args.split_seed, stratify_by
        )
        return splits
    splits["train"] = subsample(
        splits["train"], fewshot.examples_per_class, seed, stratify_by, per_class=True
    )
    logger.info(
        "few-shot: %d examples per class, %d training rows (--seed %d)",
        fewshot.examples_per_class,
        len(splits["train"]),
        seed,
    )
    return splits


def check_fewshot_rows(fewshot: FewShotArguments, train, multilabel: bool = False) -> None:
    """What `--method` needs of the drawn training rows (`fewshot_splits`' train split), checked before the
    output directory is touched: single-label rows of at least 2 classes; for contrastive, at least 2 rows
    of every class (a positive pair)."""
    if fewshot.method == "finetune":
        return
    if multilabel:
        raise ConfigError(f"--method {fewshot.method} needs single-label data; use --method finetune")
    feature = train.features["label"]
    counts = Counter(train["label"])
    name = {c: feature.int2str(c) if hasattr(feature, "int2str") else c for c in counts}  # ClassLabel names
    if len(counts) < 2:
        only = ", ".join(repr(name[c]) for c in counts) or "none"
        raise DataError(
            f"--method {fewshot.method} needs training examples of at least 2 classes (the training rows "
            f"hold {only}); pass more rows (--max_train_samples) or --examples_per_class"
        )
    label, count = min(counts.items(), key=lambda item: (item[1], item[0]))
    if fewshot.method == "contrastive" and count < 2:
        raise DataError(
            f"--method contrastive needs >= 2 training examples of every class (class {name[label]!r} has "
            f"{count}); use --examples_per_class 2 or more"
        )


def check_method(model, fewshot: FewShotArguments) -> None:
    """What `--method` needs of the built model: a linear head reading the sentence embedding to copy a
    regression into; for contrastive, trainable encoder weights (not a prompt outside the encoder)."""
    if fewshot.method == "finetune":
        return
    classifier_head(model, f"--method {fewshot.method}")
    if fewshot.method == "contrastive" and not any(p.requires_grad for p in backbone_of(model).parameters()):
        raise ConfigError(
            "--method contrastive tunes the encoder's weights, but this strategy trains none of them (e.g. a "
            "soft prompt); use --strategy full or lora"
        )


def contrastive_arguments(training_args, fewshot: FewShotArguments) -> ContrastiveTrainingArguments:
    """The run's fine-tuning settings with the contrastive learning rate, epochs and iterations; no
    evaluation or checkpoints (the pairs have no validation counterpart)."""
    values = {
        f.name: getattr(training_args, f.name) for f in dataclasses.fields(FineTuningArguments) if f.init
    }
    values.update(
        learning_rate=fewshot.contrastive_learning_rate,
        num_train_epochs=fewshot.contrastive_epochs,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        metric_for_best_model=None,
        resume_from_checkpoint=None,
    )
    return ContrastiveTrainingArguments(**values, contrastive_iterations=fewshot.contrastive_iterations)


def fit_fewshot(
    model,
    tokenizer,
    training_args,
    fewshot: FewShotArguments,
    splits: DatasetDict,
    label_names: list[str],
    *,
    multilabel: bool = False,
    max_length: int = 128,
    strategy: str = "full",
    cache_features: bool = True,
) -> FitResult:
    """Train `model` by `fewshot.method` (see the module docstring); the `FitResult` every recipe saves."""
    if fewshot.method == "finetune":
        return fit_classifier(
            model,
            tokenizer,
            training_args,
            splits,
            label_names,
            multilabel=multilabel,
            max_length=max_length,
            strategy=strategy,
            cache_features=cache_features,
        )
    if multilabel:
        raise ConfigError(f"--method {fewshot.method} needs single-label data; use --method finetune")
    trainable, total = count_parameters(model)
    started = time.perf_counter()
    train = splits["train"]
    metrics: dict = {}
    log_history: list[dict] = []
    if fewshot.method == "contrastive":
        trainer = ContrastiveTrainer(
            model=model,
            args=contrastive_arguments(training_args, fewshot),
            train_dataset=train.select_columns(["text", "label"]),
            processing_class=tokenizer,
            max_length=max_length,
        )
        metrics = dict(trainer.train().metrics)
        log_history = list(trainer.state.log_history)
    batch = training_args.per_device_eval_batch_size
    features = embed_texts(model, tokenizer, train["text"], max_length=max_length, batch_size=batch)
    weighted = getattr(training_args, "class_weighted_loss", False)
    metrics.update(
        fit_logistic_head(model, features, train["label"], seed=training_args.seed, balanced=weighted)
    )
    seconds = time.perf_counter() - started
    fit = FitResult(
        model=model,
        tokenizer=tokenizer,
        label_names=label_names,
        multilabel=False,
        max_length=max_length,
        batch_size=batch,
        train_metrics={**metrics, "wall_seconds": round(seconds, 1)},
        train_seconds=seconds,
        trainable_parameters=trainable,
        total_parameters=total,
        log_history=log_history,
    )
    if "validation" in splits and len(splits["validation"]):
        fit.validation_metrics = score_split(fit, splits["validation"]).scores
    return fit


def fewshot_notes(fewshot: FewShotArguments, strategy: str, n_train: int) -> list[str]:
    """The model card's lines on how the classifier was trained from few examples (none for plain runs)."""
    notes = []
    if fewshot.examples_per_class is not None:
        notes.append(
            f"Few-shot: trained on {fewshot.examples_per_class} examples per class ({n_train} rows, drawn "
            "with the run's --seed)."
        )
    if fewshot.train_labels:
        notes.append(
            f"Trained on the labels {', '.join(fewshot.train_labels)} only; tested on every label of the data "
            "(the others are never predicted)."
        )
    if fewshot.method == "logreg":
        notes.append(
            "Trained with --method logreg: scikit-learn logistic regression on the frozen encoder's pooled "
            "features, copied into the linear head (the encoder is the pretrained one)."
        )
    if fewshot.method == "contrastive":
        notes.append(
            f"Trained with --method contrastive (SetFit-style): the encoder was fine-tuned (--strategy {strategy}) "
            f"on {2 * fewshot.contrastive_iterations} pairs per training example ({fewshot.contrastive_iterations} "
            "iterations, half same-label = 1.0, half different-label = 0.0) with the cosine-similarity loss on "
            f"the pooled embedding ({fewshot.contrastive_epochs:g} epoch(s), learning rate "
            f"{fewshot.contrastive_learning_rate:g}); then scikit-learn logistic regression on the tuned "
            "embeddings, copied into the linear head."
        )
    return notes
