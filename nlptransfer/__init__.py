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
    "MultiTaskTrainer": "trainers.multitask",
    "MultiTaskTrainingArguments": "trainers.multitask",
    "DistillationTrainer": "trainers.distillation",
    "DistillationTrainingArguments": "trainers.distillation",
    "MultiTaskModel": "multitask",
    "load_source": "data",
}
__all__ = [
    "AssetError",
    "ConfigError",
    "DataArguments",
    "DataError",
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
    "load_source",
]

if TYPE_CHECKING:
    from .config import (
        DataArguments,
        ModelArguments,
        RecipeParser,
        TransferArguments,
        TransferTrainingArguments,
    )
    from .data import load_source
    from .errors import AssetError, ConfigError, DataError, ModelError, NlpTransferError, OutputDirError
    from .multitask import MultiTaskModel
    from .trainers import TransferTrainer
    from .trainers.distillation import DistillationTrainer, DistillationTrainingArguments
    from .trainers.multitask import MultiTaskTrainer, MultiTaskTrainingArguments


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nlptransfer' has no attribute {name!r}")
