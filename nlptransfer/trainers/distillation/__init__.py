"""Knowledge distillation: a fine-tuned teacher classifier into a smaller student (see trainer.py; the
steps of a run, unlabelled transfer texts included, in run.py)."""

from nlptransfer.trainers.distillation.config import DistillationTrainingArguments
from nlptransfer.trainers.distillation.trainer import (
    LAYER_PICKS,
    UNLABELLED,
    DistillationTrainer,
    alternate_layers,
    check_compatible,
    label_list,
    pick_student_layers,
    spread_layers,
    truncated_student,
)

__all__ = [
    "LAYER_PICKS",
    "UNLABELLED",
    "DistillationTrainer",
    "DistillationTrainingArguments",
    "alternate_layers",
    "check_compatible",
    "label_list",
    "pick_student_layers",
    "spread_layers",
    "truncated_student",
]
