"""Trainer subclasses, one per transfer method."""

from .transfer import GradualUnfreezingCallback, TransferTrainer, balanced_class_weights, layer_groups
from .translation import EmbeddingsFirstCallback, TranslationTransferTrainer

__all__ = [
    "EmbeddingsFirstCallback",
    "GradualUnfreezingCallback",
    "TransferTrainer",
    "TranslationTransferTrainer",
    "balanced_class_weights",
    "layer_groups",
]
