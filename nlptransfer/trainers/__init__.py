"""Trainer subclasses, one per transfer method."""

from nlptransfer.trainers.transfer import (
    GradualUnfreezingCallback,
    TransferTrainer,
    balanced_class_weights,
    layer_groups,
)
from nlptransfer.trainers.translation import EmbeddingsFirstCallback, TranslationTransferTrainer

__all__ = [
    "EmbeddingsFirstCallback",
    "GradualUnfreezingCallback",
    "TransferTrainer",
    "TranslationTransferTrainer",
    "balanced_class_weights",
    "layer_groups",
]
