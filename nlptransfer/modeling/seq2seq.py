"""Seq2seq building blocks for translation transfer: tokenizer, small Marian, loading, vocabulary
extension, generation and BLEU/chrF scoring.

- `train_tokenizer(texts, vocab_size)`: a shared Unigram subword tokenizer (HF `tokenizers`, sentencepiece
  style `▁` word boundaries) wrapped as a `PreTrainedTokenizerFast` that appends `</s>`; saved with
  `save_pretrained` it loads with `AutoTokenizer.from_pretrained`.
- `build_marian(tokenizer, ...)`: a randomly initialised `MarianMTModel` (tied encoder/decoder embeddings and
  output layer) sized by the arguments.
- `load_seq2seq(path)`: any `AutoModelForSeq2SeqLM` checkpoint + its tokenizer (Hub id or local directory),
  with one-line `ModelError`s, including a tokenizer larger than the model's embedding matrix.
- `extend_vocabulary(model, tokenizer, texts)`: add the subwords a child corpus needs and the parent
  tokenizer lacks, initialising each new embedding row from the parent's embeddings of the pieces the parent
  tokenizer splits it into (Marian's `final_logits_bias` is resized too).
- `translate(...)` (beam search, batched by length) and `translation_scores(...)` (sacrebleu BLEU and chrF
  through the bundled evaluate modules).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AddedToken,
    AutoModelForSeq2SeqLM,
    MarianConfig,
    MarianMTModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from nlptransfer.errors import ModelError
from nlptransfer.modeling.load import load_config, load_model, load_tokenizer

logger = logging.getLogger("nlptransfer")

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


# ----------------------------------------------------------------------------------------------
# tokenizer and model


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000) -> PreTrainedTokenizerFast:
    """A Unigram subword tokenizer trained on `texts` (sentencepiece-style), `</s>` appended to each text."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, EOS, UNK], unk_token=UNK, max_piece_length=12
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, tok.token_to_id(EOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, model_max_length=512
    )


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
# vocabulary extension


def unseen_subwords(
    parent_tokenizer, child_texts: Sequence[str], vocab_size: int, min_count: int = 3
) -> dict[str, float]:
    """Subwords of a Unigram tokenizer trained on the child text that the parent tokenizer lacks, most
    frequent first, with their child log-probability (pieces seen fewer than `min_count` times are left out)."""
    child = train_tokenizer(child_texts, vocab_size)
    scores = dict(json.loads(child.backend_tokenizer.to_str())["model"]["vocab"])
    known = set(parent_tokenizer.get_vocab())
    counts: Counter[str] = Counter()
    for ids in child(list(child_texts), add_special_tokens=False)["input_ids"]:
        counts.update(child.convert_ids_to_tokens(ids))
    return {t: scores.get(t, -20.0) for t, c in counts.most_common() if c >= min_count and t not in known}


def extend_vocabulary(model: PreTrainedModel, tokenizer, new_pieces: dict[str, float] | Sequence[str]):
    """Add subwords to `tokenizer` and grow `model` to match; returns (new tokenizer, pieces added).

    A Unigram tokenizer (sentencepiece style: ours, T5's, Marian-style fast tokenizers) gets the pieces as
    real subwords of its model, with their scores, so they segment words like the old ones do. Any other
    tokenizer gets the word-initial pieces as whole-word added tokens.
    Each new embedding row is the mean of the parent's embeddings of the pieces the *original* tokenizer
    splits the subword into (random rows wreck early training, transformers #15821). Tied output embeddings
    (Marian, T5 v1.0) follow; an untied `lm_head` gets the same mean and Marian's `final_logits_bias` the
    mean bias of the pieces.
    """
    scores = dict(new_pieces) if isinstance(new_pieces, dict) else dict.fromkeys(new_pieces, -20.0)
    vocab = tokenizer.get_vocab()
    pieces = [t for t in scores if t not in vocab]
    if not pieces:
        return tokenizer, []
    parts = [
        tokenizer(t.replace("▁", " ").strip(), add_special_tokens=False)["input_ids"]
        or [tokenizer.unk_token_id]
        for t in pieces
    ]
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    if state["model"]["type"] == "Unigram":
        state["model"]["vocab"].extend([t, float(scores[t])] for t in pieces)
        backend = Tokenizer.from_str(json.dumps(state))
        grown = PreTrainedTokenizerFast(
            tokenizer_object=backend,
            model_max_length=tokenizer.model_max_length,
            **{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
        )
    else:
        pieces = [t for t in pieces if t.startswith("▁") and len(t) > 1]
        parts = [tokenizer(t[1:], add_special_tokens=False)["input_ids"] for t in pieces]
        grown = tokenizer
        grown.add_tokens([AddedToken(t[1:], single_word=True) for t in pieces])
    old_rows = _embedding_rows(model)
    model.resize_token_embeddings(max(len(grown), old_rows), mean_resizing=False)
    resize_final_logits_bias(model)
    added = []
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        out = model.get_output_embeddings()
        tied = out is None or out.weight.data_ptr() == emb.data_ptr()
        bias = getattr(model, "final_logits_bias", None)
        new_vocab = grown.get_vocab()
        for token, ids in zip(pieces, parts, strict=True):
            row = new_vocab.get(token if grown is not tokenizer else token[1:])
            if row is None or row < old_rows or not ids:
                continue
            emb[row] = emb[ids].mean(0)
            if not tied:
                out.weight[row] = out.weight[ids].mean(0)
            if bias is not None:
                bias[..., row] = bias[..., ids].mean(-1)
            added.append(token)
    return grown, added


def resize_final_logits_bias(model: PreTrainedModel) -> None:
    """Marian/BART keep a `final_logits_bias` buffer of vocabulary size; keep it in step with the embeddings."""
    bias = getattr(model, "final_logits_bias", None)
    rows = _embedding_rows(model)
    if bias is not None and bias.shape[-1] != rows:
        grown = torch.zeros((1, rows), dtype=bias.dtype)
        n = min(rows, bias.shape[-1])
        grown[:, :n] = bias[:, :n]
        model.register_buffer("final_logits_bias", grown)


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


def log_perplexity_note(loss: float | None) -> str:
    return "" if loss is None or math.isnan(loss) else f"loss {loss:.3f} (ppl {math.exp(min(loss, 50)):.1f})"
