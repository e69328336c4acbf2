"""Continued masked-LM pretraining (DAPT/TAPT), also with an extended vocabulary.

    model, base_path, new_head = load_mlm_model(name)   # AutoModelForMaskedLM; `new_head`: head weights it lacked
    collator = MaskingCollator(tokenizer, mlm_probability=0.15, whole_word_mask=True)
    features = mlm_features(tokenizer, texts, length=128, whole_word_mask=True, packing=True)  # 128-token blocks
    loss = mlm_loss(model, tokenizer, held_out_features, batch_size=64)   # perplexity(loss)
    output, seconds, log_history = train_mlm(model, tokenizer, features, training_args)
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
import torch.nn.functional as F
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    Trainer,
)

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


def mlm_head(model):
    """The module that maps `model`'s hidden states to vocabulary logits when it is the model's only child
    besides its encoder (BERT's `cls`, RoBERTa's `lm_head`), else None (e.g. DistilBERT's several modules,
    a peft or distributed wrapper)."""
    if not isinstance(model, PreTrainedModel):
        return None
    others = [m for name, m in model.named_children() if name != model.base_model_prefix]
    return others[0] if len(others) == 1 else None


def masked_lm_loss(model, batch: dict):
    """`model(**batch).loss` (mean cross-entropy over the masked tokens), computed with the head applied to
    the masked positions only: the vocabulary projection of every position is a large share of a small
    encoder's step (MiniLM: 30,522 x 384 per token) and 85% of it is thrown away. Falls back to the model's
    own forward when its head is not one module (`mlm_head`)."""
    head = mlm_head(model)
    if head is None:
        return model(**batch).loss
    labels = batch["labels"]
    hidden = model.base_model(**{k: v for k, v in batch.items() if k != "labels"})[0]
    chosen = labels != -100
    logits = head(hidden[chosen])
    return F.cross_entropy(logits.float(), labels[chosen])


class MaskedLMTrainer(Trainer):
    """A `Trainer` whose loss is `masked_lm_loss` (the head on the masked positions only); the loss is a
    per-batch mean, which the Trainer divides by the gradient-accumulation steps."""

    loss_is_scaled_for_ga = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:  # prediction steps want the logits: the model's own forward
            return super().compute_loss(model, inputs, return_outputs=True)
        return masked_lm_loss(model, inputs)


def pack_features(features: list[dict], block_size: int) -> list[dict]:
    """group_texts-style packing: the features (each a whole tokenised text with its special tokens)
    concatenated and cut into blocks of `block_size` tokens. The last, shorter block is dropped unless it is
    the only one (a block of a few tokens may get no masked token at all)."""
    keys = list(features[0]) if features else []
    stream = {k: [x for f in features for x in f[k]] for k in keys}
    total = len(stream.get("input_ids", []))
    if total > block_size:
        total -= total % block_size
    return [{k: stream[k][i : i + block_size] for k in keys} for i in range(0, total, block_size)]


def mlm_features(
    tokenizer, texts: list[str], *, length: int, whole_word_mask: bool, packing: bool
) -> list[dict]:
    """The masked-LM examples of `texts`: with `packing`, every text tokenised whole and the token stream cut
    into blocks of `length` (`pack_features`: no padding, no token truncated away); without, one example per
    text truncated to `length`."""
    if not packing:
        return encode_for_mlm(tokenizer, texts, length, whole_word_mask)
    enc = tokenizer(
        texts, return_special_tokens_mask=True, return_offsets_mapping=whole_word_mask, verbose=False
    )
    keys = [k for k in enc if k != "token_type_ids"]
    return pack_features([{k: enc[k][i] for k in keys} for i in range(len(texts))], length)


def feature_stats(train: list[dict], held_out: list[dict], *, packing: bool, length: int) -> dict:
    """How the texts became examples (metrics.json): packed or truncated, the block / truncation length, and
    the examples and tokens trained on and held out."""
    return {
        "packing": packing,
        "length": length,
        "train_examples": len(train),
        "train_tokens": sum(len(f["input_ids"]) for f in train),
        "heldout_examples": len(held_out),
        "heldout_tokens": sum(len(f["input_ids"]) for f in held_out),
    }


def train_mlm(
    model,
    tokenizer,
    features: list[dict],
    training_args,
    *,
    mlm_probability: float = 0.15,
    whole_word_mask: bool = True,
):
    """Masked-LM training of `model` on `features` (`mlm_features`) with a `MaskedLMTrainer` and a
    `MaskingCollator`, resuming from
    `training_args.resume_from_checkpoint` if set. Sets `training_args.remove_unused_columns = False` (the
    collator reads `offset_mapping`). Returns (the TrainOutput, wall seconds, the Trainer's log history)."""
    training_args.remove_unused_columns = False
    trainer = MaskedLMTrainer(
        model=model,
        args=training_args,
        train_dataset=features,
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
    features: list[dict],
    *,
    batch_size: int,
    mlm_probability: float = 0.15,
    whole_word_mask: bool = True,
    seed: int = 0,
) -> float:
    """Mean masked-LM loss over the masked tokens of `features` (`mlm_features` of held-out texts), with a
    fixed (seeded) masking: the same tokens are masked at every measurement."""
    collator = MaskingCollator(
        tokenizer, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask, seed=seed
    )
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start : start + batch_size])
            n = int((batch["labels"] != -100).sum())
            if n == 0:
                continue
            total += float(masked_lm_loss(model, batch)) * n
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
