"""`load_source`: a text-classification (or unlabelled text) dataset from one string, with clear errors.

`load_source(source)` accepts, in this order:

1. an embedded dataset name (`nlptransfer.data.registry`, fetched offline): the VADER gold standards
   (`vader-<domain>[-binary]`), `pubmed-pubtype`, `pubmed-mesh` and `pubmed-mesh-<K>`, and the
   unlabelled corpora `pubmed-abstracts` / `pubmed-abstracts-unindexed`;
2. an existing local file (`.csv`, `.tsv`, `.json`, `.jsonl`, `.parquet`, `.txt`: one text per line,
   no label) or folder (`nlptransfer.data.files`);
3. anything else is a Hub id for `datasets.load_dataset` (fails clearly when the Hub is unreachable).

It returns a `DatasetDict` with `train`, `validation` and `test`, the text column renamed to `text`
and, single-label, the label column to `label` (a `ClassLabel`, `nlptransfer.data.labels`), or,
multi-label, to `labels` (a list of class ids, `List(ClassLabel)`, `nlptransfer.data.multilabel`); other
columns are kept. If the default `label` column is missing but a list column `labels` exists, that one
is used. Rows whose text is empty or whitespace-only are dropped with a warning that counts them (per
split); a split left with no text fails. Missing splits are carved from train by the source's split
protocol (`nlptransfer.data.splits`; VADER: test half, PubMed and everything else: test 20%, then
validation 10% of the rest).

Every problem a user can cause raises `DataError` with one line naming the problem and the fix
(a label column with a single class, mixed label types, labels in validation/test never seen in
train, ...). User files are only read, never modified.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict, Value, concatenate_datasets

from nlptransfer.data.files import SPLIT_ALIASES, looks_like_path, read_file, read_folder
from nlptransfer.data.labels import (
    LIST_FEATURES,
    check_classes,
    check_eval_labels,
    check_labels,
    encode_labels,
    normalize_label_case,
)
from nlptransfer.data.multilabel import (
    DELIMITED,
    encode_multi_hot,
    encode_multilabel,
    looks_multilabel,
    multi_hot_columns,
)
from nlptransfer.data.registry import check_not_embedded_family, embedded_dataset, unknown_dataset
from nlptransfer.data.splits import DEFAULT_PROTOCOL, carve, check_fraction
from nlptransfer.errors import DataError, first_line
from nlptransfer.paths import expand_user

logger = logging.getLogger("nlptransfer")


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
            raise unknown_dataset(
                source,
                "not a local file or folder, and the Hugging Face Hub is unreachable "
                "(offline; HF_HUB_OFFLINE=1 skips the retries)",
            ) from None
        if isinstance(err, FileNotFoundError) or "DatasetNotFound" in name:
            raise unknown_dataset(source, "not a local file or folder, nor a dataset on the Hub") from None
        raise DataError(
            f"could not load Hub dataset {source!r}: {first_line(err)}; check the id or download it and "
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
    path = expand_user(source, what=f"dataset {source!r}")
    if path.is_file():
        return DatasetDict({"train": read_file(path)}), str(path), {path.suffix.lower()}
    if path.is_dir():
        raw, suffixes = read_folder(path)
        return raw, str(path), suffixes
    if looks_like_path(source):
        raise DataError(f"file or folder {source!r} does not exist; check the path (cwd: {Path.cwd()})")
    check_not_embedded_family(source)
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


def load_source(
    source: str,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
    seed: int = 42,
    label_names: list[str] | None = None,
    normalize_labels: bool = False,
) -> DatasetDict:
    """Load `source` (embedded name, local file/folder, or Hub id) as train/validation/test.

    See the module docstring for the sources, the split protocol and the label encoding: labels
    become a `ClassLabel` (strings sorted, integers in numeric order named by their decimal
    string) unless already one; `label_names` fixes the order (integer labels 0..n-1 that are not
    among the names are read as positions in it). List-valued labels (or `;`-lists in csv/tsv) and
    `label_column="a,b,c"` (0/1 columns) give a multi-label `labels` column instead.
    `label_column=None` (or "none") loads unlabelled text. String class labels that differ only by case
    or surrounding whitespace get a warning, or with `normalize_labels` are stripped and casefolded. `validation_fraction`/`test_fraction`
    default to the source's split protocol (PubMed 0.1/0.2, everything else 0.1/0.5).
    """
    source = str(source)
    spec = embedded_dataset(source)
    protocol = spec.split_protocol if spec is not None else DEFAULT_PROTOCOL
    test_fraction = protocol.test_fraction if test_fraction is None else test_fraction
    if validation_fraction is None:
        validation_fraction = protocol.validation_fraction
    check_fraction(validation_fraction, "validation_fraction")
    check_fraction(test_fraction, "test_fraction")
    splits, where, labelled, multilabel = _load_checked(
        source, text_column, label_column, label_names, normalize_labels
    )
    stratify = labelled and not multilabel
    train = splits.pop("train")
    if "test" not in splits:
        train, splits["test"] = carve(train, test_fraction, seed, stratify, "test", where)
    if "validation" not in splits:
        train, splits["validation"] = carve(train, validation_fraction, seed, stratify, "validation", where)
    result = DatasetDict({"train": train, "validation": splits["validation"], "test": splits["test"]})
    for split, ds in result.items():
        if len(ds) == 0:
            raise DataError(f"{where}: the {split} split is empty; add data or provide a {split} file")
    if labelled:
        check_classes(result["train"], multilabel, where)
        for split in ("validation", "test"):
            result[split] = check_eval_labels(result["train"], result[split], f"{where} ({split})")
    logger.info("loaded %s: %s", where, {k: len(v) for k, v in result.items()})
    return result


def load_whole(
    source: str,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    normalize_labels: bool = False,
) -> Dataset:
    """Every row of `source`, checked and encoded as `load_source` does, but not split: a file's rows in file
    order (a folder or Hub dataset: its train, validation, test splits one after the other). What an
    evaluation scores when it is given a whole file (`--eval_files`, `nlptransfer evaluate`). A single class
    is allowed (nothing is trained on it)."""
    splits, where, _, _ = _load_checked(str(source), text_column, label_column, None, normalize_labels)
    order = [s for s in ("train", "validation", "test") if s in splits]
    whole = concatenate_datasets([splits[s] for s in order]) if len(order) > 1 else splits[order[0]]
    logger.info("loaded %s: %d rows (whole)", where, len(whole))
    return whole


def source_columns(source: str) -> list[str]:
    """The columns of `source` as stored (its train split, before any renaming)."""
    raw, _, _ = _read_source(str(source))
    return list(raw["train"].column_names)


def _load_checked(
    source: str,
    text_column: str,
    label_column: str | None,
    label_names: list[str] | None,
    normalize_labels: bool,
) -> tuple[dict[str, Dataset], str, bool, bool]:
    """(the source's own splits, renamed, checked and label-encoded; where they came from; labelled;
    multilabel): `load_source` and `load_whole` before any split is carved."""
    if isinstance(label_column, str) and label_column.strip().lower() in ("", "none"):
        label_column = None  # `--label_column none` on a command line
    raw, where, kinds = _read_source(source)
    labelled = label_column is not None
    if labelled and kinds == {".txt"}:
        raise DataError(
            f"{where} is plain text (one text per line) and has no labels; use .csv/.tsv/.jsonl with a "
            "label column, or set --label_column none for unlabelled text"
        )
    hot_columns = multi_hot_columns(label_column) if labelled else None
    if hot_columns and label_names is not None:
        raise DataError(
            "label_names cannot rename 0/1 label columns (the column names are the class names); "
            "rename the columns or drop label_names"
        )
    train_columns = raw["train"].column_names
    if (
        label_column == "label"
        and "label" not in train_columns
        and isinstance(raw["train"].features.get("labels"), LIST_FEATURES)
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

    multilabel = bool(hot_columns) or (labelled and looks_multilabel(splits, bool(kinds & DELIMITED)))
    if hot_columns:
        splits = encode_multi_hot(splits, hot_columns, where, skips)
    elif multilabel:
        splits, _ = encode_multilabel(splits, label_names, where, bool(kinds & DELIMITED), skips)
    elif labelled:
        for split, ds in splits.items():
            check_labels(ds, split, where, skips[split])

    splits = {split: _drop_rows(ds, skips[split], split, where) for split, ds in splits.items()}

    if labelled and not multilabel:
        splits = normalize_label_case(splits, normalize_labels, where)
        if normalize_labels and label_names is not None:
            label_names = [str(n).strip().casefold() for n in label_names]
        splits = encode_labels(splits, label_names, where)
    return splits, where, labelled, multilabel
