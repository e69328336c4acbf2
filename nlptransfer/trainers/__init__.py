"""Trainer subclasses, one per transfer method."""

from .transfer import GradualUnfreezingCallback, TransferTrainer, balanced_class_weights, layer_groups

__all__ = ["GradualUnfreezingCallback", "TransferTrainer", "balanced_class_weights", "layer_groups"]
