"""Multi-label targets: list-valued label columns, `;`-lists in .csv/.tsv, and several 0/1 columns.

The label column is multi-label when it holds lists (json/jsonl/parquet/Hub: lists of class names or
of integer ids, `[]` = no class), or, in .csv/.tsv files, when any label cell contains `;`: every cell
is then split on `;` ("a;b", "a" = one class, ";" = none; spaces around names stripped).
Alternatively `label_column="colA,colB,colC"` names several 0/1 columns, one per class (the column
names, in that order, are the class names; the columns are replaced by `labels`). Class names from
lists are sorted (strings alphabetically, integer ids numerically, named by their decimal string)
unless they already come as a `List(ClassLabel)`. The result is a `labels` column of class-id lists
(`List(ClassLabel)`).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence

from datasets import ClassLabel, Dataset, Value

from nlptransfer.data.labels import JSON_FEATURE, LIST_FEATURES, is_missing, present_multi, with_labels
from nlptransfer.errors import DataError

logger = logging.getLogger("nlptransfer")

#: In these files a label cell containing MULTI_SEP is a list of classes ("a;b").
DELIMITED = {".csv", ".tsv"}
MULTI_SEP = ";"


def looks_multilabel(splits: dict[str, Dataset], delimited: bool) -> bool:
    """Whether the `label` column of any split holds lists (or `;`-lists in .csv/.tsv)."""
    for ds in splits.values():
        feature = ds.features["label"]
        if isinstance(feature, LIST_FEATURES):
            return True
        if JSON_FEATURE is not None and isinstance(feature, JSON_FEATURE):
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
    inner = feature.feature if isinstance(feature, LIST_FEATURES) else None
    given = list(inner.names) if isinstance(inner, ClassLabel) else None
    values = list(ds["label"])
    skipped = set(skip)
    missing = [i for i, v in enumerate(values) if is_missing(v) and i not in skipped]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no labels (first at row {missing[0]}); give each "
            f"row a list of classes ([] or '{MULTI_SEP}' for none) or drop those rows"
        )
    rows: list[list[str]] = []
    kinds: dict[str, tuple[int, object]] = {}
    for i, value in enumerate(values):
        if is_missing(value):
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


def encode_multilabel(
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
    elif isinstance(feature, LIST_FEATURES) and isinstance(feature.feature, ClassLabel):
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
        result[split] = with_labels(ds.remove_columns("label"), ids, names, where)
    return result, names


def multi_hot_columns(label_column: str) -> list[str] | None:
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
            if is_missing(value):
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
    return with_labels(ds.remove_columns(columns), ids, columns, where)


def encode_multi_hot(
    splits: dict[str, Dataset], columns: list[str], where: str, skips: dict[str, list[int]]
) -> dict[str, Dataset]:
    """Every split's 0/1 `columns` as `labels`; other splits may only use classes seen in train."""
    splits = {s: _multi_hot(ds, columns, s, where, skips[s]) for s, ds in splits.items()}
    present = set(present_multi(splits["train"]))
    for split, ds in splits.items():
        unseen = sorted(set(present_multi(ds)) - present)
        if unseen:
            raise DataError(
                f"{where}: {split} has labels never seen in train: {unseen}; fix the data or merge those classes"
            )
    never = [c for c in columns if c not in present]
    if never:
        logger.warning("%s: label columns %s are never 1 in train; they cannot be learned", where, never)
    return splits
