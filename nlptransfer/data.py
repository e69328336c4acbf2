"""Load a text-classification (or unlabelled text) dataset from one string, with clear errors.

`load_source(source)` accepts, in this order:

1. an embedded dataset name (`EMBEDDED_DATASETS`: the VADER gold standards, fetched offline);
2. an existing local file (`.csv`, `.tsv`, `.json`, `.jsonl`, `.parquet`, `.txt`: one text per line,
   no label) or folder (`train.*`, `validation.*`/`valid.*`/`dev.*`, `test.*` become those splits,
   otherwise all files of one supported type form the train split);
3. anything else is a Hub id for `datasets.load_dataset` (fails clearly when the Hub is unreachable).

It returns a `DatasetDict` with `train`, `validation` and `test`, the text column renamed to `text`
and the label column to `label` (a `ClassLabel`; other columns are kept).

Split protocol. Missing splits are carved from train with `Dataset.train_test_split`, seeded
(`seed`, default 42) and stratified by label when possible (plain random otherwise): first `test`
takes `test_fraction` of train (default 0.5), then `validation` takes `validation_fraction` of what
is left (default 0.1). The embedded VADER sets come as one corpus, so they follow the paper's
protocol (Hutto & Gilbert, ICWSM 2014): test is a random half of the corpus (with an odd size the
test half gets the extra row), validation is 10% of the training half, train is the rest.

VADER labels. Each line of `*_GroundTruth.txt` is `id<TAB>mean_rating<TAB>text` (CRLF; the mean
rating of 20 raters on -4..+4, kept as `score`). The paper normalises compound = score / 4 and
calls a text neutral when it lies within +-0.05, *inclusive*: negative when compound < -0.05,
neutral when -0.05 <= compound <= 0.05, positive when compound > 0.05 (a score of exactly +-0.2 is
neutral). This reproduces the published 3-class counts (neg/neu/pos): tweets 1195/359/2646,
movies 5245/203/5157, amazon 1336/467/1905, nyt 2260/1289/1641; the exclusive band does not.
The `-binary` variants drop the neutral band. Texts are kept as published (HTML entities such as
`&amp;` included), only stripped of surrounding whitespace.

Every problem a user can cause raises `DataError` with one line naming the problem and the fix.
User files are only read, never modified.
"""

from __future__ import annotations

import codecs
import difflib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class EmbeddedDataset:
    asset: str
    filename: str
    binary: bool
    description: str


_VADER_DOMAINS = {
    "tweets": ("tweets_GroundTruth.txt", "4,200 tweets"),
    "movies": ("movieReviewSnippets_GroundTruth.txt", "10,605 movie-review snippets"),
    "amazon": ("amazonReviewSnippets_GroundTruth.txt", "3,708 Amazon product-review snippets"),
    "nyt": ("nytEditorialSnippets_GroundTruth.txt", "5,190 NYT editorial snippets"),
}

EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {}
for _domain, (_file, _desc) in _VADER_DOMAINS.items():
    EMBEDDED_DATASETS[f"vader-{_domain}"] = EmbeddedDataset(
        "vader", _file, False, f"VADER gold standard, {_desc}; negative/neutral/positive"
    )
    EMBEDDED_DATASETS[f"vader-{_domain}-binary"] = EmbeddedDataset(
        "vader", _file, True, f"VADER gold standard, {_desc}, neutral band dropped; negative/positive"
    )


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


def load_embedded(name: str) -> Dataset:
    """The whole corpus of an embedded dataset (one split; `load_source` carves train/val/test)."""
    from nlptransfer.assets import fetch

    spec = EMBEDDED_DATASETS[name]
    rows = read_vader(fetch(spec.asset) / spec.filename)
    names = LABELS_2 if spec.binary else LABELS_3
    cols: dict[str, list] = {"id": [], "text": [], "score": [], "label": []}
    for row in rows:
        label = vader_label(row["score"], spec.binary)
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
    names = ", ".join(EMBEDDED_DATASETS)
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


def _read_source(source: str) -> tuple[DatasetDict, str, bool]:
    """Raw splits, a short description of where they came from, and whether it is plain .txt."""
    if source in EMBEDDED_DATASETS:
        return DatasetDict({"train": load_embedded(source)}), f"embedded dataset {source}", False
    path = Path(source).expanduser()
    if path.is_file():
        return DatasetDict({"train": _read_file(path)}), str(path), path.suffix.lower() == ".txt"
    if path.is_dir():
        raw, suffixes = _read_folder(path)
        return raw, str(path), suffixes == {".txt"}
    if _looks_like_path(source):
        raise DataError(f"file or folder {source!r} does not exist; check the path (cwd: {Path.cwd()})")
    if source.lower().startswith("vader"):
        raise _unknown_source(source, "no such embedded dataset")
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
    return DatasetDict(splits), f"Hub dataset {source}", False


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


def _check_columns(ds: Dataset, split: str, where: str, labelled: bool) -> None:
    if len(ds) == 0:
        raise DataError(f"{where} ({split}) has no rows; add examples or remove the empty file")
    texts = ds["text"]
    missing = [i for i, t in enumerate(texts) if _is_missing(t)]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no text (first at row {missing[0]}); "
            "drop or fill them, or set --text_column"
        )
    if not isinstance(ds.features["text"], Value) or ds.features["text"].dtype not in (
        "string",
        "large_string",
    ):
        raise DataError(
            f"{where} ({split}): the text column holds {ds.features['text']}, not strings; "
            "set --text_column to the column with the texts"
        )
    if not labelled:
        return
    feature = ds.features["label"]
    labels = list(ds["label"])
    if isinstance(feature, ClassLabel):
        missing = [i for i, v in enumerate(labels) if v is None or v < 0]
    else:
        missing = [i for i, v in enumerate(labels) if _is_missing(v)]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no label (first at row {missing[0]}); "
            "fill or drop them, or set --label_column none for unlabelled text"
        )
    if isinstance(feature, ClassLabel):
        return
    bad = [v for v in labels if isinstance(v, float) and not v.is_integer()]
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

    Both need a `label` column; with ClassLabels the names of `other` must be among `train`'s, and
    `other` is returned re-encoded to `train`'s label order. Raises DataError otherwise.
    """
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
# splits


def _carve(
    ds: Dataset, fraction: float, seed: int, labelled: bool, what: str, where: str
) -> tuple[Dataset, Dataset]:
    try:
        if labelled:
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
    validation_fraction: float = 0.1,
    test_fraction: float = 0.5,
    seed: int = 42,
    label_names: list[str] | None = None,
) -> DatasetDict:
    """Load `source` (embedded name, local file/folder, or Hub id) as train/validation/test.

    See the module docstring for the sources, the split protocol and the label encoding: labels
    become a `ClassLabel` (strings sorted, integers in numeric order named by their decimal
    string) unless already one; `label_names` fixes the order (integer labels 0..n-1 that are not
    among the names are read as positions in it). `label_column=None` (or "none") loads unlabelled text.
    """
    _check_fraction(validation_fraction, "validation_fraction")
    _check_fraction(test_fraction, "test_fraction")
    source = str(source)
    if isinstance(label_column, str) and label_column.strip().lower() in ("", "none"):
        label_column = None  # `--label_column none` on a command line
    raw, where, plain_text = _read_source(source)
    labelled = label_column is not None
    if labelled and plain_text:
        raise DataError(
            f"{where} is plain text (one text per line) and has no labels; use .csv/.tsv/.jsonl with a "
            "label column, or set --label_column none for unlabelled text"
        )

    splits: dict[str, Dataset] = {}
    for split, ds in raw.items():
        ds = _rename(ds, text_column, "text", "--text_column", split, where)
        if labelled:
            ds = _rename(ds, label_column, "label", "--label_column", split, where)
        _check_columns(ds, split, where, labelled)
        splits[split] = ds

    if labelled:
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

    train = splits.pop("train")
    if "test" not in splits:
        train, splits["test"] = _carve(train, test_fraction, seed, labelled, "test", where)
    if "validation" not in splits:
        train, splits["validation"] = _carve(train, validation_fraction, seed, labelled, "validation", where)
    result = DatasetDict({"train": train, "validation": splits["validation"], "test": splits["test"]})
    for split, ds in result.items():
        if len(ds) == 0:
            raise DataError(f"{where}: the {split} split is empty; add data or provide a {split} file")
        if labelled and split != "train":
            result[split] = check_eval_labels(result["train"], ds, f"{where} ({split})")
    logger.info("loaded %s: %s", where, {k: len(v) for k, v in result.items()})
    return result
