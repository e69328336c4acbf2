"""Word vectors carried into a domain classifier: a vectors source -> a word-vector checkpoint folder.

`--model_name_or_path` of the classification recipes may name a set of word vectors instead of a model:

- `glove-6b-50d` (also `glove.6B.50d`): GloVe 6B 50-d, the embedded `glove` asset (fetched once into the
  cache and verified by `nlptransfer.assets`); its rows are in frequency order, the first `--max_vocab` kept;
- a vectors file: word2vec/GloVe text format (an optional `count dim` header line, then `word v1 ... vD`
  per line; `.gz` read as gzip), the first `--max_vocab` distinct (lower-cased) words kept;
- `domain-vectors`: PPMI + SVD vectors trained on the run's training split (its texts only, never its
  labels, and all of it even when `--max_train_samples` labels fewer: unlabelled domain text is the cheap
  part; at most `--domain_max_texts` texts) with `train_static_vectors`, `--embedding_dim` dimensions (100
  when unset), every word seen `--domain_min_count` times.

`prepare_word_vectors` (called by the recipes after the data is loaded, before anything is built or
written) turns the source into a checkpoint folder in the cache (`<cache>/wordvec/<name>-<key>/`: a bare
`WordVectorsModel` with the vectors, its config holding the head settings, and a word-level tokenizer built
from the vocabulary with `tokenizers`: lower-casing BERT normaliser, BERT pre-tokeniser, WordLevel model,
[PAD] = 0, [UNK] = 1) and points `model_args.model_name_or_path` at it. From there the one loading path
(`nlptransfer.modeling.build_classifier` / `load_tokenizer`) builds `WordVectorsForSequenceClassification`
like any other checkpoint; `--from_scratch` gives the same vocabulary with random vectors of the same scale.

Bad input is one line, before anything is written: a file that is not a text vectors file, vectors whose
dimension differs from `--embedding_dim`, a vocabulary covering less than `--min_vocab_overlap` of the
training texts' words (the rate is in the message), a cache folder that cannot be written (set
NLPTRANSFER_CACHE) or a damaged cached checkpoint (delete its folder to rebuild it).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlptransfer.assets import DOMAIN_VECTORS, cache_dir, get_artifact, word_vectors_key
from nlptransfer.config import flag_set, user_set
from nlptransfer.embeddings.static import StaticVectors, load_glove, train_static_vectors
from nlptransfer.embeddings.vocabulary import split_words
from nlptransfer.errors import ConfigError, DataError
from nlptransfer.modeling.load import load_tokenizer
from nlptransfer.paths import expand_user

logger = logging.getLogger("nlptransfer")

PAD, UNK = "[PAD]", "[UNK]"
#: Bump when the checkpoint layout changes, so cached folders are rebuilt.
_FORMAT = 1


@dataclass
class WordVectorArguments:
    """Settings of a word-vector classifier (`--model_name_or_path glove-6b-50d`, a vectors file or
    domain-vectors); refused with any other model."""

    max_vocab: int = field(
        default=100000,
        metadata={"help": "Word vectors: keep the first (most frequent) this many words of the vectors."},
    )
    embedding_dim: int | None = field(
        default=None,
        metadata={
            "help": "Word vectors: the dimension expected of a vectors file (a file of another dimension is "
            "refused) or trained for domain-vectors (default 100). Unset: the vectors' own."
        },
    )
    wordvec_encoder: str = field(
        default="bag",
        metadata={
            "help": "Word vectors: bag (pool the vectors) or cnn (1-D convolutions of widths 3, 4, 5, then "
            "pooling); pooling is --pooling mean|max (auto: mean).",
            "choices": ["bag", "cnn"],
        },
    )
    wordvec_hidden_size: int = field(
        default=128, metadata={"help": "Word vectors: hidden layer of the MLP head (0: a linear head)."}
    )
    wordvec_dropout: float = field(default=0.2, metadata={"help": "Word vectors: dropout of the head."})
    min_vocab_overlap: float = field(
        default=0.1,
        metadata={
            "help": "Word vectors: refuse vectors whose vocabulary covers less than this share of the "
            "training texts' word occurrences."
        },
    )
    domain_min_count: int = field(
        default=2, metadata={"help": "domain-vectors: words seen fewer times in the training texts get none."}
    )
    domain_max_texts: int = field(
        default=5000,
        metadata={"help": "domain-vectors: train on at most this many training texts (memory and time)."},
    )

    def __post_init__(self):
        if self.max_vocab < 1:
            raise ConfigError(f"max_vocab={self.max_vocab} must be >= 1 (e.g. --max_vocab 100000)")
        if self.embedding_dim is not None and self.embedding_dim < 1:
            raise ConfigError(f"embedding_dim={self.embedding_dim} must be >= 1, or left unset")
        if self.wordvec_encoder not in ("bag", "cnn"):
            raise ConfigError(
                f"wordvec_encoder={self.wordvec_encoder!r}: choose bag or cnn (--wordvec_encoder)"
            )
        if self.wordvec_hidden_size < 0:
            raise ConfigError(f"wordvec_hidden_size={self.wordvec_hidden_size} must be >= 0 (0: linear head)")
        if not 0 <= self.wordvec_dropout < 1:
            raise ConfigError(f"wordvec_dropout={self.wordvec_dropout} must be in [0, 1)")
        if not 0 <= self.min_vocab_overlap <= 1:
            raise ConfigError(f"min_vocab_overlap={self.min_vocab_overlap} must be between 0 and 1")
        if self.domain_min_count < 1:
            raise ConfigError(f"domain_min_count={self.domain_min_count} must be >= 1")
        if self.domain_max_texts < 1:
            raise ConfigError(f"domain_max_texts={self.domain_max_texts} must be >= 1")


def is_word_vectors(name: str) -> bool:
    """Whether `--model_name_or_path` names word vectors: GloVe, domain-vectors or a file (not a folder)."""
    text = str(name).strip()
    if word_vectors_key(text) or text.lower() == DOMAIN_VECTORS:
        return True
    try:
        return expand_user(text).is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte, an unknown ~user (ConfigError)
        return False


# ----------------------------------------------------------------------------------------------
# reading vectors


def read_vectors_file(path: str | Path, max_words: int) -> StaticVectors:
    """The first `max_words` distinct lower-cased words of a word2vec/GloVe text file; DataError otherwise.

    Each line is a word and its numbers, separated by single spaces (fastText's .vec ends each line with one
    more, a UTF-8 byte-order mark may open the file). Once the dimension D is known (the header, else the
    first line) the last D fields of a line are its numbers and the rest is the word, so a word holding a
    space or another whitespace character (GloVe 840B has '. . .', some files non-breaking spaces) stays
    whole; a line that does not split that way is split on any whitespace (tabs, double spaces)."""
    file = expand_user(path)
    fix = "pass a word2vec/GloVe text file: one word and its numbers per line, an optional 'count dim' header"
    opener = gzip.open if file.suffix == ".gz" else open
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    dim = header_dim = None
    first = 0
    try:
        with opener(file, "rt", encoding="utf-8-sig") as handle:  # -sig: a byte-order mark is dropped
            for lineno, line in enumerate(handle, 1):
                text = line.rstrip()  # the newline, a \r, trailing spaces after the last number
                if not text:
                    continue
                if lineno == 1:
                    head = text.split()
                    if len(head) == 2 and all(p.isdecimal() for p in head):
                        header_dim = int(head[1])
                        continue
                if dim is None:
                    parts = _fields(text, header_dim if header_dim is not None else text.count(" "))
                    dim, first = len(parts) - 1, lineno
                    if dim < 1:
                        raise DataError(
                            f"{file}: line {lineno} holds a word without numbers: not a vectors file; {fix}"
                        )
                    if header_dim is not None and header_dim != dim:
                        raise DataError(
                            f"{file}: the header says {header_dim}-d vectors but line {lineno} has {dim} numbers; "
                            "fix the header or the file"
                        )
                else:
                    parts = _fields(text, dim)
                if len(parts) - 1 != dim:
                    raise DataError(
                        f"{file}: line {lineno} has {len(parts) - 1} numbers after the word, line {first} has "
                        f"{dim}: not a vectors file of one dimension; {fix}"
                    )
                try:
                    vector = np.asarray([float(p) for p in parts[1:]], dtype=np.float32)
                except ValueError:
                    bad = next(p for p in parts[1:] if not _is_float(p))
                    raise DataError(
                        f"{file}: line {lineno}: {bad[:30]!r} is not a number: not a vectors file; {fix}"
                    ) from None
                if not np.isfinite(vector).all():
                    raise DataError(
                        f"{file}: line {lineno} holds NaN or infinite values; fix or drop that line"
                    )
                word = parts[0].strip().lower()
                if word and word not in seen:  # a blank word (whitespace only) never matches a token
                    seen.add(word)
                    words.append(word)
                    rows.append(vector)
                    if len(words) >= max_words:
                        break
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as err:
        raise DataError(f"{file} is not a text vectors file ({type(err).__name__}: binary?); {fix}") from err
    except OSError as err:
        raise DataError(f"cannot read vectors file {file} ({err.strerror or err}); {fix}") from err
    if not words:
        raise DataError(f"{file} holds no word vectors; {fix}")
    return StaticVectors(words, np.stack(rows))


def _fields(text: str, dim: int) -> list[str]:
    """A line as [word, number, ...]: its last `dim` single-space-separated fields after the word (which
    may hold spaces); split on any whitespace when the line is not that shape, or when the word's extra
    fields are numbers too (a line with more than `dim` numbers is reported as such, not read as a word)."""
    parts = text.rsplit(" ", dim)
    extra = parts[0].split()[1:]
    if len(parts) == dim + 1 and parts[0] and all(parts[1:]) and not (extra and all(map(_is_float, extra))):
        return parts
    return text.split()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def word_tokenizer(words: Sequence[str]):
    """A word-level fast tokenizer over `words` (ids 2..): BERT normaliser (lower-cased, accents kept) and
    pre-tokeniser, [PAD] = 0, [UNK] = 1; returns only input_ids and attention_mask."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, UNK: 1}
    for word in words:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        model_input_names=["input_ids", "attention_mask"],
    )


def vocabulary_overlap(tokenizer, texts: Sequence[str]) -> tuple[float, int, int]:
    """(share of the texts' word occurrences in the vocabulary, words known, distinct words)."""
    vocab = tokenizer.get_vocab()
    counts: dict[str, int] = {}
    for text in texts:
        if isinstance(text, str):
            for word in split_words(tokenizer, text):
                counts[word] = counts.get(word, 0) + 1
    total = sum(counts.values())
    known = sum(c for w, c in counts.items() if w in vocab)
    return (known / total if total else 0.0), sum(1 for w in counts if w in vocab), len(counts)


# ----------------------------------------------------------------------------------------------
# the checkpoint


def _source(name: str, args: WordVectorArguments, texts: Sequence[str]) -> tuple[str, Callable]:
    """(cache key material, a function returning (vectors, description)) of a word-vector source: the key
    is cheap, so a cached checkpoint is used without reading or training the vectors again."""
    key = name.strip().lower()
    if word_vectors_key(key):
        art = get_artifact(word_vectors_key(key))

        def glove() -> tuple[StaticVectors, str]:
            full = load_glove()
            keep = min(args.max_vocab, len(full.words))
            vectors = StaticVectors(full.words[:keep], full.vectors[:keep])
            return vectors, f"{name} ({art.spec}), {keep} most frequent words"

        return f"{art.sha256}|{args.max_vocab}", glove
    if key == DOMAIN_VECTORS:
        dim = args.embedding_dim or 100
        corpus = [t for t in texts if isinstance(t, str)][: args.domain_max_texts]
        digest = hashlib.sha256("\x00".join(corpus).encode()).hexdigest()

        def domain() -> tuple[StaticVectors, str]:
            vectors = train_static_vectors(
                word_tokenizer([]), corpus, dim=dim, min_count=args.domain_min_count
            )
            return vectors, f"domain vectors: PPMI + SVD ({dim}-d) of {len(corpus)} training texts"

        return f"{digest}|{dim}|{args.domain_min_count}", domain
    file = expand_user(name, what=f"word vectors {name!r}").resolve()
    stat = file.stat()

    def from_file() -> tuple[StaticVectors, str]:
        vectors = read_vectors_file(file, args.max_vocab)
        return vectors, f"{file.name}, first {len(vectors.words)} words"

    return f"{file}|{stat.st_size}|{stat.st_mtime_ns}|{args.max_vocab}", from_file


def prepare_word_vectors(model_args, args: WordVectorArguments, texts: Sequence[str]) -> str | None:
    """If `model_args.model_name_or_path` names word vectors: check them against the training `texts`,
    build (once; cached) their checkpoint folder, point `model_args.model_name_or_path` at it and return it.
    Otherwise None, and word-vector settings the user set are refused."""
    name = str(model_args.model_name_or_path)
    if not is_word_vectors(name):
        if user_set(args):
            key = sorted(user_set(args))[0]
            given = f"--{key}" if key in flag_set(args) else f"{key} (of the --config file)"
            raise ConfigError(
                f"{given} applies to word-vector models only (--model_name_or_path "
                f"glove-6b-50d, a vectors file or domain-vectors), not {name!r}; drop it"
            )
        return None
    material, load = _source(name, args, texts)
    head = {
        "sentence_encoder": args.wordvec_encoder,
        "head_hidden_size": args.wordvec_hidden_size,
        "classifier_dropout": args.wordvec_dropout,
    }
    digest = hashlib.sha256(f"v{_FORMAT}|{material}|{sorted(head.items())}".encode()).hexdigest()[:16]
    slug = "".join(c if c.isalnum() or c in "-." else "-" for c in Path(name).name.lower())[:40]
    folder = cache_dir() / "wordvec" / f"{slug}-{digest}"
    vectors = None
    if (folder / "config.json").is_file():  # built before: its tokenizer and dimension
        try:
            dim = int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["embedding_dim"])
            tokenizer = load_tokenizer(folder)
        except (OSError, ValueError, KeyError, TypeError) as err:  # nlptransfer's one-line errors included
            raise DataError(
                f"the cached word-vector checkpoint {folder} is damaged ({type(err).__name__}); delete "
                f"{folder} to rebuild it"
            ) from err
        size = len(tokenizer.get_vocab()) - 2
    else:
        if problem := _unwritable(folder.parent):  # before reading or training the vectors
            raise ConfigError(
                f"cannot write the word-vector cache {folder.parent}: {problem}; set NLPTRANSFER_CACHE to a "
                "writable folder"
            )
        vectors, description = load()
        dim, size = int(vectors.vectors.shape[1]), len(vectors.words)
        tokenizer = word_tokenizer(vectors.words)
    if args.embedding_dim is not None and dim != args.embedding_dim:
        raise DataError(
            f"{name} holds {dim}-d vectors but --embedding_dim is {args.embedding_dim}; pass vectors of "
            f"{args.embedding_dim} dimensions or set --embedding_dim {dim}"
        )
    rate, known, distinct = vocabulary_overlap(tokenizer, texts)
    message = (
        f"the vocabulary of {name} ({size} words) covers {rate:.1%} of the word occurrences in the training "
        f"texts ({known} of {distinct} distinct words)"
    )
    if rate < args.min_vocab_overlap or known == 0:
        raise DataError(
            f"{message}, below --min_vocab_overlap {args.min_vocab_overlap:.0%}; pass vectors of the data's "
            f"language and domain, or --model_name_or_path {DOMAIN_VECTORS} (trained on the training texts)"
        )
    logger.info("%s", message)
    if vectors is not None:
        try:
            write_checkpoint(folder, vectors, tokenizer, description, head)
        except OSError as err:  # disk full, permissions changed meanwhile, ...
            raise ConfigError(
                f"cannot write the word-vector cache {folder.parent} ({err.strerror or err}); free some "
                "space or set NLPTRANSFER_CACHE to a writable folder"
            ) from err
    logger.info("word vectors %s -> %s", name, folder)
    model_args.model_name_or_path = str(folder)
    return str(folder)


def _unwritable(folder: Path) -> str | None:
    """Why `folder` (created when missing) cannot be written, or None; nothing is created to find out."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def write_checkpoint(folder: Path, vectors: StaticVectors, tokenizer, description: str, head: dict) -> None:
    """A bare `WordVectorsModel` holding `vectors` (rows 2.., [PAD] and [UNK] zero) and `tokenizer`, written
    into a temporary folder beside `folder` and renamed into place (readers never see half a folder)."""
    import torch

    from nlptransfer.wordvec import WordVectorsConfig, WordVectorsModel

    matrix = np.asarray(vectors.vectors, dtype=np.float32)
    std = float(matrix.std()) if matrix.size > 1 else 0.3
    config = WordVectorsConfig(
        vocab_size=len(tokenizer.get_vocab()),
        embedding_dim=int(matrix.shape[1]),
        pad_token_id=0,
        embedding_init_std=std if math.isfinite(std) and std > 0 else 0.3,
        word_vectors_source=description,
        **head,
    )
    model = WordVectorsModel(config)
    vocab = tokenizer.get_vocab()
    rows, ids, seen = [], [], set()
    for row, word in enumerate(vectors.words):  # a word listed twice keeps its first vector
        if word in vocab and word not in seen:
            seen.add(word)
            rows.append(row)
            ids.append(vocab[word])
    with torch.no_grad():
        weight = model.embeddings.weight
        weight.zero_()
        weight[torch.tensor(ids, dtype=torch.long)] = torch.from_numpy(matrix[rows])
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "config.json").is_file():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
