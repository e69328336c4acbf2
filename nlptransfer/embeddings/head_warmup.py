"""Warm up a new masked-LM head alone before continued pretraining.

A checkpoint trained for sentence embeddings (the embedded all-MiniLM-L6-v2) has no masked-LM head:
`AutoModelForMaskedLM` initialises one at random (`load_mlm_model` names its missing weights). Training the
encoder through that head sends large, meaningless gradients into pretrained weights. The warm-up trains the
head alone first, encoder frozen, with its own steps and learning rate; then continued pretraining updates
everything through a head that already predicts tokens.

    with encoder_frozen(model) as trained:          # names of the parameters that train (the head's)
        ...
    warmup = warm_up_head(model, tokenizer, features, training_args, steps=200, learning_rate=1e-3)

"The encoder" is `model.base_model` (embeddings and layers): every parameter it holds stays frozen,
including a decoder matrix tied to the input embeddings (one tensor), so the head warm-up changes only the
head's own weights (BERT: the transform and the output bias).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nlptransfer.embeddings.pretraining import train_mlm
from nlptransfer.errors import ModelError


@dataclass
class HeadWarmup:
    """What a head warm-up did: its steps, learning rate, the parameters it trained, wall time, log."""

    steps: int
    learning_rate: float
    trained: list[str]
    wall_seconds: float
    log_history: list[dict]

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@contextmanager
def encoder_frozen(model) -> Iterator[list[str]]:
    """Within the block only the parameters outside `model.base_model` train (yields their names); on exit
    every parameter's `requires_grad` is restored."""
    encoder = {id(p) for p in model.base_model.parameters()}
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad = id(p) not in encoder
        if p.requires_grad:
            trained.append(name)
    try:
        yield trained
    finally:
        for name, p in model.named_parameters():
            p.requires_grad = before[name]


def warm_up_head(
    model,
    tokenizer,
    features: list[dict],
    training_args,
    *,
    steps: int,
    learning_rate: float,
    mlm_probability: float = 0.15,
    whole_word_mask: bool = True,
) -> HeadWarmup:
    """Train only `model`'s head (`encoder_frozen`) for `steps` steps at `learning_rate` on `features`, with
    `training_args` otherwise (batch size, warm-up ratio, seed); saves no checkpoint and never resumes."""
    args = dataclasses.replace(
        training_args,
        max_steps=steps,
        learning_rate=learning_rate,
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        resume_from_checkpoint=None,
    )
    with encoder_frozen(model) as trained:
        if not trained:
            raise ModelError(
                f"{type(model).__name__} has no parameters outside its encoder to warm up; "
                "pass --head_warmup_steps 0"
            )
        _, seconds, history = train_mlm(
            model,
            tokenizer,
            features,
            args,
            mlm_probability=mlm_probability,
            whole_word_mask=whole_word_mask,
        )
    return HeadWarmup(steps, learning_rate, trained, round(seconds, 1), history)


def new_head_note(model_name: str, new_head: list[str], steps: int, learning_rate: float) -> str:
    """The log line and model-card note of a checkpoint without a masked-LM head (`new_head`: the head
    weights it lacked), saying how the new head was trained."""
    how = (
        f"warmed up alone for {steps} steps (encoder frozen, learning rate {learning_rate:g}), then trained"
        if steps
        else "trained"
    )
    return (
        f"{model_name} has no masked-LM head in its checkpoint: the head ({', '.join(new_head)}) was "
        f"initialised randomly, {how} along with the encoder."
    )
