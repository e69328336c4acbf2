"""`TranslationTransferTrainer`: `Seq2SeqTrainer` for the child stage of translation-pair transfer.

Options (Zoph et al. 2016 froze parts of the parent; Kocmi & Bojar 2018 fine-tuned everything):
- `freeze="encoder"` / `"decoder"`: that side's own weights stay as the parent left them. Token embeddings
  that the encoder and decoder share (Marian, T5's `shared`) belong to neither side and keep training.
- `embeddings_only_steps=N`: for the first N optimizer steps only the token embeddings (and an untied
  output layer) train, so new or re-purposed subwords settle in before the parent's layers move; then
  everything the other options allow trains. The optimizer holds every trainable weight from the start
  (AdamW skips a weight whose gradient is None), so no state is lost at the switch.
- LoRA and other peft adapters: wrap the model first (`apply_seq2seq_strategy`), then train as usual.

    from nlptransfer import TranslationTrainingArguments, TranslationTransferTrainer
    trainer = TranslationTransferTrainer(model=model, args=TranslationTrainingArguments(...), train_dataset=...,
                                         data_collator=DataCollatorForSeq2Seq(tok, model=model),
                                         freeze="encoder", embeddings_only_steps=100)
"""

from __future__ import annotations

import logging

import torch
from peft import TaskType
from transformers import PreTrainedModel, Seq2SeqTrainer, TrainerCallback

from nlptransfer.errors import ConfigError
from nlptransfer.modeling import apply_strategy, check_targets
from nlptransfer.strategies import TABLE
from nlptransfer.trainers.tie_break import TieBreakCallback

logger = logging.getLogger("nlptransfer")

FREEZE_CHOICES = ("none", "encoder", "decoder")


def _base(model: torch.nn.Module) -> torch.nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def embedding_parameter_names(model: torch.nn.Module) -> set[str]:
    """Names of the token-embedding matrices (input, output if untied) of a (possibly peft-wrapped) model."""
    base = _base(model)
    tensors = {id(base.get_input_embeddings().weight)}
    out = base.get_output_embeddings()
    if out is not None:
        tensors.add(id(out.weight))
    return {n for n, p in model.named_parameters() if id(p) in tensors}


def freeze_side(model: torch.nn.Module, side: str) -> int:
    """Freeze the encoder's or decoder's own weights (not embeddings shared with the other side).
    Returns the number of parameters frozen."""
    if side == "none":
        return 0
    if side not in FREEZE_CHOICES:
        raise ValueError(f"freeze must be one of {', '.join(FREEZE_CHOICES)}, not {side!r}")
    base = _base(model)
    part = base.get_encoder() if side == "encoder" else base.get_decoder()
    other = base.get_decoder() if side == "encoder" else base.get_encoder()
    shared = {id(p) for p in other.parameters()} | {id(base.get_input_embeddings().weight)}
    frozen = 0
    for p in part.parameters():
        if id(p) not in shared and p.requires_grad:
            p.requires_grad = False
            frozen += p.numel()
    return frozen


class EmbeddingsFirstCallback(TrainerCallback):
    """Train only the embeddings for the first `steps` optimizer steps, then everything allowed."""

    def __init__(self, trainer: TranslationTransferTrainer, steps: int):
        self.trainer = trainer
        self.steps = steps

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.set_embeddings_only(state.global_step < self.steps)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.steps:
            logger.info("step %d: embeddings-only phase over, all trainable weights train now", self.steps)
            self.trainer.set_embeddings_only(False)


class TranslationTransferTrainer(Seq2SeqTrainer):
    """A `Seq2SeqTrainer` with the freezing options of translation-pair transfer (module docstring).

    Args beyond `Seq2SeqTrainer`'s:
        freeze: "none", "encoder" or "decoder".
        embeddings_only_steps: train only the token embeddings for this many optimizer steps first (0: off).
    """

    def __init__(self, *args, freeze: str = "none", embeddings_only_steps: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(TieBreakCallback())  # equal metrics: the lower validation loss is the best
        if embeddings_only_steps < 0:
            raise ValueError("embeddings_only_steps must be >= 0 (0 turns the embeddings-first phase off)")
        self.freeze = freeze
        self.embeddings_only_steps = embeddings_only_steps
        freeze_side(self.model, freeze)
        params = dict(self.model.named_parameters())
        self._trainable = {n for n, p in params.items() if p.requires_grad}
        if not self._trainable:
            raise ValueError("the model has no trainable parameters; check the freeze and strategy options")
        self._embeddings = embedding_parameter_names(self.model) & self._trainable
        if embeddings_only_steps:
            if not self._embeddings:
                raise ValueError("embeddings_only_steps needs trainable token embeddings (not with LoRA)")
            self.add_callback(EmbeddingsFirstCallback(self, embeddings_only_steps))

    def set_embeddings_only(self, on: bool) -> None:
        for name, param in self.model.named_parameters():
            if name in self._trainable:
                param.requires_grad = (name in self._embeddings) if on else True

    def create_optimizer(self, model=None):
        """The Trainer's optimizer over every weight allowed to train, including those the
        embeddings-first phase holds still for now."""
        if self.optimizer is not None:
            return self.optimizer
        params = dict(self.model.named_parameters())
        now = {n: p.requires_grad for n, p in params.items()}
        for name in self._trainable:
            params[name].requires_grad = True
        try:
            return super().create_optimizer(model)
        finally:
            for name, flag in now.items():
                params[name].requires_grad = flag


def check_seq2seq_strategy(transfer_args) -> None:
    """Only full fine-tuning and the peft methods that merge (`nlptransfer.strategies.TABLE` rows with
    `seq2seq`) apply to a seq2seq child, whose output is a plain model."""
    if not TABLE[transfer_args.strategy].seq2seq:
        usable = ", ".join(s.name for s in TABLE.values() if s.seq2seq)
        raise ConfigError(
            f"strategy {transfer_args.strategy!r} does not apply to translation; use one of {usable} "
            "(and --freeze encoder|decoder to hold one side still)"
        )


def check_seq2seq_targets(parent: PreTrainedModel, transfer_args) -> None:
    """A peft config whose target modules the parent does not have: one line, before the run writes."""
    check_targets(parent, transfer_args, TaskType.SEQ_2_SEQ_LM)


def apply_seq2seq_strategy(model: PreTrainedModel, transfer_args) -> PreTrainedModel:
    """`full` leaves the model as it is; the merging peft methods wrap it in a peft seq2seq adapter
    (`nlptransfer.modeling.apply_strategy` with `TaskType.SEQ_2_SEQ_LM`)."""
    check_seq2seq_strategy(transfer_args)
    return apply_strategy(model, transfer_args, task_type=TaskType.SEQ_2_SEQ_LM)
