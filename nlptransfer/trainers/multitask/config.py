"""Config of `MultiTaskTrainer`: the fine-tuning knobs plus how batches are drawn from the tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlptransfer.data.multitask import SAMPLING
from nlptransfer.errors import ConfigError
from nlptransfer.trainers.transfer.config import FineTuningArguments

LOSS_WEIGHTING = ("fixed", "uncertainty")


@dataclass
class MultiTaskTrainingArguments(FineTuningArguments):
    """`FineTuningArguments` plus how batches are drawn from the tasks (the loss is each task head's own:
    weight tasks with their `weight`, not a class-weighted loss)."""

    task_sampling: str = field(
        default="proportional",
        metadata={
            "help": "Which task the next batch comes from: proportional (to its training-set size), temperature "
            "(size**(1/T), T = --sampling_temperature) or round_robin (tasks in turn).",
            "choices": list(SAMPLING),
        },
    )
    sampling_temperature: float = field(
        default=2.0,
        metadata={"help": "T of temperature sampling: 1 = proportional, larger = closer to uniform."},
    )

    loss_weighting: str = field(
        default="fixed",
        metadata={
            "help": "How task losses add up: fixed (each task's loss times its `weight` in the task list) or "
            "uncertainty (Kendall et al. 2018: a learned log-variance s per task, exp(-s) * loss + s, on top "
            "of the fixed weights).",
            "choices": list(LOSS_WEIGHTING),
        },
    )

    uncertainty_learning_rate: float = field(
        default=1e-2,
        metadata={
            "help": "Learning rate of the uncertainty log-variances (loss_weighting uncertainty): at the "
            "encoder's 1e-4 they would barely move in a few hundred steps."
        },
    )

    def __post_init__(self):
        if self.uncertainty_learning_rate <= 0:
            raise ConfigError(f"uncertainty_learning_rate={self.uncertainty_learning_rate} must be > 0")
        if self.loss_weighting not in LOSS_WEIGHTING:
            raise ConfigError(
                f"unknown loss_weighting {self.loss_weighting!r}; choose one of {', '.join(LOSS_WEIGHTING)}"
            )
        if self.task_sampling not in SAMPLING:
            raise ConfigError(
                f"unknown task_sampling {self.task_sampling!r}; choose one of {', '.join(SAMPLING)}"
            )
        if not self.sampling_temperature > 0:
            raise ConfigError(f"sampling_temperature={self.sampling_temperature} must be > 0 (e.g. 2)")
        super().__post_init__()
