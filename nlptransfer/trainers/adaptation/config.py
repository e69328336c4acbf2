"""Configs of the domain-adaptation trainers: `TransferTrainingArguments` plus each method's knobs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from nlptransfer.errors import ConfigError
from nlptransfer.trainers.transfer.config import TransferTrainingArguments

ALIGN_ON = ("auto", "pooled", "logits")
ALIGNMENTS = ("coral", "mmd")


def check_weight(name: str, value: float) -> None:
    if value < 0 or not math.isfinite(value):
        raise ConfigError(f"{name}={value} must be >= 0 (0 switches the term off; e.g. --{name} 1.0)")


@dataclass
class MixedDomainConfig(TransferTrainingArguments):
    """What DANN and CORAL/MMD share: the weight of the adaptation loss and the representation it adapts."""

    adaptation_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the adaptation loss (domain or alignment) added to the source loss."},
    )
    align_on: str = field(
        default="auto",
        metadata={
            "help": "Representation to adapt: pooled (the head's input), logits (the head's output) or auto "
            "(pooled if anything below the head trains, else logits).",
            "choices": list(ALIGN_ON),
        },
    )
    # Extra columns (target_*, weight) must reach the collator; the trainers drop non-input columns themselves.
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the adaptation trainers filter columns themselves."}
    )

    def __post_init__(self):
        super().__post_init__()
        check_weight("adaptation_weight", self.adaptation_weight)
        if self.align_on not in ALIGN_ON:
            raise ConfigError(f"unknown align_on {self.align_on!r}; choose one of {', '.join(ALIGN_ON)}")


@dataclass
class DomainAdversarialConfig(MixedDomainConfig):
    """DANN: `adaptation_weight` scales the domain loss, `reversal_weight` the reversed gradient."""

    reversal_weight: float = field(
        default=1.0,
        metadata={
            "help": "Maximum gradient-reversal coefficient lambda (reached by the end of the schedule)."
        },
    )
    lambda_gamma: float = field(
        default=10.0, metadata={"help": "Steepness gamma of the schedule 2/(1+exp(-gamma*p))-1."}
    )
    domain_hidden_size: int = field(
        default=256,
        metadata={"help": "Hidden width of the domain classifier (an MLP with one hidden layer)."},
    )

    def __post_init__(self):
        super().__post_init__()
        check_weight("reversal_weight", self.reversal_weight)
        if self.domain_hidden_size < 1:
            raise ConfigError(f"domain_hidden_size={self.domain_hidden_size} must be >= 1")


@dataclass
class FeatureAlignmentConfig(MixedDomainConfig):
    """CORAL or multi-kernel MMD between source and target representations of each batch."""

    alignment: str = field(default="coral", metadata={"help": "coral or mmd.", "choices": list(ALIGNMENTS)})
    mmd_kernels: int = field(default=5, metadata={"help": "Number of Gaussian kernels of the MMD loss."})

    def __post_init__(self):
        super().__post_init__()
        if self.alignment not in ALIGNMENTS:
            raise ConfigError(f"unknown alignment {self.alignment!r}; choose one of {', '.join(ALIGNMENTS)}")
        if self.mmd_kernels < 1:
            raise ConfigError(f"mmd_kernels={self.mmd_kernels} must be >= 1")


@dataclass
class ImportanceWeightingConfig(TransferTrainingArguments):
    """Importance weights p_target/p_source per source example, from a domain classifier."""

    weight_clip: float = field(
        default=10.0,
        metadata={"help": "Clip the (mean-1) importance weights to [1/clip, clip] before renormalising."},
    )
    domain_classifier_c: float = field(
        default=1.0, metadata={"help": "Inverse L2 strength C of the logistic-regression domain classifier."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the weight column must reach the loss."}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.weight_clip > 1:
            raise ConfigError(f"weight_clip={self.weight_clip} must be > 1 (e.g. --weight_clip 10)")
        if not self.domain_classifier_c > 0:
            raise ConfigError(f"domain_classifier_c={self.domain_classifier_c} must be > 0")


def as_config(cls: type, training_args: TransferTrainingArguments, **overrides) -> TransferTrainingArguments:
    """`training_args` (a parsed `TransferTrainingArguments`) as config class `cls` with extra fields."""
    values = {f.name: getattr(training_args, f.name) for f in dataclasses.fields(training_args) if f.init}
    own = {f.name for f in dataclasses.fields(cls) if f.init}
    # remove_unused_columns keeps the config's own default (False): the target/weight columns must survive.
    values = {k: v for k, v in values.items() if k in own and k != "remove_unused_columns"}
    values.update(overrides)
    return cls(**values)
