"""Growing a model's embedding matrix and giving the new rows a start better than noise.

`resize_embeddings` grows the input embeddings (old rows kept, tied output embeddings kept tied;
transformers grows Marian/BART's `final_logits_bias` with them). `initialize_rows` sets new rows to a
(weighted) mean of old rows, in every matrix that has one row per token: input embeddings, untied
output embeddings, the output layer's bias and `final_logits_bias`. `initialize_new_embeddings` picks
those old rows for new words: the word's old pieces (`mean`) or its FOCUS neighbours (`focus`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nlptransfer.embeddings.static import StaticVectors
from nlptransfer.embeddings.vocabulary import word_pieces
from nlptransfer.errors import ConfigError, ModelError

INIT_METHODS = ("random", "mean", "focus")


# ----------------------------------------------------------------------------------------------
# resizing


def input_embeddings(model) -> torch.nn.Embedding:
    """The model's input embedding layer; ModelError if it has none that can be resized."""
    try:
        emb = model.get_input_embeddings()
    except (NotImplementedError, AttributeError) as err:
        raise ModelError(
            f"{type(model).__name__} does not expose its input embeddings (get_input_embeddings), so they "
            "cannot be resized; use a transformers model with a token embedding layer"
        ) from err
    if not isinstance(emb, torch.nn.Embedding):
        raise ModelError(
            f"{type(model).__name__}'s input embeddings are a {type(emb).__name__}, not an nn.Embedding, so "
            "they cannot be resized; use a transformers model with a token embedding layer"
        )
    return emb


def embeddings_tied(model) -> bool:
    """True when the output (LM head) weight is the same tensor as the input embedding weight."""
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return out is not None and out.weight is input_embeddings(model).weight


def resize_embeddings(model, new_size: int, mean_resizing: bool = True) -> int:
    """Grow the input embeddings (and tied or untied output embeddings) to `new_size` rows.

    Rows 0..old-1 are kept as they are; returns the old size. Tied embeddings stay tied.
    Raises ModelError when the model's embeddings cannot be resized or `new_size` would drop rows.
    """
    emb = input_embeddings(model)
    old = emb.num_embeddings
    if new_size < old:
        raise ModelError(
            f"the tokenizer has {new_size} tokens but the model has {old} embedding rows; shrinking would "
            "drop trained rows, pass the extended tokenizer of this model"
        )
    if new_size == old:
        return old
    tied = embeddings_tied(model)
    try:
        model.resize_token_embeddings(new_size, mean_resizing=mean_resizing)
    except (NotImplementedError, AttributeError, TypeError) as err:
        raise ModelError(
            f"{type(model).__name__} cannot resize its token embeddings ({type(err).__name__}: {err}); use a "
            "transformers model with a token embedding layer"
        ) from err
    if input_embeddings(model).num_embeddings != new_size:
        raise ModelError(f"{type(model).__name__} did not resize its embeddings to {new_size} rows")
    if tied and not embeddings_tied(model):
        raise ModelError(f"{type(model).__name__}: resizing untied its input and output embeddings")
    return old


# ----------------------------------------------------------------------------------------------
# initialisation


def _mix(values: torch.Tensor, weights: torch.Tensor | None, dim: int) -> torch.Tensor:
    """The mean of `values` along `dim`, or their sum weighted by `weights` (one weight per value)."""
    if weights is None:
        return values.mean(dim)
    shape = [1] * values.dim()
    shape[dim] = -1
    return (weights.to(values.dtype).view(shape) * values).sum(dim)


def initialize_rows(
    model,
    rows: Sequence[int],
    sources: Sequence[Sequence[int] | torch.Tensor],
    weights: Sequence[torch.Tensor] | None = None,
) -> None:
    """Set each (already resized) row `rows[i]` to the mean of the old rows `sources[i]`, or to their
    sum weighted by `weights[i]`.

    Applied alike to the input embeddings, untied output embeddings, the output layer's bias and a
    `final_logits_bias` buffer (Marian, BART); tied output embeddings follow the input ones.
    """
    emb = input_embeddings(model).weight
    out_layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out_w = None if out_layer is None or out_layer.weight is emb else out_layer.weight
    out_b = getattr(out_layer, "bias", None) if out_layer is not None else None
    logits_bias = getattr(model, "final_logits_bias", None)
    with torch.no_grad():
        for i, (row, ids) in enumerate(zip(rows, sources, strict=True)):
            w = None if weights is None else weights[i]
            for matrix in (emb, out_w):
                if matrix is not None:
                    matrix[row] = _mix(matrix[ids], w, 0)
            if out_b is not None and out_b.shape[0] > row:
                out_b[row] = _mix(out_b[ids], w, 0)
            if logits_bias is not None and logits_bias.shape[-1] > row:
                logits_bias[..., row] = _mix(logits_bias[..., ids], w, -1)


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """Sparsemax (Martins & Astudillo 2016) of a 1-d tensor: a probability vector with exact zeros."""
    z, _ = torch.sort(scores, descending=True)
    cumsum = z.cumsum(0)
    k = torch.arange(1, len(z) + 1, dtype=scores.dtype)
    support = 1 + k * z > cumsum
    k_max = int(support.nonzero().max()) + 1
    tau = (cumsum[k_max - 1] - 1) / k_max
    return torch.clamp(scores - tau, min=0)


def _token_text(token: str) -> str:
    return token[2:] if token.startswith("##") else token


def check_init_method(method: str, aux_vectors: StaticVectors | None) -> None:
    """ConfigError for an unknown init method, or `focus` without auxiliary vectors."""
    if method not in INIT_METHODS:
        raise ConfigError(f"unknown init method {method!r}; choose one of {', '.join(INIT_METHODS)}")
    if method == "focus" and aux_vectors is None:
        raise ConfigError(
            "init 'focus' needs auxiliary static vectors (aux_vectors=load_glove() or trained ones)"
        )


def initialize_new_embeddings(
    model,
    old_tokenizer,
    new_tokenizer,
    new_ids: Sequence[int],
    method: str = "mean",
    aux_vectors: StaticVectors | None = None,
    top_k: int = 50,
) -> dict:
    """Fill the embedding rows `new_ids` of `model` (already resized) with `method`; returns stats.

    `mean`: mean of the rows of the word's pieces under `old_tokenizer`. `focus`: sparsemax-weighted
    sum of the `top_k` old tokens nearest to the word in `aux_vectors` (words missing there fall back
    to `mean`). `random`: the rows `resize_embeddings` drew are left as they are. Untied output
    embeddings (and an output bias) get the same weights (`initialize_rows`).
    """
    check_init_method(method, aux_vectors)
    stats = {"method": method, "new_tokens": len(new_ids), "fallback_to_mean": 0}
    if method == "random" or not new_ids:
        return stats
    words = new_tokenizer.convert_ids_to_tokens(list(new_ids))
    piece_ids = [
        old_tokenizer.convert_tokens_to_ids(ps)
        for ps in word_pieces(old_tokenizer, [_token_text(w) for w in words])
    ]
    focus = _FocusIndex(old_tokenizer, aux_vectors, len(old_tokenizer)) if method == "focus" else None
    sources, weights = [], []
    for word, pieces in zip(words, piece_ids, strict=True):
        ids, w = None, None
        if focus is not None:
            ids, w = focus.neighbours(_token_text(word), top_k)
            if ids is None:
                stats["fallback_to_mean"] += 1
        if ids is None:  # the mean as explicit uniform weights: the same arithmetic as FOCUS' weighted sum
            ids = torch.tensor(pieces, dtype=torch.long)
            w = torch.full((len(pieces),), 1.0 / len(pieces))
        sources.append(ids)
        weights.append(w)
    initialize_rows(model, list(new_ids), sources, weights)
    return stats


class _FocusIndex:
    """Old vocabulary tokens that have a vector in the auxiliary space (word-initial forms only)."""

    def __init__(self, tokenizer, aux: StaticVectors, n_old: int):
        special = set(tokenizer.all_special_ids)
        ids, vecs = [], []
        for token, i in tokenizer.get_vocab().items():
            if i >= n_old or i in special or token.startswith("##"):
                continue
            vec = aux.get(token)
            if vec is not None:
                ids.append(i)
                vecs.append(vec)
        if not ids:
            raise ModelError(
                "no token of the model's vocabulary has an auxiliary vector; FOCUS cannot be used"
            )
        self.ids = torch.tensor(ids, dtype=torch.long)
        matrix = torch.tensor(np.stack(vecs), dtype=torch.float32)
        self.matrix = torch.nn.functional.normalize(matrix, dim=1)
        self.aux = aux

    def neighbours(self, word: str, top_k: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        vec = self.aux.get(word)
        if vec is None:
            return None, None
        query = torch.nn.functional.normalize(torch.tensor(vec, dtype=torch.float32), dim=0)
        sims = self.matrix @ query
        top = torch.topk(sims, min(top_k, len(sims)))
        weights = sparsemax(top.values)
        keep = weights > 0
        return self.ids[top.indices[keep]], weights[keep] / weights[keep].sum()
