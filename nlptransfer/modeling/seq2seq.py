"""Seq2seq building blocks for translation transfer: tokenizer, small Marian, loading, the child's unseen
subwords, generation and BLEU/chrF scoring.

- `train_tokenizer(texts, vocab_size)`: a shared Unigram subword tokenizer (HF `tokenizers`, sentencepiece
  style `▁` word boundaries) wrapped as a `PreTrainedTokenizerFast` that appends `</s>`; saved with
  `save_pretrained` it loads with `AutoTokenizer.from_pretrained`.
- `build_marian(tokenizer, ...)`: a randomly initialised `MarianMTModel` (tied encoder/decoder embeddings and
  output layer) sized by the arguments.
- `load_seq2seq(path)`: any `AutoModelForSeq2SeqLM` checkpoint + its tokenizer (Hub id or local directory),
  with one-line `ModelError`s, including a tokenizer larger than the model's embedding matrix.
- `unseen_subwords(parent_tokenizer, child_texts, vocab_size)`: the subwords a child corpus needs and the
  parent tokenizer lacks; `nlptransfer.embeddings.extend_subword_vocabulary` adds them, each new embedding row
  initialised from the parent's embeddings of the pieces the parent tokenizer splits it into.
- `translate(...)` (beam search, batched by length) and `translation_scores(...)` (sacrebleu BLEU and chrF
  through the bundled evaluate modules).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForSeq2SeqLM,
    MarianConfig,
    MarianMTModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from nlptransfer.errors import ConfigError, ModelError
from nlptransfer.modeling.load import load_config, load_model, load_tokenizer

logger = logging.getLogger("nlptransfer")

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


# ----------------------------------------------------------------------------------------------
# tokenizer and model


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = 4000, flag: str = "--vocab_size"
) -> PreTrainedTokenizerFast:
    """A Unigram subword tokenizer trained on `texts` (sentencepiece-style), `</s>` appended to each text.
    A `vocab_size` below the texts' distinct characters is one ConfigError line naming `flag` and the least
    size that works (the tokenizers trainer's own error says neither)."""
    texts = list(texts)
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, EOS, UNK], unk_token=UNK, max_piece_length=12
    )
    try:
        tok.train_from_iterator(texts, trainer=trainer)
    except Exception as err:  # tokenizers raises a bare Exception
        if "not large enough" not in str(err):
            raise
        need = len(subword_alphabet(tok, texts))
        raise ConfigError(
            f"{flag} {vocab_size} is smaller than the {need} distinct characters of the training text, which "
            f"every subword vocabulary must hold; pass {flag} {need} or more"
        ) from err
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=512
    )


def subword_alphabet(tok: Tokenizer, texts: Sequence[str]) -> set[str]:
    """The characters `tok`'s normalizer and pre-tokenizer leave in `texts` (what a Unigram vocabulary needs)."""
    chars: set[str] = set()
    for text in texts:
        for piece, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(piece)
    return chars


def build_marian(
    tokenizer,
    d_model: int = 256,
    layers: int = 3,
    heads: int = 4,
    ffn_dim: int = 1024,
    max_positions: int = 256,
    dropout: float = 0.1,
    init_std: float | None = None,
) -> MarianMTModel:
    """A randomly initialised Marian (the architecture of Helsinki-NLP/opus-mt-*) over `tokenizer`.

    `init_std`, the normal init of every embedding and linear weight, defaults to d_model**-0.5 as in fairseq's
    and Marian-NMT's Transformers (transformers' 0.02 is meant for models that load pretrained weights): after
    Marian's sqrt(d_model) embedding scale, token identity then outweighs the sinusoidal positions."""
    config = MarianConfig(
        init_std=d_model**-0.5 if init_std is None else init_std,
        vocab_size=len(tokenizer),
        decoder_vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim,
        decoder_ffn_dim=ffn_dim,
        max_position_embeddings=max_positions,
        dropout=dropout,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return MarianMTModel(config)


def _embedding_rows(model: PreTrainedModel) -> int:
    return model.get_input_embeddings().weight.shape[0]


def check_vocab(model: PreTrainedModel, tokenizer, name: str) -> None:
    """A tokenizer whose ids run past the model's embedding matrix cannot work: one-line ModelError."""
    rows = _embedding_rows(model)
    if len(tokenizer) > rows:
        raise ModelError(
            f"tokenizer of {name!r} has {len(tokenizer)} tokens but the model's embedding matrix has {rows} "
            "rows; the tokenizer and model do not belong together (save them from the same run)"
        )


def load_seq2seq(
    name_or_path: str, allow_pickle: bool = False, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, object]:
    """`AutoModelForSeq2SeqLM` + `AutoTokenizer` from a Hub id or local directory, through `modeling.load`
    (safetensors only unless `allow_pickle`; remote code only with `trust_remote_code`)."""
    hint = "omit --parent_model to train the small offline parent"
    config = load_config(name_or_path, trust_remote_code=trust_remote_code, hint=hint)
    if not config.is_encoder_decoder:
        raise ModelError(
            f"model {name_or_path!r} is a {config.model_type} ({type(config).__name__}), not an "
            "encoder-decoder; translation transfer needs a seq2seq model (Marian, T5, mBART, NLLB...)"
        )
    tokenizer = load_tokenizer(name_or_path, trust_remote_code=trust_remote_code, hint=hint)
    model = load_model(
        AutoModelForSeq2SeqLM,
        name_or_path,
        config=config,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        hint=hint,
    )
    check_vocab(model, tokenizer, name_or_path)
    return model, tokenizer


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (cache keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# child subwords


def unseen_subwords(
    parent_tokenizer, child_texts: Sequence[str], vocab_size: int, min_count: int = 3
) -> dict[str, float]:
    """Subwords of a Unigram tokenizer trained on the child text that the parent tokenizer lacks, most
    frequent first, with their child log-probability (pieces seen fewer than `min_count` times are left out)."""
    child = train_tokenizer(child_texts, vocab_size, "--extend_vocab_size")
    scores = dict(json.loads(child.backend_tokenizer.to_str())["model"]["vocab"])
    known = set(parent_tokenizer.get_vocab())
    counts: Counter[str] = Counter()
    for ids in child(list(child_texts), add_special_tokens=False)["input_ids"]:
        counts.update(child.convert_ids_to_tokens(ids))
    return {t: scores.get(t, -20.0) for t, c in counts.most_common() if c >= min_count and t not in known}


# ----------------------------------------------------------------------------------------------
# data, generation, scores


def tokenize_pairs(ds, tokenizer, max_source_length: int, max_target_length: int, prefix: str = ""):
    """input_ids/attention_mask/labels for a `source`/`target` dataset (truncated)."""

    def encode(batch):
        enc = tokenizer(
            [prefix + s for s in batch["source"]],
            text_target=list(batch["target"]),
            max_length=max_source_length,
            truncation=True,
        )
        enc["labels"] = [ids[:max_target_length] for ids in enc["labels"]]
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names)


@torch.inference_mode()
def translate(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    num_beams: int = 4,
    max_new_tokens: int = 128,
    length_penalty: float = 1.0,
    batch_size: int = 32,
    max_source_length: int = 256,
    prefix: str = "",
) -> list[str]:
    """Beam-search translations of `texts`, in order (batched by source length: less padding)."""
    model.eval()
    positions = getattr(model.config, "max_position_embeddings", None)  # learned/sinusoidal position tables
    if positions:
        max_source_length = min(max_source_length, positions)
        max_new_tokens = min(max_new_tokens, positions - 1)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [prefix + texts[i] for i in idx],
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_source_length,
        ).to(model.device)
        enc.pop("token_type_ids", None)
        gen = model.generate(
            **enc,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            length_penalty=length_penalty,
            early_stopping=True if num_beams > 1 else False,
        )
        for i, text in zip(idx, tokenizer.batch_decode(gen, skip_special_tokens=True), strict=True):
            out[i] = text.strip()
    return out


def translation_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenisation, chrF char order 6, beta 2)."""
    from nlptransfer.evaluation.metrics import load_metric

    refs = [[r] for r in references]
    bleu = load_metric("sacrebleu").compute(predictions=list(predictions), references=refs)
    chrf = load_metric("chrf").compute(predictions=list(predictions), references=refs)
    return {"bleu": float(bleu["score"]), "chrf": float(chrf["score"]), "n": len(predictions)}
