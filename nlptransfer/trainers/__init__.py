"""Trainer subclasses, one package per transfer method: `<method>/config.py` holds its config (a
`TrainingArguments` subclass with only the fields the trainer honours), `<method>/trainer.py` the trainer."""

from nlptransfer.trainers.adaptation import (
    DomainAdversarialConfig,
    DomainAdversarialTrainer,
    FeatureAlignmentConfig,
    FeatureAlignmentTrainer,
    ImportanceWeightedTrainer,
    ImportanceWeightingConfig,
)
from nlptransfer.trainers.contrastive import ContrastiveTrainer, ContrastiveTrainingArguments
from nlptransfer.trainers.distillation import DistillationTrainer, DistillationTrainingArguments
from nlptransfer.trainers.multitask import MultiTaskTrainer, MultiTaskTrainingArguments
from nlptransfer.trainers.transfer import (
    FineTuningArguments,
    GradualUnfreezingCallback,
    TransferTrainer,
    TransferTrainingArguments,
    balanced_class_weights,
    layer_groups,
)
from nlptransfer.trainers.translation import (
    EmbeddingsFirstCallback,
    TranslationTrainingArguments,
    TranslationTransferTrainer,
)

__all__ = [
    "ContrastiveTrainer",
    "ContrastiveTrainingArguments",
    "DistillationTrainer",
    "DistillationTrainingArguments",
    "DomainAdversarialConfig",
    "DomainAdversarialTrainer",
    "EmbeddingsFirstCallback",
    "FeatureAlignmentConfig",
    "FeatureAlignmentTrainer",
    "FineTuningArguments",
    "GradualUnfreezingCallback",
    "ImportanceWeightedTrainer",
    "ImportanceWeightingConfig",
    "MultiTaskTrainer",
    "MultiTaskTrainingArguments",
    "TransferTrainer",
    "TransferTrainingArguments",
    "TranslationTrainingArguments",
    "TranslationTransferTrainer",
    "balanced_class_weights",
    "layer_groups",
]
