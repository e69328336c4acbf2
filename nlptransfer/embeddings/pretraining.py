"""Continued masked-LM pretraining (DAPT/TAPT), also with an extended vocabulary.

    model, base_path, new_head = load_mlm_model(name)   # AutoModelForMaskedLM; `new_head`: head weights it lacked
    collator = MaskingCollator(tokenizer, mlm_probability=0.15, whole_word_mask=True)
    loss = mlm_loss(model, tokenizer, held_out, max_length=128, batch_size=64)   # perplexity(loss)
    output, seconds, log_history = train_mlm(model, tokenizer, texts, training_args, max_length=128)
    save_domain_model(model, tokenizer, run, base_path)  # + the base's pooler, for fine-tuning

With LoRA: `mlm_lora_model` wraps the model (`lora_config_for_new_tokens`: the adapter also trains the
new embedding rows); `load_extended_peft_model` reloads such an adapter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoModel, AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer

from nlptransfer.embeddings.init import resize_embeddings
from nlptransfer.errors import DataError, ModelError
from nlptransfer.modeling.load import load_model, load_peft_model, load_tokenizer, resolve
from nlptransfer.trainers.progress import one_progress_bar

if TYPE_CHECKING:
    from nlptransfer.runs import RunWriter


# ------------------------------------------------------------------------------------- model and data


def load_mlm_model(name_or_path: str, *, allow_pickle: bool = False, trust_remote_code: bool = False):
    """(AutoModelForMaskedLM, its resolved path, the names of the head weights the checkpoint lacked and
    that were initialised here), loaded through `nlptransfer.modeling.load`."""
    model, info = load_model(
        AutoModelForMaskedLM,
        name_or_path,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
    )
    prefix = model.base_model_prefix + "."
    new_head = sorted(k for k in info["missing_keys"] if not k.startswith(prefix))
    return model, resolve(name_or_path), new_head


class MaskingCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` that also pads `offset_mapping` (which whole-word masking reads
    and `tokenizer.pad` leaves ragged in transformers 5)."""

    def __post_init__(self):
        if self.whole_word_mask:  # whole-word masking always uses [MASK] (transformers warns and sets it)
            self.mask_replace_prob, self.random_replace_prob = 1.0, 0.0
        super().__post_init__()

    def torch_call(self, examples):
        if examples and "offset_mapping" in examples[0]:
            longest = max(len(e["input_ids"]) for e in examples)
            examples = [
                {
                    **e,
                    "offset_mapping": list(e["offset_mapping"])
                    + [(0, 0)] * (longest - len(e["offset_mapping"])),
                }
                for e in examples
            ]
        return super().torch_call(examples)


def encode_for_mlm(tokenizer, texts: list[str], max_length: int, offsets: bool) -> list[dict]:
    """One feature dict per text, truncated to `max_length` (no token_type_ids; `offsets`: the
    `offset_mapping` that whole-word masking needs)."""
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_offsets_mapping=offsets,
    )
    keys = [k for k in enc if k != "token_type_ids"]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


def train_mlm(
    model,
    tokenizer,
    texts: list[str],
    training_args,
    *,
    max_length: int,
    mlm_probability: float = 0.15,
    whole_word_mask: bool = True,
):
    """Masked-LM training of `model` on `texts` with a plain `Trainer` and a `MaskingCollator`, resuming from
    `training_args.resume_from_checkpoint` if set. Sets `training_args.remove_unused_columns = False` (the
    collator reads `offset_mapping`). Returns (the TrainOutput, wall seconds, the Trainer's log history)."""
    training_args.remove_unused_columns = False
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=encode_for_mlm(tokenizer, texts, max_length, whole_word_mask),
        data_collator=MaskingCollator(
            tokenizer, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask
        ),
        processing_class=tokenizer,
    )
    one_progress_bar(trainer)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or None)
    return output, time.perf_counter() - started, list(trainer.state.log_history)


# ------------------------------------------------------------------------------------- measure


def mlm_loss(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_length: int,
    batch_size: int,
    mlm_probability: float = 0.15,
    whole_word_mask: bool = True,
    seed: int = 0,
) -> float:
    """Mean masked-LM loss over the masked tokens of `texts`, with a fixed (seeded) masking."""
    collator = MaskingCollator(
        tokenizer, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed
    )
    features = encode_for_mlm(tokenizer, texts, max_length, whole_word_mask)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start : start + batch_size])
            n = int((batch["labels"] != -100).sum())
            if n == 0:
                continue
            total += float(model(**batch).loss) * n
            count += n
    if count == 0:
        raise DataError(
            "the held-out texts gave no masked tokens; add validation texts or raise --max_length"
        )
    return total / count


def perplexity(loss: float) -> float:
    """exp(loss), inf when it overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return float("inf")


# ------------------------------------------------------------------------------------- LoRA


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


def mlm_lora_model(
    model,
    new_ids: Sequence[int],
    *,
    new_head: bool,
    r: int,
    lora_alpha: int,
    lora_dropout: float,
    target_modules: list[str] | None = None,
):
    """`model` with LoRA adapters on `target_modules` (default query/value) that also train the new
    embedding rows `new_ids`; a randomly initialised MLM head (`new_head`) has its transform trained fully."""
    from peft import get_peft_model  # peft loads slowly: only for LoRA runs

    from nlptransfer.modeling.adapters import peft_wrapping

    config = lora_config_for_new_tokens(
        new_ids,
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules or ["query", "value"],
        modules_to_save=["transform"] if new_head else None,
    )
    with peft_wrapping():
        return get_peft_model(model, config)


def load_extended_peft_model(base_model, adapter_dir: str | Path, tokenizer=None, **kwargs):
    """`PeftModel.from_pretrained` for an adapter trained with an extended vocabulary: the base model
    is first resized to the tokenizer (`adapter_dir`'s tokenizer unless given). Loads through
    `nlptransfer.modeling.load` (safetensors adapter weights unless `allow_pickle=True` in `kwargs`)."""
    if tokenizer is None:
        tokenizer = load_tokenizer(adapter_dir)
    resize_embeddings(base_model, len(tokenizer), mean_resizing=False)
    return load_peft_model(adapter_dir, base_model=base_model, **kwargs)


# ------------------------------------------------------------------------------------- save


def save_domain_model(
    model,
    tokenizer,
    run: RunWriter,
    base_path: str,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> None:
    """Save the MLM model plus the base checkpoint's backbone weights the MLM class has no place for
    (BERT's pooler), so AutoModelForSequenceClassification gets the same pooler as from the base."""
    state = model.state_dict()
    prefix = model.base_model_prefix
    try:
        flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code}
        base = load_model(AutoModel, base_path, **flags)
        extras = {
            f"{prefix}.{k}": v
            for k, v in base.state_dict().items()
            if f"{prefix}.{k}" not in state and not k.startswith("embeddings.")
        }
    except ModelError:
        extras = {}
    run.save_pretrained(model, state_dict={**state, **extras})
    run.save_pretrained(tokenizer)
