"""nlptransfer: transfer learning for NLP on the Hugging Face stack."""

from .config import DataArguments, ModelArguments, RecipeParser, TransferArguments, TransferTrainingArguments
from .errors import (
    AssetError,
    ConfigError,
    DataError,
    ModelError,
    NlpTransferError,
    OutputDirError,
)
from .trainers import TransferTrainer

__version__ = "0.1.0"

__all__ = [
    "AssetError",
    "ConfigError",
    "DataArguments",
    "DataError",
    "ModelArguments",
    "ModelError",
    "NlpTransferError",
    "OutputDirError",
    "RecipeParser",
    "TransferArguments",
    "TransferTrainer",
    "TransferTrainingArguments",
]
