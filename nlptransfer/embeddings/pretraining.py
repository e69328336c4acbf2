"""Continued masked-LM pretraining with an extended vocabulary: LoRA that trains the new rows,
reloading such an adapter, perplexity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from nlptransfer.embeddings.init import resize_embeddings


def lora_config_for_new_tokens(
    new_ids: Sequence[int], embedding_name: str = "word_embeddings", **lora_kwargs
):
    """A peft `LoraConfig` whose adapter also trains the embedding rows `new_ids` (peft's
    `trainable_token_indices`). Save with `model.save_pretrained(dir, save_embedding_layers=True)` so
    the adapter carries the whole (resized, initialised) embedding matrix."""
    from peft import LoraConfig  # peft loads slowly: only for LoRA runs

    if new_ids:
        lora_kwargs["trainable_token_indices"] = {embedding_name: list(new_ids)}
    return LoraConfig(**lora_kwargs)


def load_extended_peft_model(base_model, adapter_dir: str | Path, tokenizer=None, **kwargs):
    """`PeftModel.from_pretrained` for an adapter trained with an extended vocabulary: the base model
    is first resized to the tokenizer (`adapter_dir`'s tokenizer unless given). Loads through
    `nlptransfer.modeling.load` (safetensors adapter weights unless `allow_pickle=True` in `kwargs`)."""
    from nlptransfer.modeling.load import load_peft_model, load_tokenizer  # peft loads slowly

    if tokenizer is None:
        tokenizer = load_tokenizer(adapter_dir)
    resize_embeddings(base_model, len(tokenizer), mean_resizing=False)
    return load_peft_model(adapter_dir, base_model=base_model, **kwargs)


def perplexity(loss: float) -> float:
    """exp(loss), inf when it overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")
