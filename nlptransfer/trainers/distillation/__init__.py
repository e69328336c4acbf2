"""Knowledge distillation: a fine-tuned teacher classifier into a smaller student (see trainer.py)."""

from nlptransfer.trainers.distillation.config import DistillationTrainingArguments
from nlptransfer.trainers.distillation.trainer import (
    DistillationTrainer,
    check_compatible,
    label_list,
    pick_student_layers,
    spread_layers,
    truncated_student,
)

__all__ = [
    "DistillationTrainer",
    "DistillationTrainingArguments",
    "check_compatible",
    "label_list",
    "pick_student_layers",
    "spread_layers",
    "truncated_student",
]
