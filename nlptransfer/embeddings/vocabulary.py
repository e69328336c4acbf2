"""Words and pieces: how a tokenizer cuts a corpus (fertility) and which domain words are worth adding."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tokenizers import Tokenizer

from nlptransfer.errors import ConfigError, DataError
from nlptransfer.paths import expand_user

_ALPHA = re.compile(r"[^\W\d_]+")  # letters only (any script)


# ----------------------------------------------------------------------------------------------
# words and pieces


def fast_backend(tokenizer):
    """The `tokenizers.Tokenizer` behind a fast tokenizer; None for a slow (Python) tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        return None
    return backend


def split_words(tokenizer, text: str) -> list[str]:
    """The words of `text` as the tokenizer sees them: its normaliser, then its pre-tokeniser.

    Slow (Python) tokenizers: whitespace split.
    """
    backend = fast_backend(tokenizer)
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
    backend = fast_backend(tokenizer)
    if backend is None:
        return [tokenizer.tokenize(w) for w in words]
    plain = Tokenizer.from_str(backend.to_str())  # a copy without the saved padding/truncation settings
    plain.no_padding()
    plain.no_truncation()
    encodings = plain.encode_batch(list(words), add_special_tokens=False)
    return [enc.tokens for enc in encodings]


def nonblank_texts(texts: Sequence[str], what: str) -> list[str]:
    """The texts of `texts` that are not blank; DataError naming `what` when none is left."""
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise DataError(f"{what} has no text (empty, or only blank lines); pass a corpus with text in it")
    return texts


# ----------------------------------------------------------------------------------------------
# fertility


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


def tokenizer_fertility(tokenizer, texts: Sequence[str], counts: Counter | None = None) -> FertilityReport:
    """Fertility (subwords per word) and fragmented/unknown-word rates of `tokenizer` on `texts`."""
    counts = counts if counts is not None else count_words(tokenizer, nonblank_texts(texts, "corpus"))
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
    counts = counts if counts is not None else count_words(tokenizer, nonblank_texts(texts, "corpus"))
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


def reference_texts(source: str = "vader") -> list[str]:
    """General text for mining. `vader`: the texts of the four VADER gold standards (23.7k snippets of
    general English); any other `load_source` source (e.g. a .txt file): the texts of its train split."""
    from nlptransfer.data import (
        VADER_DOMAINS,
        load_source,
        load_vader,
    )  # imports `datasets`: only when mining

    if source.lower() != "vader":
        return list(load_source(source, label_column=None)["train"]["text"])
    texts: list[str] = []
    for filename, _ in VADER_DOMAINS.values():
        texts += list(load_vader(filename, binary=False)["text"])
    return texts


def read_word_list(path: str | Path) -> list[str]:
    """The words of a UTF-8 text file, one per line (blank lines skipped): words to add to a vocabulary."""
    p = expand_user(path, what=f"--new_words file {str(path)!r}")  # ~/words.txt in a YAML config too
    if not p.is_file():
        raise DataError(f"--new_words file {str(path)!r} not found; pass a text file with one word per line")
    try:
        words = [w.strip() for w in p.read_text(encoding="utf-8").splitlines() if w.strip()]
    except UnicodeDecodeError:
        raise DataError(f"--new_words file {str(path)!r} is not UTF-8 text; re-save it as UTF-8") from None
    if not words:
        raise DataError(f"--new_words file {str(path)!r} is empty; put one word per line")
    return words


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
    domain = count_words(tokenizer, nonblank_texts(domain_texts, "domain corpus"))
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
