"""Config of `DistillationTrainer`: the fine-tuning knobs plus the weights of the distillation loss."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlptransfer.errors import ConfigError
from nlptransfer.trainers.transfer.config import FineTuningArguments

RKD_POOLING = ("mean", "cls")


@dataclass
class DistillationTrainingArguments(FineTuningArguments):
    """`FineTuningArguments` plus the distillation loss weights (the loss is the trainer's own: no
    class-weighted cross-entropy)."""

    distill_temperature: float = field(
        default=2.0, metadata={"help": "Softmax temperature T of logit distillation (KL is scaled by T**2)."}
    )
    distill_alpha: float = field(
        default=0.5,
        metadata={
            "help": "Weight of the logit-distillation term; 1 - alpha weighs the hard-label cross-entropy."
        },
    )
    rkd_distance_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the RKD distance-wise loss (Park et al. 2019 use 1). 0 disables."},
    )
    rkd_angle_weight: float = field(
        default=2.0,
        metadata={"help": "Weight of the RKD angle-wise loss (Park et al. 2019 use 2). 0 disables."},
    )
    rkd_pooling: str = field(
        default="mean",
        metadata={
            "help": "Representation the relational losses compare: mean (masked mean of the last hidden "
            "states) or cls (the first token's last hidden state).",
            "choices": list(RKD_POOLING),
        },
    )

    def __post_init__(self):
        if not 0 < self.distill_temperature < math.inf:  # inf or nan: a NaN loss after the first step
            raise ConfigError(f"distill_temperature={self.distill_temperature} must be a number > 0 (e.g. 2)")
        if not 0 <= self.distill_alpha <= 1:
            raise ConfigError(f"distill_alpha={self.distill_alpha} must be in [0, 1]")
        for name in ("rkd_distance_weight", "rkd_angle_weight"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ConfigError(f"{name}={getattr(self, name)} must be a number >= 0 (0 disables)")
        if self.rkd_pooling not in RKD_POOLING:
            raise ConfigError(
                f"unknown rkd_pooling {self.rkd_pooling!r}; choose one of {', '.join(RKD_POOLING)}"
            )
        super().__post_init__()
