"""Configs of `TransferTrainer`: what it does to any model, and the class-weighted loss of its own."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlptransfer.config import RunArguments
from nlptransfer.errors import ConfigError


@dataclass
class FineTuningArguments(RunArguments):
    """`RunArguments` plus the fine-tuning knobs `TransferTrainer` applies to every model it trains
    (the base of the configs of its subclasses whose loss is their own: distillation, multi-task)."""

    layerwise_lr_decay: float = field(
        default=1.0,
        metadata={
            "help": "Layer-wise learning-rate decay: layer l from the top trains at lr * decay**l "
            "(head at lr). 1.0 disables; 0.8-0.95 is typical."
        },
    )
    freeze_embeddings: bool = field(default=False, metadata={"help": "Keep the input embeddings frozen."})
    gradual_unfreezing_steps: int = field(
        default=0,
        metadata={
            "help": "ULMFiT gradual unfreezing: start with only the head trainable and unfreeze one more "
            "layer group (top down) every N optimizer steps. 0 disables."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.layerwise_lr_decay <= 1:
            raise ConfigError(
                f"layerwise_lr_decay={self.layerwise_lr_decay} must be in (0, 1]; 1.0 disables it"
            )
        if self.gradual_unfreezing_steps < 0:
            raise ConfigError("gradual_unfreezing_steps must be >= 0 (0 disables gradual unfreezing)")


@dataclass
class TransferTrainingArguments(FineTuningArguments):
    """`TrainingArguments` plus every knob of `TransferTrainer` (its cross-entropy loss included)."""

    class_weighted_loss: bool = field(
        default=False,
        metadata={"help": "Weight the loss by inverse class frequency of the training labels (imbalance)."},
    )
    min_train_steps: int = field(
        default=0,
        metadata={
            "help": "Size the budget to the data: raise --num_train_epochs so that at least this many "
            "optimizer steps run on a small training set (only when you set neither --num_train_epochs nor "
            "--max_steps). 0 disables."
        },
    )
    # Robust fine-tuning (nlptransfer/robust.py): keep what pretraining knew.
    lp_ft: bool = field(
        default=False,
        metadata={
            "help": "LP-FT (Kumar et al. 2022): first fit the head by logistic regression on the frozen "
            "encoder's pooled features (linear probe), then fine-tune with --strategy from that head."
        },
    )
    wise_alpha: str | None = field(
        default=None,
        metadata={
            "help": "WiSE-FT (Wortsman et al. 2022): after fine-tuning, save (1-A)*pretrained + A*fine-tuned "
            "weights; A in [0, 1], or auto: the best of 0.0, 0.1, ..., 1.0 on the validation split. "
            "Unset: the fine-tuned weights."
        },
    )
    l2sp_weight: float = field(
        default=0.0,
        metadata={
            "help": "L2-SP (Li et al. 2018): add W/2 * ||theta - theta_0||^2 of the pretrained (encoder) "
            "weights to the training loss, pulling them towards their pretrained values. 0 disables."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.min_train_steps < 0:
            raise ConfigError(f"min_train_steps={self.min_train_steps} must be >= 0 (0 disables it)")
        if not (self.l2sp_weight >= 0 and math.isfinite(self.l2sp_weight)):
            raise ConfigError(f"l2sp_weight={self.l2sp_weight} must be >= 0 (0 disables L2-SP; e.g. 0.01)")
        if self.wise_alpha is not None:
            self.wise_alpha = str(self.wise_alpha).strip().lower()
            if self.wise_alpha in ("", "none", "null"):
                self.wise_alpha = None
            elif self.wise_alpha != "auto":
                try:
                    value = float(self.wise_alpha)
                except ValueError:
                    value = math.nan
                if not 0 <= value <= 1:
                    raise ConfigError(
                        f"wise_alpha={self.wise_alpha!r} must be a number in [0, 1] or auto (e.g. --wise_alpha auto)"
                    )
                self.wise_alpha = f"{value:g}"
