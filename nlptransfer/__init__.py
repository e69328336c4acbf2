"""nlptransfer: transfer learning for NLP on the Hugging Face stack.

The public API is imported lazily, so `python -m nlptransfer.assets` starts without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "AssetError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
    "NlpTransferError": "errors",
    "OutputDirError": "errors",
    "DataArguments": "config",
    "ModelArguments": "config",
    "RecipeParser": "config",
    "TransferArguments": "config",
    "TransferTrainingArguments": "config",
    "TransferTrainer": "trainers",
    "TranslationTransferTrainer": "trainers",
    "MultiTaskTrainer": "trainers.multitask",
    "MultiTaskTrainingArguments": "trainers.multitask",
    "DistillationTrainer": "trainers.distillation",
    "DistillationTrainingArguments": "trainers.distillation",
    "MultiTaskModel": "modeling.multitask",
    "load_source": "data",
    "extend_vocabulary": "embeddings",
    "mine_domain_vocabulary": "embeddings",
    "tokenizer_fertility": "embeddings",
    "DomainAdversarialConfig": "trainers.adaptation",
    "DomainAdversarialTrainer": "trainers.adaptation",
    "FeatureAlignmentConfig": "trainers.adaptation",
    "FeatureAlignmentTrainer": "trainers.adaptation",
    "ImportanceWeightedTrainer": "trainers.adaptation",
    "ImportanceWeightingConfig": "trainers.adaptation",
}
__all__ = [
    "AssetError",
    "ConfigError",
    "DataArguments",
    "DataError",
    "DomainAdversarialConfig",
    "DomainAdversarialTrainer",
    "FeatureAlignmentConfig",
    "FeatureAlignmentTrainer",
    "ImportanceWeightedTrainer",
    "ImportanceWeightingConfig",
    "DistillationTrainer",
    "DistillationTrainingArguments",
    "ModelArguments",
    "ModelError",
    "MultiTaskModel",
    "MultiTaskTrainer",
    "MultiTaskTrainingArguments",
    "NlpTransferError",
    "OutputDirError",
    "RecipeParser",
    "TransferArguments",
    "TransferTrainer",
    "TransferTrainingArguments",
    "TranslationTransferTrainer",
    "extend_vocabulary",
    "load_source",
    "mine_domain_vocabulary",
    "tokenizer_fertility",
]

if TYPE_CHECKING:
    from nlptransfer.config import (
        DataArguments,
        ModelArguments,
        RecipeParser,
        TransferArguments,
        TransferTrainingArguments,
    )
    from nlptransfer.data import load_source
    from nlptransfer.embeddings import extend_vocabulary, mine_domain_vocabulary, tokenizer_fertility
    from nlptransfer.errors import (
        AssetError,
        ConfigError,
        DataError,
        ModelError,
        NlpTransferError,
        OutputDirError,
    )
    from nlptransfer.modeling.multitask import MultiTaskModel
    from nlptransfer.trainers import TransferTrainer, TranslationTransferTrainer
    from nlptransfer.trainers.adaptation import (
        DomainAdversarialConfig,
        DomainAdversarialTrainer,
        FeatureAlignmentConfig,
        FeatureAlignmentTrainer,
        ImportanceWeightedTrainer,
        ImportanceWeightingConfig,
    )
    from nlptransfer.trainers.distillation import DistillationTrainer, DistillationTrainingArguments
    from nlptransfer.trainers.multitask import MultiTaskTrainer, MultiTaskTrainingArguments


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nlptransfer' has no attribute {name!r}")
