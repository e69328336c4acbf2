"""Robust fine-tuning that keeps what pretraining knew (classification recipes; labelled source data only).

- LP-FT (`--lp_ft true`, Kumar et al. 2022): before fine-tuning, the head is fitted by scikit-learn's
  logistic regression on the frozen encoder's pooled features (`linear_probe`: the features of the frozen
  strategy's disk cache when the head reads a cached pooling, else `embed_texts`), copied into the linear
  head (`fit_logistic_head`; multi-label: one regression per label); then `--strategy` fine-tunes from that
  head. A regression rather than a linear-probe Trainer phase: no learning rate or epochs to tune, the same
  solution for every seed, seconds on cached features.
- WiSE-FT (`--wise_alpha A|auto`, Wortsman et al. 2022): after fine-tuning the saved weights are
  theta = (1 - A) * theta_0 + A * theta_ft over the whole plain model (a mergeable adapter is merged first).
  theta_0 is the model as fine-tuning started: the pretrained encoder with, after LP-FT, the linear-probe
  head (the paper's zero-shot end; A = 0 is then exactly the linear probe). Without LP-FT theta_0 has no
  trained head (the new one is random), so the fine-tuned head is kept at every A and only the encoder is
  interpolated. `auto` scores A = 0.0, 0.1, ..., 1.0 on the validation split of the training data (never a
  test set) with the run's --metric_for_best_model (f1_micro when it names no validation score) and keeps
  the best (ties: the smaller A, the one closer to pretraining).
- L2-SP (`--l2sp_weight W`, Li et al. 2018): `TransferTrainer` adds W/2 * ||theta - theta_0||^2 of the
  trainable encoder weights to the loss (nlptransfer/trainers/transfer/trainer.py).

The fields live at the end of `TransferTrainingArguments`; `training.fit_classifier` runs the phases and
records them in `FitResult.robust` (metrics.json "robust", the model card's notes: `robust_notes`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from peft import PeftModel
from torch import nn

from nlptransfer.errors import ConfigError
from nlptransfer.features import extract_features, head_pooling
from nlptransfer.modeling.adapters import merges, read_peft_config
from nlptransfer.strategies import MERGING_PEFT_TYPES, TABLE
from nlptransfer.trainers.contrastive import embed_texts, fit_logistic_head
from nlptransfer.trainers.contrastive.trainer import check_feature_width, classifier_head

logger = logging.getLogger("nlptransfer")

WISE_GRID = tuple(round(0.1 * i, 1) for i in range(11))
FLAGS = ("lp_ft", "wise_alpha", "l2sp_weight")
LP_FT = ("--lp_ft", "drop --lp_ft")  # what copies the regression into the head, and the way out


def robust_options(training_args) -> list[str]:
    """The robust fine-tuning flags this run sets, e.g. ["--lp_ft", "--wise_alpha"]."""
    given = {
        "lp_ft": bool(getattr(training_args, "lp_ft", False)),
        "wise_alpha": getattr(training_args, "wise_alpha", None) is not None,
        "l2sp_weight": getattr(training_args, "l2sp_weight", 0.0) > 0,
    }
    return [f"--{name}" for name in FLAGS if given[name]]


def check_robust(transfer_args, fewshot, compare_args, training_args) -> None:
    """Combinations that parse but cannot work: one `ConfigError` line naming the fix, before any work."""
    flags = robust_options(training_args)
    if not flags:
        return
    strategy, first = transfer_args.strategy, flags[0]
    if fewshot is not None and fewshot.method != "finetune":
        raise ConfigError(
            f"{first} applies to --method finetune; --method {fewshot.method} fits its own head "
            f"(drop {first} or use --method finetune)"
        )
    if compare_args is not None and compare_args.compare:
        raise ConfigError(
            f"--compare compares plain strategies; drop {first} (benchmarks/bench_robust.py compares the "
            "robust fine-tuning options)"
        )
    if strategy == "frozen":
        raise ConfigError(
            f"{first} changes how the encoder fine-tunes, but --strategy frozen trains only the head; use "
            "--strategy full (or --method logreg --strategy frozen for the linear probe alone)"
        )
    row = TABLE[strategy]
    peft_type = row.peft_type
    if strategy == "peft":
        peft_type = str(read_peft_config(transfer_args.peft_config)["peft_type"]).upper()
    if training_args.l2sp_weight > 0 and peft_type is not None:
        raise ConfigError(
            f"--l2sp_weight needs a plain model (--strategy full or bitfit), not {strategy!r}: an adapter "
            "starts at zero, so its theta_0 is implicit and --weight_decay already pulls it there"
        )
    if training_args.wise_alpha is not None and peft_type is not None:
        if peft_type not in MERGING_PEFT_TYPES:
            raise ConfigError(
                f"--wise_alpha interpolates weights, but {strategy} ({peft_type}) does not merge into the "
                "model; use --strategy full, lora, dora, ia3, loha, lokr or vera"
            )
        if not transfer_args.merge_adapters:
            raise ConfigError(
                "--wise_alpha saves the interpolated plain model, so the adapter is merged; drop "
                "--merge_adapters false"
            )


def check_linear_probe(model, training_args) -> None:
    """`--lp_ft` copies a regression on the sentence embedding into the built model's head: one line unless
    that head is a linear layer reading the embedding itself (called before the output directory is
    touched; a word-vector head with a hidden layer or convolutions is refused here, not mid-run)."""
    if getattr(training_args, "lp_ft", False):
        classifier_head(model, *LP_FT)


def refuse_robust(training_args, recipe: str) -> None:
    """For a recipe whose trainers do not run the robust phases: one line if any flag is set."""
    flags = robust_options(training_args)
    if flags:
        raise ConfigError(
            f"{flags[0]} applies to the classification recipes (sentiment, text_classification), not "
            f"{recipe}, whose trainers compute their own loss; drop {flags[0]}"
        )


def pooling_strategy(transfer_args, fewshot, training_args) -> str:
    """What `modeling.pooling.resolve_run_pooling` resolves --pooling auto for: the few-shot method, or
    "lp_ft" (the linear probe reads the checkpoint's sentence embedding: mean for MiniLM, not the
    untrained pooler a plain full fine-tuning keeps), else the strategy."""
    if fewshot.method != "finetune":
        return fewshot.method
    return "lp_ft" if getattr(training_args, "lp_ft", False) else transfer_args.strategy


# ---------------------------------------------------------------------------------------------- LP


def fit_multilabel_head(
    model: nn.Module, features: np.ndarray, targets: np.ndarray, seed: int, balanced: bool = False
) -> dict[str, float]:
    """One logistic regression per label (multi-hot `targets`), copied into the sigmoid head's rows; a label
    that is always (never) on gets weight 0 and a large (small) bias. Returns the mean per-label accuracy."""
    from sklearn.linear_model import LogisticRegression  # scikit-learn is slow to import

    linears = classifier_head(model, *LP_FT)
    check_feature_width(linears, features)
    y = np.asarray(targets) > 0.5
    weight = np.zeros((y.shape[1], features.shape[1]), dtype=np.float32)
    bias = np.zeros(y.shape[1], dtype=np.float32)
    accuracy = []
    for j in range(y.shape[1]):
        column = y[:, j]
        if column.all() or not column.any():
            bias[j] = 10.0 if column.all() else -10.0
            accuracy.append(1.0)
            continue
        regression = LogisticRegression(
            max_iter=1000, random_state=seed, class_weight="balanced" if balanced else None
        ).fit(features, column)
        weight[j], bias[j] = regression.coef_[0], regression.intercept_[0]
        accuracy.append(float(regression.score(features, column)))
    for linear in linears:
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
    return {"logreg_train_accuracy": float(np.mean(accuracy))}


def linear_probe(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    targets,
    *,
    multilabel: bool,
    seed: int,
    balanced: bool = False,
    max_length: int = 128,
    batch_size: int = 64,
) -> dict[str, float]:
    """LP-FT's first phase: logistic regression on the frozen encoder's pooled features (what the head
    reads), copied into the head. The encoder is not changed. Returns the regression's training accuracy
    and the phase's seconds."""
    started = time.perf_counter()
    classifier_head(model, *LP_FT)  # a linear head reading the embedding to copy into, or one line
    was_training = model.training
    if head_pooling(model) is not None:  # the frozen strategy's cached features (keyed by the weights)
        features = extract_features(
            model, tokenizer, list(texts), max_length=max_length, batch_size=batch_size
        )
    else:
        features = embed_texts(model, tokenizer, list(texts), max_length=max_length, batch_size=batch_size)
    model.train(was_training)
    if multilabel:
        record = fit_multilabel_head(model, features, np.asarray(targets), seed=seed, balanced=balanced)
    else:
        record = fit_logistic_head(model, features, list(targets), seed=seed, balanced=balanced)
    record["seconds"] = round(time.perf_counter() - started, 1)
    logger.info(
        "LP-FT: linear probe on %d frozen features (train accuracy %.3f), now fine-tuning from its head",
        len(features),
        record["logreg_train_accuracy"],
    )
    return record


# -------------------------------------------------------------------------------------------- WiSE


def to_plain(model: nn.Module) -> nn.Module:
    """The plain transformers model: a mergeable adapter merged in (in place); a plain model as it is."""
    if not isinstance(model, PeftModel):
        return model
    if not merges(model):
        raise ConfigError("--wise_alpha needs a plain model or an adapter that merges (lora, dora, ia3, ...)")
    return model.merge_and_unload()


def plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights as the plain model's state dict (an adapter merged into a copy of the model:
    before training every mergeable adapter is the identity, so this is the pretrained weights + head)."""
    if isinstance(model, PeftModel):
        model = to_plain(copy.deepcopy(model))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def interpolate(
    theta_0: dict[str, torch.Tensor], theta_ft: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """(1 - alpha) * theta_0 + alpha * theta_ft per floating-point tensor; exactly theta_0 at 0 and
    theta_ft at 1; other tensors (integer buffers) from theta_ft."""
    out = {}
    for key, ft in theta_ft.items():
        start = theta_0.get(key)
        if start is None or not ft.is_floating_point() or alpha == 1:
            out[key] = ft.clone()
        elif alpha == 0:
            out[key] = start.to(ft.device, ft.dtype).clone()
        else:
            out[key] = (1 - alpha) * start.to(ft.device, ft.dtype) + alpha * ft
    return out


def head_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """The state-dict keys outside the encoder (`base_model_prefix`): the task head."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    return [k for k in state if not k.startswith(prefix)]


def wise_ft(
    model: nn.Module,
    theta_0: dict[str, torch.Tensor],
    alpha: str,
    score: Callable[[], dict[str, float]],
    *,
    metric: str | None,
    keep_head: bool,
) -> dict:
    """Interpolate the plain fine-tuned `model` with `theta_0` in place (see the module docstring).

    `alpha`: a number in [0, 1] or "auto"; `score()` scores the model as it is on the validation split
    (the only split auto looks at); `keep_head`: the fine-tuned head at every alpha. Returns the record:
    alpha, the validation curve (auto), the metric, which head theta_0 had."""
    started = time.perf_counter()
    theta_ft = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if keep_head:
        theta_0 = {**theta_0, **{k: theta_ft[k] for k in head_keys(model, theta_ft)}}
    record: dict = {"theta_0_head": "fine-tuned (kept)" if keep_head else "linear probe"}
    if alpha == "auto":
        curve = {}
        for a in WISE_GRID:
            model.load_state_dict(interpolate(theta_0, theta_ft, a))
            scores = score()
            name = metric if metric in scores else "f1_micro"
            curve[a] = float(scores[name])
        best = max(WISE_GRID, key=lambda a: (curve[a], -a))
        record.update(metric=name, curve={f"{a:.1f}": round(v, 6) for a, v in curve.items()})
        logger.info(
            "WiSE-FT: alpha %.1f (validation %s %.4f; alpha 1: %.4f)", best, name, curve[best], curve[1.0]
        )
    else:
        best = float(alpha)
    model.load_state_dict(interpolate(theta_0, theta_ft, best))
    record["alpha"] = best
    record["seconds"] = round(time.perf_counter() - started, 1)
    return record


def wise_metric(training_args) -> str | None:
    """The validation score auto selects on: --metric_for_best_model without its eval_ prefix."""
    metric = getattr(training_args, "metric_for_best_model", None)
    return metric.removeprefix("eval_") if metric else None


# ----------------------------------------------------------------------------------------- records


def robust_notes(record: dict) -> list[str]:
    """The model card's lines on the robust fine-tuning of this run (none for a plain run)."""
    notes = []
    if lp := record.get("lp"):
        val = lp.get("validation", {})
        shown = f", validation micro-F1 {val['f1_micro']:.3f}" if "f1_micro" in val else ""
        notes.append(
            "LP-FT (Kumar et al. 2022): phase 1 fitted the head by logistic regression on the frozen "
            f"encoder's pooled features (train accuracy {lp['logreg_train_accuracy']:.3f}{shown}); phase 2 "
            "fine-tuned every trained weight from that head."
        )
    if l2sp := record.get("l2sp"):
        notes.append(
            f"L2-SP (Li et al. 2018): W/2 * ||theta - theta_0||^2 of the encoder weights added to the loss, "
            f"W = {l2sp['weight']:g}; final ||theta - theta_0||^2 = {l2sp['distance']:.4g}."
        )
    if wise := record.get("wise"):
        how = (
            f"chosen on the validation split ({wise['metric']}: "
            + ", ".join(f"{a}: {v:.3f}" for a, v in wise["curve"].items())
            + ")"
            if "curve" in wise
            else "set by --wise_alpha"
        )
        notes.append(
            f"WiSE-FT (Wortsman et al. 2022): the saved weights are (1 - a) * theta_0 + a * theta_ft with "
            f"a = {wise['alpha']:.1f}, {how}; theta_0's head: {wise['theta_0_head']}."
        )
    return notes
