"""nlptransfer: transfer learning for NLP on the Hugging Face stack.

The public API is imported lazily, so `python -m nlptransfer.assets` starts without loading torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the module (under nlptransfer) that defines it; imported on first access.
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
    "RunArguments": "config",
    "TransferArguments": "config",
    "TransferTrainer": "trainers.transfer",
    "TransferTrainingArguments": "trainers.transfer",
    "TranslationTransferTrainer": "trainers.translation",
    "TranslationTrainingArguments": "trainers.translation",
    "MultiTaskTrainer": "trainers.multitask",
    "MultiTaskTrainingArguments": "trainers.multitask",
    "DistillationTrainer": "trainers.distillation",
    "DistillationTrainingArguments": "trainers.distillation",
    "DomainAdversarialConfig": "trainers.adaptation",
    "DomainAdversarialTrainer": "trainers.adaptation",
    "FeatureAlignmentConfig": "trainers.adaptation",
    "FeatureAlignmentTrainer": "trainers.adaptation",
    "ImportanceWeightedTrainer": "trainers.adaptation",
    "ImportanceWeightingConfig": "trainers.adaptation",
    "MultiTaskModel": "modeling.multitask",
    "load_source": "data",
    "extend_vocabulary": "embeddings",
    "mine_domain_vocabulary": "embeddings",
    "tokenizer_fertility": "embeddings",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nlptransfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
