"""Extend a tokenizer and grow its model in one call: new words (`extend_vocabulary`; mined from a domain
corpus first: `extend_domain_vocabulary`) or new sentencepiece-style subwords (`extend_subword_vocabulary`),
all through `resize_embeddings` and `initialize_rows`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from tokenizers import AddedToken

from nlptransfer.embeddings.init import (
    check_init_method,
    initialize_new_embeddings,
    initialize_rows,
    input_embeddings,
    resize_embeddings,
)
from nlptransfer.embeddings.static import StaticVectors, load_glove, train_static_vectors
from nlptransfer.embeddings.tokenizer import add_unigram_pieces, extend_tokenizer, tokenizer_model_type
from nlptransfer.embeddings.vocabulary import mine_domain_vocabulary, word_pieces


@dataclass
class VocabularyExtension:
    """What `extend_vocabulary` did (also written as vocab_extension.json by the recipe)."""

    words: list[str]
    new_ids: list[int]
    init: str
    old_size: int
    new_size: int
    stats: dict
    old_pieces: dict[str, list[str]] = field(default_factory=dict)  # each word cut by the old tokenizer

    def as_dict(self) -> dict:
        return asdict(self)


def extend_vocabulary(
    model,
    tokenizer,
    words: Sequence[str],
    init: str = "mean",
    *,
    method: str = "auto",
    aux_vectors: StaticVectors | None = None,
    seed: int = 0,
):
    """Extend `tokenizer` with `words`, resize `model`'s embeddings, initialise the new rows with
    `init` (random/mean/focus). Returns (new_tokenizer, VocabularyExtension). `model` is changed in
    place; the input tokenizer is not."""
    check_init_method(init, aux_vectors)
    input_embeddings(model)  # fail before any work if the model cannot be resized
    new_tokenizer, new_ids = extend_tokenizer(tokenizer, words, method=method)
    torch.manual_seed(seed)
    old_size = resize_embeddings(model, len(new_tokenizer), mean_resizing=True)
    stats = initialize_new_embeddings(model, tokenizer, new_tokenizer, new_ids, init, aux_vectors)
    words_added = list(new_tokenizer.convert_ids_to_tokens(new_ids))
    old_pieces = dict(zip(words_added, word_pieces(tokenizer, words_added), strict=True))
    return new_tokenizer, VocabularyExtension(
        words_added, list(new_ids), init, old_size, len(new_tokenizer), stats, old_pieces
    )


def extend_domain_vocabulary(
    model,
    tokenizer,
    domain_texts: Sequence[str],
    words: Sequence[str] | None = None,
    *,
    size: int = 500,
    reference_texts: Sequence[str] | None = None,
    min_count: int = 5,
    init: str = "mean",
    aux_vectors: str = "glove",
    seed: int = 0,
):
    """`extend_vocabulary` with `words`, or, when None, with the `size` domain words mined from
    `domain_texts` (`mine_domain_vocabulary` against `reference_texts`). `init="focus"` finds similar
    tokens in `aux_vectors`: `glove` (`load_glove()`) or `domain` (`train_static_vectors` on `domain_texts`).
    Returns (new_tokenizer, VocabularyExtension)."""
    if words is None:
        mined = mine_domain_vocabulary(
            tokenizer, domain_texts, reference_texts, size=size, min_count=min_count
        )
        words = [c.word for c in mined]
    aux = None
    if init == "focus":
        aux = load_glove() if aux_vectors == "glove" else train_static_vectors(tokenizer, domain_texts)
    return extend_vocabulary(model, tokenizer, words, init=init, aux_vectors=aux, seed=seed)


def extend_subword_vocabulary(model, tokenizer, new_pieces: dict[str, float] | Sequence[str]):
    """Add sentencepiece-style subwords (`▁` marks a word start) to `tokenizer` and grow `model` to
    match; returns (new tokenizer, pieces added).

    `new_pieces`: piece -> Unigram log-probability, or a sequence of pieces (score -20). Pieces the
    tokenizer has are skipped. A Unigram tokenizer (ours, T5's, Marian-style fast tokenizers) gets the
    pieces as real subwords of its model (`add_unigram_pieces`), so they segment words like the old
    ones do. Any other tokenizer gets the word-initial pieces as whole-word added tokens (it is changed
    in place). Each new row is the mean of the rows of the pieces the *original* tokenizer splits the
    subword into (random rows wreck early training, transformers #15821): input, untied output
    embeddings and Marian's `final_logits_bias` alike (`initialize_rows`). A piece whose id falls
    inside rows the model already had (spare rows) is neither initialised nor reported.
    """
    scores = dict(new_pieces) if isinstance(new_pieces, dict) else dict.fromkeys(new_pieces, -20.0)
    vocab = tokenizer.get_vocab()
    pieces = [t for t in scores if t not in vocab]
    if not pieces:
        return tokenizer, []

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    if tokenizer_model_type(tokenizer) == "Unigram":
        parts = [ids(t.replace("▁", " ").strip()) or [tokenizer.unk_token_id] for t in pieces]
        grown = add_unigram_pieces(tokenizer, {t: scores[t] for t in pieces})
        tokens = pieces
    else:
        pieces = [t for t in pieces if t.startswith("▁") and len(t) > 1]
        tokens = [t[1:] for t in pieces]
        parts = [ids(t) for t in tokens]
        grown = tokenizer
        grown.add_tokens([AddedToken(t, single_word=True) for t in tokens])
    old_rows = input_embeddings(model).num_embeddings  # may exceed len(tokenizer): spare rows are kept
    resize_embeddings(model, max(len(grown), old_rows), mean_resizing=False)
    new_vocab = grown.get_vocab()
    added, rows, sources = [], [], []
    for piece, token, part in zip(pieces, tokens, parts, strict=True):
        row = new_vocab.get(token)
        if row is None or row < old_rows or not part:
            continue
        added.append(piece)
        rows.append(row)
        sources.append(part)
    initialize_rows(model, rows, sources)
    return grown, added
