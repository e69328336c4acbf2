"""Config of `TranslationTransferTrainer`: `Seq2SeqTrainingArguments` plus the recipes' run control.

Only what the trainer and the translation recipe honour: none of `TransferTrainer`'s knobs (layer-wise
learning-rate decay, gradual unfreezing, frozen embeddings, class-weighted loss), so passing one is an
unknown-key error. The child's freezing options are the trainer's `freeze` and `embeddings_only_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import Seq2SeqTrainingArguments

from nlptransfer.config import RunArguments


@dataclass
class TranslationTrainingArguments(Seq2SeqTrainingArguments, RunArguments):
    """`Seq2SeqTrainingArguments` plus `RunArguments`' output-directory reuse and resume."""
