"""Contrastive few-shot fine-tuning (SetFit-style): pairs, cosine-similarity loss, logistic-regression head."""

from nlptransfer.trainers.contrastive.config import (
    METHODS,
    ContrastiveTrainingArguments,
    FewShotArguments,
)
from nlptransfer.trainers.contrastive.trainer import (
    ContrastiveTrainer,
    PairCollator,
    contrastive_pairs,
    embed_texts,
    fit_logistic_head,
    pair_dataset,
    sentence_embedding,
)

__all__ = [
    "METHODS",
    "ContrastiveTrainer",
    "ContrastiveTrainingArguments",
    "FewShotArguments",
    "PairCollator",
    "contrastive_pairs",
    "embed_texts",
    "fit_logistic_head",
    "pair_dataset",
    "sentence_embedding",
]
