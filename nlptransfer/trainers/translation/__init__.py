"""Translation-pair transfer: the child stage of a parent -> child seq2seq transfer (see trainer.py)."""

from nlptransfer.trainers.translation.config import TranslationTrainingArguments
from nlptransfer.trainers.translation.trainer import (
    FREEZE_CHOICES,
    EmbeddingsFirstCallback,
    TranslationTransferTrainer,
    apply_seq2seq_strategy,
    check_seq2seq_strategy,
    check_seq2seq_targets,
    embedding_parameter_names,
    freeze_side,
)

__all__ = [
    "FREEZE_CHOICES",
    "EmbeddingsFirstCallback",
    "TranslationTrainingArguments",
    "TranslationTransferTrainer",
    "apply_seq2seq_strategy",
    "check_seq2seq_strategy",
    "check_seq2seq_targets",
    "embedding_parameter_names",
    "freeze_side",
]
