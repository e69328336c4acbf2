"""Extending a fast tokenizer: new WordPiece or Unigram vocabulary entries, or whole-word added tokens.

New ids always follow the existing ones, so old ids (and the model rows they index) never change.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from nlptransfer.embeddings.vocabulary import fast_backend, split_words, word_pieces
from nlptransfer.errors import ConfigError, DataError, ModelError

logger = logging.getLogger("nlptransfer")

EXTEND_METHODS = ("auto", "vocab", "added_tokens")


def tokenizer_model_type(tokenizer) -> str | None:
    """The subword model of a fast tokenizer: WordPiece, BPE, Unigram or WordLevel; None when slow."""
    backend = fast_backend(tokenizer)
    return None if backend is None else type(backend.model).__name__


def _extend_method(tokenizer, method: str) -> str:
    if method not in EXTEND_METHODS:
        raise ConfigError(f"unknown extension method {method!r}; choose one of {', '.join(EXTEND_METHODS)}")
    model_type = tokenizer_model_type(tokenizer)
    if model_type is None:
        raise ModelError(
            f"{type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer, so its vocabulary cannot "
            "be extended here; use a model whose tokenizer has a tokenizer.json"
        )
    if method == "auto":
        return "vocab" if model_type == "WordPiece" else "added_tokens"
    if method == "vocab" and model_type != "WordPiece":
        raise ModelError(
            f"extension method 'vocab' needs a WordPiece tokenizer, this one is {model_type}; "
            "use method 'added_tokens' (or 'auto')"
        )
    return method


def _normalise(tokenizer, word: str) -> str:
    backend = fast_backend(tokenizer)
    if backend is not None and backend.normalizer is not None:
        return backend.normalizer.normalize_str(word)
    return word


def extend_tokenizer(tokenizer, words: Sequence[str], method: str = "auto"):
    """A copy of `tokenizer` in which each of `words` is one token; returns (tokenizer, new_ids).

    `method`: `vocab` (WordPiece: new vocabulary entries), `added_tokens` (whole-word added tokens) or
    `auto` (vocab for WordPiece, added tokens otherwise). Words are normalised like the tokenizer's
    input (lower-cased for uncased models); words that are already one token are skipped. Existing ids
    are unchanged; new ids follow the largest existing id, in the order of `words`. The input
    tokenizer is not modified.
    """
    method = _extend_method(tokenizer, method)
    vocab = tokenizer.get_vocab()
    normalised: list[str] = []
    for word in words:
        norm = _normalise(tokenizer, word).strip()
        if not norm:
            continue
        if len(split_words(tokenizer, norm)) != 1:
            raise DataError(
                f"{word!r} is split into several words by the tokenizer's pre-tokeniser (spaces or "
                "punctuation), so it can never be one token; add single words"
            )
        normalised.append(norm)
    new_words: list[str] = []
    seen: set[str] = set()
    for norm, pieces in zip(normalised, word_pieces(tokenizer, normalised), strict=True):
        if norm in vocab or norm in seen or len(pieces) == 1:
            continue  # already one token
        seen.add(norm)
        new_words.append(norm)
    start = max(vocab.values()) + 1 if vocab else 0
    if method == "added_tokens":
        extended = copy.deepcopy(tokenizer)
        extended.add_tokens([AddedToken(w, single_word=True, normalized=True) for w in new_words])
    else:
        extended = _add_wordpiece_entries(tokenizer, new_words, start)
    new_ids = extended.convert_tokens_to_ids(new_words)
    if new_words and (min(new_ids) < start or sorted(new_ids) != list(new_ids)):
        raise ModelError(
            "tokenizer extension did not append the new ids after the old ones; nothing was changed"
        )
    logger.info(
        "tokenizer extended by %d words (%s): ids %s..%s",
        len(new_words),
        method,
        new_ids[0] if new_ids else "-",
        new_ids[-1] if new_ids else "-",
    )
    return extended, list(new_ids)


def _add_wordpiece_entries(tokenizer, words: list[str], start: int):
    """WordPiece vocab entries through tokenizer.json (saved, edited, reloaded: public API only)."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        path = Path(tmp) / "tokenizer.json"
        if not path.is_file():
            raise ModelError(
                f"{type(tokenizer).__name__} does not save a tokenizer.json, so its vocabulary cannot be "
                "extended; use method 'added_tokens'"
            )
        spec = json.loads(path.read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
        for i, word in enumerate(words):
            vocab[word] = start + i
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        vocab_txt = Path(tmp) / "vocab.txt"
        if vocab_txt.is_file():  # a slow-tokenizer vocab file saved beside it must agree
            lines = vocab_txt.read_text(encoding="utf-8").splitlines()
            if len(lines) == start:
                vocab_txt.write_text("\n".join(lines + words) + "\n", encoding="utf-8")
            else:
                vocab_txt.unlink()
        return AutoTokenizer.from_pretrained(tmp)


def add_unigram_pieces(tokenizer, scores: Mapping[str, float]):
    """A new fast tokenizer whose Unigram model also has the pieces `scores` (piece -> log-probability).

    The pieces are real subwords of the model (sentencepiece style: `▁` marks a word start), so they
    segment words like the old pieces do; they get the ids after the old ones, in order. The special
    tokens and `model_max_length` are carried over; the input tokenizer is not modified.
    """
    state = json.loads(fast_backend(tokenizer).to_str())
    state["model"]["vocab"].extend([piece, float(score)] for piece, score in scores.items())
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)),
        model_max_length=tokenizer.model_max_length,
        **{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
    )
