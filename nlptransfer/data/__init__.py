"""Load a text-classification (or unlabelled text) dataset from one string, with clear errors.

`load_source(source)` accepts, in this order:

1. an embedded dataset name (`EMBEDDED_DATASETS`, fetched offline): the VADER gold standards
   (`vader-<domain>[-binary]`), `pubmed-pubtype`, `pubmed-mesh` and `pubmed-mesh-<K>`, and the
   unlabelled corpora `pubmed-abstracts` / `pubmed-abstracts-unindexed` (see `nlptransfer.data.pubmed`);
2. an existing local file (`.csv`, `.tsv`, `.json`, `.jsonl`, `.parquet`, `.txt`: one text per line,
   no label) or folder (`train.*`, `validation.*`/`valid.*`/`dev.*`, `test.*` become those splits,
   otherwise all files of one supported type form the train split);
3. anything else is a Hub id for `datasets.load_dataset` (fails clearly when the Hub is unreachable).

It returns a `DatasetDict` with `train`, `validation` and `test`, the text column renamed to `text`
and, single-label, the label column to `label` (a `ClassLabel`), or, multi-label, to `labels` (a
list of class ids, `List(ClassLabel)`); other columns are kept. `is_multilabel(ds)` and
`label_names(ds)` work on both. Rows whose text is empty or whitespace-only are dropped with a
warning that counts them (per split); a split left with no text fails.

Multi-label targets. The label column is multi-label when it holds lists (json/jsonl/parquet/Hub:
lists of class names or of integer ids, `[]` = no class), or, in .csv/.tsv files, when any label cell
contains `;`: every cell is then split on `;` ("a;b", "a" = one class, ";" = none; spaces around
names stripped). Alternatively `label_column="colA,colB,colC"` names several 0/1 columns, one per
class (the column names, in that order, are the class names; the columns are replaced by `labels`).
Class names from lists are sorted (strings alphabetically, integer ids numerically, named by their
decimal string) unless they already come as a `List(ClassLabel)`. If the default `label` column is
missing but a list column `labels` exists, that one is used.

Split protocol. Missing splits are carved from train with `Dataset.train_test_split`, seeded
(`seed`, default 42) and stratified by label when possible (plain random otherwise, and always for
multi-label targets): first `test` takes `test_fraction` of train, then `validation` takes
`validation_fraction` of what is left. Both default to the source's protocol (`SplitProtocol`):
0.5 / 0.1 for local files and Hub sets; explicit values override it.
- The embedded VADER sets come as one corpus, so they follow the paper's protocol (Hutto & Gilbert,
  ICWSM 2014): test is a random half of the corpus (with an odd size the test half gets the extra
  row), validation is 10% of the training half, train is the rest.
- The embedded PubMed sets (one corpus too) use test 20%, then validation 10% of the rest, seeded,
  stratified by label for `pubmed-pubtype` (so its real class imbalance is the same in every split),
  random for the multi-label `pubmed-mesh`.

VADER labels. Each line of `*_GroundTruth.txt` is `id<TAB>mean_rating<TAB>text` (CRLF; the mean
rating of 20 raters on -4..+4, kept as `score`). The paper normalises compound = score / 4 and
calls a text neutral when it lies within +-0.05, *inclusive*: negative when compound < -0.05,
neutral when -0.05 <= compound <= 0.05, positive when compound > 0.05 (a score of exactly +-0.2 is
neutral). This reproduces the published 3-class counts (neg/neu/pos): tweets 1195/359/2646,
movies 5245/203/5157, amazon 1336/467/1905, nyt 2260/1289/1641; the exclusive band does not.
The `-binary` variants drop the neutral band. Texts are kept as published (HTML entities such as
`&amp;` included), only stripped of surrounding whitespace.

Every problem a user can cause raises `DataError` with one line naming the problem and the fix
(a label column with a single class, mixed label types, labels in validation/test never seen in
train, ...). User files are only read, never modified.
"""

from __future__ import annotations

import codecs
import difflib
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from nlptransfer.errors import ConfigError, DataError

logger = logging.getLogger("nlptransfer")

LABELS_3 = ["negative", "neutral", "positive"]
LABELS_2 = ["negative", "positive"]
#: |score / 4| <= NEUTRAL_BAND is neutral (inclusive, as in the VADER paper).
NEUTRAL_BAND = 0.05

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
_EXT_LIST = "/".join(EXTENSIONS)
#: In these files a label cell containing MULTI_SEP is a list of classes ("a;b").
DELIMITED = {".csv", ".tsv"}
MULTI_SEP = ";"
_LIST_FEATURES = (datasets.List, datasets.LargeList)
_JSON = getattr(datasets, "Json", None)  # datasets >= 5: the feature of a column of mixed types


@dataclass(frozen=True)
class SplitProtocol:
    """How `load_source` carves missing splits: `test_fraction` of the corpus, then
    `validation_fraction` of the rest."""

    test_fraction: float = 0.5
    validation_fraction: float = 0.1


DEFAULT_PROTOCOL = SplitProtocol(0.2, 0.1)  # local files and Hub sets without a test split
VADER_PROTOCOL = SplitProtocol(0.5, 0.1)  # Hutto & Gilbert 2014: test half, 10% of the rest
PUBMED_PROTOCOL = SplitProtocol(0.2, 0.1)


@dataclass(frozen=True)
class EmbeddedDataset:
    """An embedded dataset: `loader()` returns the whole corpus as one `Dataset` (with `text` and
    a `label` ClassLabel or a `labels` List(ClassLabel)); `load_source` carves its splits."""

    loader: Callable[[], Dataset]
    description: str
    split_protocol: SplitProtocol = DEFAULT_PROTOCOL


# ----------------------------------------------------------------------------------------------
# VADER


def vader_label(score: float, binary: bool = False) -> int | None:
    """Class id of a VADER mean rating (see the module docstring); None for neutral when binary."""
    compound = score / 4
    if compound < -NEUTRAL_BAND:
        return 0
    if compound > NEUTRAL_BAND:
        return 1 if binary else 2
    return None if binary else 1


def read_vader(path: str | Path) -> list[dict]:
    """Parse a VADER `*_GroundTruth.txt` file into rows `{id, text, score}`.

    Tolerates CRLF/LF, blank lines and tabs inside the text (only the first two tabs split).
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 at byte {err.start}; the asset looks damaged, run "
            "`python -m nlptransfer.assets fetch vader --force`"
        ) from None
    rows = []
    for lineno, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            score = float(parts[1])
            if len(parts) != 3 or not math.isfinite(score):
                raise ValueError
        except (ValueError, IndexError):
            raise DataError(
                f"{path}:{lineno} is not `id<TAB>score<TAB>text`; the asset looks damaged, run "
                "`python -m nlptransfer.assets fetch vader --force`"
            ) from None
        rows.append({"id": parts[0].strip(), "text": parts[2].strip(), "score": score})
    return rows


def load_vader(filename: str, binary: bool) -> Dataset:
    """One VADER gold-standard file as a Dataset (id, text, score, label)."""
    from nlptransfer.assets import fetch

    rows = read_vader(fetch("vader") / filename)
    names = LABELS_2 if binary else LABELS_3
    cols: dict[str, list] = {"id": [], "text": [], "score": [], "label": []}
    for row in rows:
        label = vader_label(row["score"], binary)
        if label is None:
            continue
        for key in ("id", "text", "score"):
            cols[key].append(row[key])
        cols["label"].append(label)
    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "score": Value("float64"),
            "label": ClassLabel(names=names),
        }
    )
    return Dataset.from_dict(cols, features=features)


_VADER_DOMAINS = {
    "tweets": ("tweets_GroundTruth.txt", "4,200 tweets"),
    "movies": ("movieReviewSnippets_GroundTruth.txt", "10,605 movie-review snippets"),
    "amazon": ("amazonReviewSnippets_GroundTruth.txt", "3,708 Amazon product-review snippets"),
    "nyt": ("nytEditorialSnippets_GroundTruth.txt", "5,190 NYT editorial snippets"),
}


def _pubmed_pubtype() -> Dataset:
    from nlptransfer.data.pubmed import load_pubtype

    return load_pubtype()


def _pubmed_mesh(k: int = 10) -> Dataset:
    from nlptransfer.data.pubmed import load_mesh

    return load_mesh(k)


def _pubmed_abstracts(unindexed_only: bool) -> Dataset:
    from nlptransfer.data.pubmed import load_abstracts

    return load_abstracts(unindexed_only)


EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {}
for _domain, (_file, _desc) in _VADER_DOMAINS.items():
    EMBEDDED_DATASETS[f"vader-{_domain}"] = EmbeddedDataset(
        partial(load_vader, _file, False),
        f"VADER gold standard, {_desc}; negative/neutral/positive",
        VADER_PROTOCOL,
    )
    EMBEDDED_DATASETS[f"vader-{_domain}-binary"] = EmbeddedDataset(
        partial(load_vader, _file, True),
        f"VADER gold standard, {_desc}, neutral band dropped; negative/positive",
        VADER_PROTOCOL,
    )
EMBEDDED_DATASETS["pubmed-pubtype"] = EmbeddedDataset(
    _pubmed_pubtype,
    "PubMed English abstracts, publication type: review/case_report/clinical_trial/other_research",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-mesh"] = EmbeddedDataset(
    _pubmed_mesh,
    "PubMed English abstracts, multi-label: the 10 most frequent MeSH major topics",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-abstracts"] = EmbeddedDataset(
    partial(_pubmed_abstracts, False),
    "PubMed English abstracts (30,456), unlabelled: a biomedical corpus for DAPT / vocabulary mining",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-abstracts-unindexed"] = EmbeddedDataset(
    partial(_pubmed_abstracts, True),
    "PubMed English abstracts not MEDLINE-indexed, unlabelled: none of pubmed-pubtype's texts",
    PUBMED_PROTOCOL,
)
_MESH_K = re.compile(r"pubmed-mesh-(.*)", flags=re.IGNORECASE)


#: Embedded parallel (translation) data: `bible-<src>-<tgt>`, loaded by `nlptransfer.data.bible.load_parallel`
#: (whole held-out books as splits; not a classification dataset, so not in EMBEDDED_DATASETS).
TRANSLATION_DATASETS = {
    "bible-<src>-<tgt>": "aligned Bible verses, public-domain translations (nlptransfer.data.bible)"
}


def embedded_translation_dataset(name: str):
    """`bible-<src>-<tgt>` as train/validation/test with source/target columns (see nlptransfer.data.bible)."""
    from nlptransfer.data.bible import load_bible

    return load_bible(name)


def embedded_dataset(name: str) -> EmbeddedDataset | None:
    """The embedded dataset called `name` (`pubmed-mesh-<K>` for any K >= 2), None if not embedded."""
    if name in EMBEDDED_DATASETS:
        return EMBEDDED_DATASETS[name]
    match = _MESH_K.fullmatch(name)
    if not match:
        return None
    k = match.group(1)
    if not (k.isascii() and k.isdigit()) or int(k) < 2:
        raise DataError(
            f"{name!r}: K in pubmed-mesh-<K> must be a whole number >= 2, got {k!r}; use e.g. pubmed-mesh-10"
        )
    return EmbeddedDataset(
        partial(_pubmed_mesh, int(k)),
        f"PubMed English abstracts, multi-label: the {int(k)} most frequent MeSH major topics",
        PUBMED_PROTOCOL,
    )


def _embedded_names() -> str:
    return ", ".join([*EMBEDDED_DATASETS, "pubmed-mesh-<K>"])


def load_embedded(name: str) -> Dataset:
    """The whole corpus of an embedded dataset (one split; `load_source` carves train/val/test)."""
    spec = embedded_dataset(name)
    if spec is None:
        raise _unknown_source(name, "no such embedded dataset")
    return spec.loader()


# ----------------------------------------------------------------------------------------------
# reading local files


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Raise DataError naming the byte offset of the first invalid UTF-8 sequence in `path`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            final = not chunk
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as err:
                at = offset - pending + err.start
                raise DataError(
                    f"{path} is not valid UTF-8 (byte 0x{err.object[err.start]:02x} at offset {at}); "
                    "re-save the file as UTF-8"
                ) from None
            if final:
                return
            offset += len(chunk)


def _read_file(path: Path) -> Dataset:
    ext = path.suffix.lower()
    builder = EXTENSIONS.get(ext)
    if builder is None:
        raise DataError(
            f"{path} has unsupported extension {ext or '(none)'!r}; convert it to one of {_EXT_LIST}"
        )
    if builder != "parquet":
        check_utf8(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; add rows (with a header line for .csv/.tsv)")
    kwargs = {"delimiter": "\t"} if ext == ".tsv" else {}
    try:
        ds = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train", **kwargs)
    except Exception as err:  # pandas / pyarrow / json parse errors: one line, no traceback
        reason = _first_line(err)
        if "corresponds to no data" in reason:
            raise DataError(f"{path} has no rows; add examples or remove the empty file") from None
        raise DataError(f"could not read {path} as {ext}: {reason}; check that it is valid {ext}") from None
    if builder == "text":
        ds = ds.filter(lambda row: bool(row["text"].strip()))
    return ds


def _read_files(paths: list[Path]) -> Dataset:
    parts = [_read_file(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    try:
        return datasets.concatenate_datasets(parts)
    except Exception as err:
        raise DataError(
            f"files {', '.join(p.name for p in paths)} have different columns or types ({_first_line(err)}); "
            "give them the same columns"
        ) from None


def _split_of(path: Path) -> str | None:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for alias, split in SPLIT_ALIASES.items():
        if re.fullmatch(rf"{alias}([-._ 0-9].*)?", stem, flags=re.IGNORECASE):
            return split
    return None


def _read_folder(folder: Path) -> tuple[DatasetDict, set[str]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    supported = [p for p in files if p.suffix.lower() in EXTENSIONS]
    if not supported:
        found = ", ".join(p.name for p in files[:10]) or "nothing"
        raise DataError(
            f"folder {folder} has no {_EXT_LIST} files (found: {found}); add train/validation/test files"
        )
    by_split: dict[str, list[Path]] = {}
    for p in supported:
        split = _split_of(p)
        if split:
            by_split.setdefault(split, []).append(p)
    if by_split:
        if "train" not in by_split:
            raise DataError(
                f"folder {folder} has {', '.join(sorted(by_split))} files but no train.* file; "
                "add train.<ext> (validation/test alone cannot be trained on)"
            )
        used = {p.suffix.lower() for paths in by_split.values() for p in paths}
        return DatasetDict({split: _read_files(paths) for split, paths in by_split.items()}), used
    types = sorted({p.suffix.lower() for p in supported})
    if len(types) > 1:
        raise DataError(
            f"folder {folder} mixes {', '.join(types)} files and none is named train.*/test.*; "
            "name them train.<ext>, validation.<ext>, test.<ext> or keep one file type"
        )
    return DatasetDict({"train": _read_files(supported)}), set(types)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _looks_like_path(source: str) -> bool:
    if source.startswith(("/", "./", "../", "~", "\\")) or "\\" in source:
        return True
    if any(source.lower().endswith(ext) for ext in EXTENSIONS):
        return True
    return source.count("/") >= 2


def _unknown_source(source: str, why: str) -> DataError:
    names = _embedded_names()
    close = difflib.get_close_matches(source, list(EMBEDDED_DATASETS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(
        f"unknown dataset {source!r}{hint}: {why}; use an embedded name ({names}), "
        f"a local file path ({_EXT_LIST}) or folder, or a Hub id when online"
    )


def _read_hub(source: str) -> DatasetDict:
    try:
        loaded = datasets.load_dataset(source)
    except Exception as err:
        name = type(err).__name__
        text = str(err)
        offline = isinstance(err, ConnectionError) or any(
            word in text
            for word in (
                "Couldn't reach",
                "OfflineModeIsEnabled",
                "ConnectionError",
                "Name or service not known",
            )
        )
        if offline:
            raise _unknown_source(
                source,
                "not a local file or folder, and the Hugging Face Hub is unreachable "
                "(offline; HF_HUB_OFFLINE=1 skips the retries)",
            ) from None
        if isinstance(err, FileNotFoundError) or "DatasetNotFound" in name:
            raise _unknown_source(source, "not a local file or folder, nor a dataset on the Hub") from None
        raise DataError(
            f"could not load Hub dataset {source!r}: {_first_line(err)}; check the id or download it and "
            "pass a local file"
        ) from None
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


def _read_source(source: str) -> tuple[DatasetDict, str, set[str]]:
    """Raw splits, a short description of where they came from, and the file suffixes read
    (empty for embedded and Hub datasets)."""
    spec = embedded_dataset(source)
    if spec is not None:
        return DatasetDict({"train": spec.loader()}), f"embedded dataset {source}", set()
    path = Path(source).expanduser()
    if path.is_file():
        return DatasetDict({"train": _read_file(path)}), str(path), {path.suffix.lower()}
    if path.is_dir():
        raw, suffixes = _read_folder(path)
        return raw, str(path), suffixes
    if _looks_like_path(source):
        raise DataError(f"file or folder {source!r} does not exist; check the path (cwd: {Path.cwd()})")
    if source.lower().startswith(("vader", "pubmed")):
        raise _unknown_source(source, "no such embedded dataset")
    if source.lower().startswith("bible-"):
        raise DataError(
            f"{source!r} is parallel (translation) data, not a classification dataset; use it with "
            "python -m nlptransfer.recipes.translation_pair --child_dataset " + source
        )
    raw = _read_hub(source)
    splits: dict[str, Dataset] = {}
    for split, ds in raw.items():
        canonical = SPLIT_ALIASES.get(split.lower())
        if canonical and canonical not in splits:
            splits[canonical] = ds
        else:
            logger.info("ignoring split %r of %s", split, source)
    if "train" not in splits:
        raise DataError(
            f"Hub dataset {source!r} has no train split (splits: {', '.join(raw)}); pass local files"
        )
    return DatasetDict(splits), f"Hub dataset {source}", set()


# ----------------------------------------------------------------------------------------------
# columns and labels


def _rename(ds: Dataset, column: str, target: str, flag: str, split: str, where: str) -> Dataset:
    if column not in ds.column_names:
        found = ", ".join(ds.column_names) or "none"
        close = difflib.get_close_matches(column, ds.column_names, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"{where} ({split}) has no column {column!r}; columns found: {found}; "
            f"set {flag} to the right one{hint}"
        )
    if column == target:
        return ds
    if target in ds.column_names:
        logger.info("%s: renaming existing column %r to %r", where, target, f"{target}_orig")
        ds = ds.rename_column(target, f"{target}_orig")
    return ds.rename_column(column, target)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _label_key(value: object) -> str:
    """The class name of a raw label value: ints (and integral floats, bools) as decimal strings."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _empty_text_rows(ds: Dataset, split: str, where: str) -> list[int]:
    """Check the text column and return the rows whose text is missing, empty or whitespace-only."""
    if len(ds) == 0:
        raise DataError(f"{where} ({split}) has no rows; add examples or remove the empty file")
    feature = ds.features["text"]
    if not isinstance(feature, Value) or feature.dtype not in ("string", "large_string", "null"):
        raise DataError(
            f"{where} ({split}): the text column holds {feature}, not strings; "
            "set --text_column to the column with the texts"
        )
    empty = [i for i, t in enumerate(ds["text"]) if not isinstance(t, str) or not t.strip()]
    if len(empty) == len(ds):
        raise DataError(
            f"{where} ({split}): all {len(ds)} texts are empty or whitespace-only; "
            "set --text_column to the column with the texts or add texts"
        )
    return empty


def _drop_rows(ds: Dataset, rows: list[int], split: str, where: str) -> Dataset:
    if not rows:
        return ds
    logger.warning(
        "%s (%s): dropped %d of %d rows whose text is empty or whitespace-only (first at row %d)",
        where,
        split,
        len(rows),
        len(ds),
        rows[0],
    )
    drop = set(rows)
    return ds.select([i for i in range(len(ds)) if i not in drop])


def _check_labels(ds: Dataset, split: str, where: str, skip: list[int]) -> None:
    """Single-label checks: no missing labels (rows in `skip` are dropped anyway), class-like values."""
    feature = ds.features["label"]
    labels = list(ds["label"])
    skipped = set(skip)
    if isinstance(feature, ClassLabel):
        missing = [i for i, v in enumerate(labels) if (v is None or v < 0) and i not in skipped]
    else:
        missing = [i for i, v in enumerate(labels) if _is_missing(v) and i not in skipped]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no label (first at row {missing[0]}); "
            "fill or drop them, or set --label_column none for unlabelled text"
        )
    if isinstance(feature, ClassLabel):
        return
    if _JSON is not None and isinstance(feature, _JSON):  # datasets' type for a column of mixed types
        kinds: dict[str, int] = {}
        for i, v in enumerate(labels):
            if not _is_missing(v):
                kinds.setdefault(_kind(v), i)
        shown = ", ".join(f"{kind} (row {row}: {labels[row]!r})" for kind, row in kinds.items())
        raise DataError(
            f"{where} ({split}): the label column mixes value types: {shown}; "
            "use one type for every row (all class names or all integer ids)"
        )
    bad = [v for v in labels if isinstance(v, float) and not math.isnan(v) and not v.is_integer()]
    if bad or not (isinstance(feature, Value) and _label_type_ok(feature.dtype)):
        example = bad[0] if bad else feature
        raise DataError(
            f"{where} ({split}): label column holds {example!r}, not class names or integer ids; "
            "use string or integer labels (regression targets are not classes)"
        )


def _label_type_ok(dtype: str) -> bool:
    return dtype in ("string", "large_string", "bool") or dtype.startswith(("int", "uint", "float"))


def _class_names(ds: Dataset) -> list[str]:
    """Sorted class names of a raw label column: strings alphabetically, numbers numerically."""
    feature = ds.features["label"]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = {(_label_key(v), v) for v in ds.unique("label")}
    if feature.dtype in ("string", "large_string"):
        return sorted(key for key, _ in values)
    return [key for key, _ in sorted(values, key=lambda kv: float(kv[1]))]


def _present(ds: Dataset) -> list[str]:
    """Class names that actually occur in `ds`."""
    feature = ds.features["label"]
    if isinstance(feature, ClassLabel):
        return [feature.names[i] for i in sorted(ds.unique("label"))]
    return sorted({_label_key(v) for v in ds.unique("label")})


def _encode(ds: Dataset, names: list[str]) -> Dataset:
    """Map the label column (raw values or another ClassLabel) onto `ClassLabel(names)`."""
    feature = ds.features["label"]
    if isinstance(feature, ClassLabel) and list(feature.names) == names:
        return ds
    index = {name: i for i, name in enumerate(names)}
    old = feature.names if isinstance(feature, ClassLabel) else None
    features = ds.features.copy()
    features["label"] = ClassLabel(names=names)

    def encode(batch: dict) -> dict:
        keys = [old[v] if old else _label_key(v) for v in batch["label"]]
        return {"label": [index[k] for k in keys]}

    return ds.map(encode, batched=True, features=features, desc="encoding labels")


def _names_for(train: Dataset, label_names: Sequence[str] | None, where: str) -> list[str]:
    if label_names is None:
        return _class_names(train)
    names = [str(n) for n in label_names]
    if len(set(names)) != len(names):
        raise DataError(f"label_names {names} has duplicates; list each class once")
    present = _present(train)
    unknown = [p for p in present if p not in names]
    if unknown:
        feature = train.features["label"]
        ints = isinstance(feature, Value) and feature.dtype.startswith(("int", "uint"))
        if ints and all(p.isdigit() and int(p) < len(names) for p in present):
            return names  # integer ids naming the given classes, in order
        raise DataError(
            f"{where}: labels {unknown} are not in label_names {names}; add them to label_names or fix the data"
        )
    return names


def _ids_to_names(ds: Dataset, names: list[str]) -> Dataset:
    """Integer ids 0..n-1 used as positions into `names`."""
    features = ds.features.copy()
    features["label"] = ClassLabel(names=names)
    return ds.cast(features)


def check_eval_labels(train: Dataset, other: Dataset, name: str) -> Dataset:
    """Check that `other` (a validation/test/cross-domain set) only uses labels seen in `train`.

    Both need a `label` column (or, multi-label, a `labels` List(ClassLabel) column); with
    ClassLabels the names of `other` must be among `train`'s, and `other` is returned re-encoded
    to `train`'s label order. Raises DataError otherwise.
    """
    if is_multilabel(train) or is_multilabel(other):
        return _check_eval_multilabel(train, other, name)
    for ds, what in ((train, "train"), (other, name)):
        if "label" not in ds.column_names:
            raise DataError(f"{what} has no 'label' column; set --label_column for it")
    train_feat, other_feat = train.features["label"], other.features["label"]
    seen = set(_present(train))
    unseen = sorted(set(_present(other)) - seen)
    if unseen:
        raise DataError(
            f"{name} has labels never seen in train: {unseen} (train has {sorted(seen)}); "
            "fix the data or merge those classes"
        )
    if isinstance(train_feat, ClassLabel):
        if isinstance(other_feat, ClassLabel):
            extra = [n for n in other_feat.names if n not in train_feat.names]
            if extra:
                raise DataError(
                    f"{name} label names {other_feat.names} differ from train's {train_feat.names} "
                    f"({extra} unknown); use the same label names (label_names=...)"
                )
        other = _encode(other, list(train_feat.names))
    return other


# ----------------------------------------------------------------------------------------------
# multi-label targets


def is_multilabel(dataset: Dataset | DatasetDict) -> bool:
    """True when the target is a `labels` column of class-id lists (`List(ClassLabel)`)."""
    features = _features_of(dataset)
    if isinstance(features.get("label"), ClassLabel):
        return False
    feature = features.get("labels")
    return isinstance(feature, _LIST_FEATURES) and isinstance(feature.feature, ClassLabel)


def label_names(dataset: Dataset | DatasetDict) -> list[str]:
    """Class names of a single-label (`label`) or multi-label (`labels`) dataset from `load_source`."""
    features = _features_of(dataset)
    if is_multilabel(dataset):
        return list(features["labels"].feature.names)
    if isinstance(features.get("label"), ClassLabel):
        return list(features["label"].names)
    raise DataError(
        f"dataset has no ClassLabel 'label' or List(ClassLabel) 'labels' column (columns: "
        f"{', '.join(features) or 'none'}); load it with load_source or cast its label column"
    )


def _features_of(dataset: Dataset | DatasetDict) -> Features:
    if isinstance(dataset, DatasetDict):
        if not dataset:
            raise DataError("empty DatasetDict has no labels; load a dataset with load_source")
        dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    return dataset.features


def _kind(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _looks_multilabel(splits: dict[str, Dataset], delimited: bool) -> bool:
    """Whether the `label` column of any split holds lists (or `;`-lists in .csv/.tsv)."""
    for ds in splits.values():
        feature = ds.features["label"]
        if isinstance(feature, _LIST_FEATURES):
            return True
        if _JSON is not None and isinstance(feature, _JSON):
            if any(isinstance(v, list) for v in ds["label"]):
                return True
        elif delimited and isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            if any(isinstance(v, str) and MULTI_SEP in v for v in ds["label"]):
                return True
    return False


def _key_lists(
    ds: Dataset, split: str, where: str, delimited: bool, skip: list[int]
) -> tuple[list[list[str]], dict[str, tuple[int, object]]]:
    """Each row's classes as names (ints as decimal strings) and the kinds of names seen
    (kind -> (first row, value)). Rows in `skip` (dropped for an empty text) may lack labels."""
    feature = ds.features["label"]
    inner = feature.feature if isinstance(feature, _LIST_FEATURES) else None
    given = list(inner.names) if isinstance(inner, ClassLabel) else None
    values = list(ds["label"])
    skipped = set(skip)
    missing = [i for i, v in enumerate(values) if _is_missing(v) and i not in skipped]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no labels (first at row {missing[0]}); give each "
            f"row a list of classes ([] or '{MULTI_SEP}' for none) or drop those rows"
        )
    rows: list[list[str]] = []
    kinds: dict[str, tuple[int, object]] = {}
    for i, value in enumerate(values):
        if _is_missing(value):
            rows.append([])
            continue
        if isinstance(value, str) and delimited:
            items: list = value.split(MULTI_SEP)
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise DataError(
                f"{where} ({split}): the label column mixes lists and single values (row {i}: {value!r}); "
                f'make every label a list such as ["a", "b"] (in .csv/.tsv: "a{MULTI_SEP}b")'
            )
        keys = []
        for item in items:
            if given is not None:
                keys.append(given[item])
            elif isinstance(item, str):
                if item.strip():
                    kinds.setdefault("string", (i, item))
                    keys.append(item.strip())
            elif isinstance(item, (int, float)) and not isinstance(item, bool) and float(item).is_integer():
                kinds.setdefault("number", (i, item))
                keys.append(str(int(item)))
            else:
                raise DataError(
                    f"{where} ({split}): row {i} has label {item!r} in its list, not a class name or "
                    "integer id; use lists of strings or of integer ids"
                )
        rows.append(list(dict.fromkeys(keys)))
    return rows, kinds


def _sorted_names(keys: set[str], numeric: bool) -> list[str]:
    return sorted(keys, key=int) if numeric else sorted(keys)


def _encode_multilabel(
    splits: dict[str, Dataset],
    label_names: Sequence[str] | None,
    where: str,
    delimited: bool,
    skips: dict[str, list[int]],
) -> tuple[dict[str, Dataset], list[str]]:
    """Turn the list-valued `label` column of every split into `labels` (List(ClassLabel))."""
    keyed = {split: _key_lists(ds, split, where, delimited, skips[split]) for split, ds in splits.items()}
    kinds: dict[str, tuple[str, int, object]] = {}
    for split, (_, split_kinds) in keyed.items():
        for kind, (row, value) in split_kinds.items():
            kinds.setdefault(kind, (split, row, value))
    if len(kinds) > 1:
        shown = " and ".join(
            f"{kind}s ({split} row {row}: {value!r})" for kind, (split, row, value) in kinds.items()
        )
        raise DataError(
            f"{where}: the label lists mix {shown}; use one type: all class names or all integer ids"
        )
    numeric = "number" in kinds
    train_keys = {k for row in keyed["train"][0] for k in row}
    feature = splits["train"].features["label"]
    if label_names is not None:
        names = [str(n) for n in label_names]
        if len(set(names)) != len(names):
            raise DataError(f"label_names {names} has duplicates; list each class once")
        unknown = sorted(train_keys - set(names))
        if unknown and numeric and all(int(k) < len(names) for k in train_keys):
            keyed = {
                s: ([[names[int(k)] for k in row] for row in rows], kd) for s, (rows, kd) in keyed.items()
            }
        elif unknown:
            raise DataError(
                f"{where}: labels {unknown} are not in label_names {names}; add them to label_names or fix the data"
            )
    elif isinstance(feature, _LIST_FEATURES) and isinstance(feature.feature, ClassLabel):
        names = list(feature.feature.names)
    else:
        names = _sorted_names(train_keys, numeric)
    index = {name: i for i, name in enumerate(names)}
    present = {k for row in keyed["train"][0] for k in row}
    result = {}
    for split, ds in splits.items():
        rows = keyed[split][0]
        if split != "train":
            unseen = sorted({k for row in rows for k in row} - present, key=str)
            if unseen:
                raise DataError(
                    f"{where}: {split} has labels never seen in train: {unseen}; fix the data or merge those classes"
                )
        ids = [[index[k] for k in row if k in index] for row in rows]
        result[split] = _with_labels(ds.remove_columns("label"), ids, names, where)
    return result, names


def _with_labels(ds: Dataset, ids: list[list[int]], names: list[str], where: str) -> Dataset:
    if "labels" in ds.column_names:
        logger.info("%s: renaming existing column 'labels' to 'labels_orig'", where)
        ds = ds.rename_column("labels", "labels_orig")
    ids = [sorted(set(row)) for row in ids]
    return ds.add_column("labels", ids, feature=datasets.List(ClassLabel(names=names)))


def _multi_hot_columns(label_column: str) -> list[str] | None:
    """The 0/1 columns of `label_column="a,b,c"`; None for a single column name."""
    if "," not in label_column:
        return None
    columns = [c.strip() for c in label_column.split(",")]
    if len(columns) < 2 or not all(columns) or len(set(columns)) != len(columns):
        raise DataError(
            f"label_column {label_column!r} must name two or more distinct 0/1 columns separated by commas "
            "(e.g. 'sports,politics,tech'), or one label column"
        )
    return columns


def _multi_hot(ds: Dataset, columns: list[str], split: str, where: str, skip: list[int]) -> Dataset:
    """Replace the 0/1 `columns` (one per class) by `labels`, the ids of the columns set to 1."""
    missing_cols = [c for c in columns if c not in ds.column_names]
    if missing_cols:
        found = ", ".join(ds.column_names) or "none"
        close = difflib.get_close_matches(missing_cols[0], ds.column_names, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(
            f"{where} ({split}) has no column {missing_cols[0]!r} of --label_column; columns found: {found}; "
            f"list the 0/1 class columns separated by commas{hint}"
        )
    skipped = set(skip)
    ids: list[list[int]] = [[] for _ in range(len(ds))]
    for j, column in enumerate(columns):
        for i, value in enumerate(ds[column]):
            if _is_missing(value):
                if i in skipped:
                    continue
                raise DataError(
                    f"{where} ({split}): column {column!r} has no value at row {i}; fill it with 0 or 1"
                )
            if isinstance(value, str) or value not in (0, 1):
                raise DataError(
                    f"{where} ({split}): column {column!r} holds {value!r} at row {i}, not 0/1; with several "
                    "label columns each one is a class and must hold 0 or 1"
                )
            if value == 1:
                ids[i].append(j)
    return _with_labels(ds.remove_columns(columns), ids, columns, where)


def _present_multi(ds: Dataset) -> list[str]:
    """Class names that occur in the `labels` lists of `ds`."""
    names = ds.features["labels"].feature.names
    return [names[i] for i in sorted({i for row in ds["labels"] for i in row})]


def _check_eval_multilabel(train: Dataset, other: Dataset, name: str) -> Dataset:
    for ds, what in ((train, "train"), (other, name)):
        if not is_multilabel(ds):
            raise DataError(
                f"{what} has no multi-label 'labels' column (List(ClassLabel)) but the other set has one; "
                "compare datasets with the same kind of target"
            )
    names, other_names = label_names(train), label_names(other)
    seen = set(_present_multi(train))
    unseen = sorted(set(_present_multi(other)) - seen)
    if unseen:
        raise DataError(
            f"{name} has labels never seen in train: {unseen} (train has {sorted(seen)}); "
            "fix the data or merge those classes"
        )
    if other_names == names:
        return other
    index = {n: i for i, n in enumerate(names)}
    ids = [[index[other_names[j]] for j in row] for row in other["labels"]]
    return _with_labels(other.remove_columns("labels"), ids, names, name)


def _check_classes(train: Dataset, multilabel: bool, where: str) -> None:
    """A classifier needs at least two classes in its training split."""
    present = _present_multi(train) if multilabel else _present(train)
    if len(present) < 2:
        only = f" ({present[0]!r})" if present else ""
        raise DataError(
            f"{where}: the label column has {len(present)} class{only} in train; a classifier needs at least "
            "2 classes; check --label_column or add examples of other classes"
        )


# ----------------------------------------------------------------------------------------------
# splits


def _carve(
    ds: Dataset, fraction: float, seed: int, stratify: bool, what: str, where: str
) -> tuple[Dataset, Dataset]:
    try:
        if stratify:
            try:
                parts = ds.train_test_split(test_size=fraction, seed=seed, stratify_by_column="label")
            except ValueError as err:
                logger.warning(
                    "%s: cannot stratify the %s split (%s); using a plain random split",
                    where,
                    what,
                    _first_line(err),
                )
                parts = ds.train_test_split(test_size=fraction, seed=seed)
        else:
            parts = ds.train_test_split(test_size=fraction, seed=seed)
    except ValueError as err:
        raise DataError(
            f"{where} has too few rows ({len(ds)}) to carve a {what} split of {fraction:g} "
            f"({_first_line(err)}); add data or provide a {what} file"
        ) from None
    return parts["train"], parts["test"]


def _check_fraction(value: float, name: str) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}; pass e.g. 0.1")


def load_source(
    source: str,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
    seed: int = 42,
    label_names: list[str] | None = None,
) -> DatasetDict:
    """Load `source` (embedded name, local file/folder, or Hub id) as train/validation/test.

    See the module docstring for the sources, the split protocol and the label encoding: labels
    become a `ClassLabel` (strings sorted, integers in numeric order named by their decimal
    string) unless already one; `label_names` fixes the order (integer labels 0..n-1 that are not
    among the names are read as positions in it). List-valued labels (or `;`-lists in csv/tsv) and
    `label_column="a,b,c"` (0/1 columns) give a multi-label `labels` column instead.
    `label_column=None` (or "none") loads unlabelled text. `validation_fraction`/`test_fraction`
    default to the source's split protocol (PubMed 0.1/0.2, everything else 0.1/0.5).
    """
    source = str(source)
    spec = embedded_dataset(source)
    protocol = spec.split_protocol if spec is not None else DEFAULT_PROTOCOL
    test_fraction = protocol.test_fraction if test_fraction is None else test_fraction
    if validation_fraction is None:
        validation_fraction = protocol.validation_fraction
    _check_fraction(validation_fraction, "validation_fraction")
    _check_fraction(test_fraction, "test_fraction")
    if isinstance(label_column, str) and label_column.strip().lower() in ("", "none"):
        label_column = None  # `--label_column none` on a command line
    raw, where, kinds = _read_source(source)
    labelled = label_column is not None
    if labelled and kinds == {".txt"}:
        raise DataError(
            f"{where} is plain text (one text per line) and has no labels; use .csv/.tsv/.jsonl with a "
            "label column, or set --label_column none for unlabelled text"
        )
    hot_columns = _multi_hot_columns(label_column) if labelled else None
    if hot_columns and label_names is not None:
        raise DataError(
            "label_names cannot rename 0/1 label columns (the column names are the class names); "
            "rename the columns or drop label_names"
        )
    train_columns = raw["train"].column_names
    if (
        label_column == "label"
        and "label" not in train_columns
        and isinstance(raw["train"].features.get("labels"), _LIST_FEATURES)
    ):
        label_column = "labels"  # a multi-label set whose list column is already called `labels`

    splits: dict[str, Dataset] = {}
    skips: dict[str, list[int]] = {}
    for split, ds in raw.items():
        ds = _rename(ds, text_column, "text", "--text_column", split, where)
        if labelled and not hot_columns:
            ds = _rename(ds, label_column, "label", "--label_column", split, where)
        splits[split] = ds
        skips[split] = _empty_text_rows(ds, split, where)

    multilabel = bool(hot_columns) or (labelled and _looks_multilabel(splits, bool(kinds & DELIMITED)))
    if hot_columns:
        splits = {s: _multi_hot(ds, hot_columns, s, where, skips[s]) for s, ds in splits.items()}
        present = set(_present_multi(splits["train"]))
        for split, ds in splits.items():
            unseen = sorted(set(_present_multi(ds)) - present)
            if unseen:
                raise DataError(
                    f"{where}: {split} has labels never seen in train: {unseen}; fix the data or merge those classes"
                )
        never = [c for c in hot_columns if c not in present]
        if never:
            logger.warning("%s: label columns %s are never 1 in train; they cannot be learned", where, never)
    elif multilabel:
        splits, _ = _encode_multilabel(splits, label_names, where, bool(kinds & DELIMITED), skips)
    elif labelled:
        for split, ds in splits.items():
            _check_labels(ds, split, where, skips[split])

    splits = {split: _drop_rows(ds, skips[split], split, where) for split, ds in splits.items()}

    if labelled and not multilabel:
        train = splits["train"]
        names = _names_for(train, label_names, where)
        use_ids = label_names is not None and any(p not in names for p in _present(train))
        for split in splits:
            if use_ids:
                bad = [p for p in _present(splits[split]) if not (p.isdigit() and int(p) < len(names))]
                if bad:
                    raise DataError(
                        f"{where}: {split} has label ids {bad} outside 0..{len(names) - 1} of label_names "
                        f"{names}; fix the data or label_names"
                    )
            elif split != "train":
                unseen = sorted(set(_present(splits[split])) - set(_present(train)))
                if unseen:
                    raise DataError(
                        f"{where}: {split} has labels never seen in train: {unseen}; "
                        "fix the data or merge those classes"
                    )
            splits[split] = _ids_to_names(splits[split], names) if use_ids else _encode(splits[split], names)

    stratify = labelled and not multilabel
    train = splits.pop("train")
    if "test" not in splits:
        train, splits["test"] = _carve(train, test_fraction, seed, stratify, "test", where)
    if "validation" not in splits:
        train, splits["validation"] = _carve(train, validation_fraction, seed, stratify, "validation", where)
    result = DatasetDict({"train": train, "validation": splits["validation"], "test": splits["test"]})
    for split, ds in result.items():
        if len(ds) == 0:
            raise DataError(f"{where}: the {split} split is empty; add data or provide a {split} file")
    if labelled:
        _check_classes(result["train"], multilabel, where)
        for split in ("validation", "test"):
            result[split] = check_eval_labels(result["train"], result[split], f"{where} ({split})")
    logger.info("loaded %s: %s", where, {k: len(v) for k, v in result.items()})
    return result
