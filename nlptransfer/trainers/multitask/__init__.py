"""Multi-task learning: one shared encoder, one head per task (see trainer.py)."""

from nlptransfer.trainers.multitask.config import MultiTaskTrainingArguments
from nlptransfer.trainers.multitask.trainer import MultiTaskTrainer, fit_multitask

__all__ = ["MultiTaskTrainer", "MultiTaskTrainingArguments", "fit_multitask"]
