"""`TransferTrainer` and its configs."""

from nlptransfer.trainers.transfer.config import FineTuningArguments, TransferTrainingArguments
from nlptransfer.trainers.transfer.trainer import (
    GradualUnfreezingCallback,
    TransferTrainer,
    balanced_class_weights,
    layer_groups,
)

__all__ = [
    "FineTuningArguments",
    "GradualUnfreezingCallback",
    "TransferTrainer",
    "TransferTrainingArguments",
    "balanced_class_weights",
    "layer_groups",
]
