"""Class labels: single-label checks and encoding, class names, and eval sets against train.

Single-label targets are a `label` column encoded as a `ClassLabel` (strings sorted alphabetically,
integer ids numerically, named by their decimal string, unless given `label_names` or already a
ClassLabel). Multi-label targets are a `labels` column of class-id lists (`List(ClassLabel)`; read by
`nlptransfer.data.multilabel`). `is_multilabel`, `label_names` and `check_eval_labels` work on both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from nlptransfer.errors import DataError

logger = logging.getLogger("nlptransfer")

#: The feature types of a list column.
LIST_FEATURES = (datasets.List, datasets.LargeList)
#: datasets >= 5: the feature of a column of mixed types (None before).
JSON_FEATURE = getattr(datasets, "Json", None)


def is_missing(value: object) -> bool:
    """None or NaN: a cell without a value."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _label_key(value: object) -> str:
    """The class name of a raw label value: ints (and integral floats, bools) as decimal strings."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _features_of(dataset: Dataset | DatasetDict) -> Features:
    if isinstance(dataset, DatasetDict):
        if not dataset:
            raise DataError("empty DatasetDict has no labels; load a dataset with load_source")
        dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
    return dataset.features


def is_multilabel(dataset: Dataset | DatasetDict) -> bool:
    """True when the target is a `labels` column of class-id lists (`List(ClassLabel)`)."""
    features = _features_of(dataset)
    if isinstance(features.get("label"), ClassLabel):
        return False
    feature = features.get("labels")
    return isinstance(feature, LIST_FEATURES) and isinstance(feature.feature, ClassLabel)


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


# ----------------------------------------------------------------------------------------------
# single-label targets


def check_labels(ds: Dataset, split: str, where: str, skip: list[int]) -> None:
    """Single-label checks: no missing labels (rows in `skip` are dropped anyway), class-like values."""
    feature = ds.features["label"]
    labels = list(ds["label"])
    skipped = set(skip)
    if isinstance(feature, ClassLabel):
        missing = [i for i, v in enumerate(labels) if (v is None or v < 0) and i not in skipped]
    else:
        missing = [i for i, v in enumerate(labels) if is_missing(v) and i not in skipped]
    if missing:
        raise DataError(
            f"{where} ({split}): {len(missing)} rows have no label (first at row {missing[0]}); "
            "fill or drop them, or set --label_column none for unlabelled text"
        )
    if isinstance(feature, ClassLabel):
        return
    if JSON_FEATURE is not None and isinstance(feature, JSON_FEATURE):
        kinds: dict[str, int] = {}
        for i, v in enumerate(labels):
            if not is_missing(v):
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


def _label_form(value: str) -> str:
    return value.strip().casefold()


def normalize_label_case(splits: dict[str, Dataset], normalize: bool, where: str) -> dict[str, Dataset]:
    """String labels that differ only by case or surrounding whitespace ('Positive', 'positive ').

    `normalize` (`--normalize_labels true`): strip + casefold every split's labels so they are one class;
    otherwise one warning names the colliding labels (they stay separate classes).
    """
    feature = splits["train"].features["label"]
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        return splits
    if normalize:

        def norm(batch: dict) -> dict:
            return {"label": [v if v is None else _label_form(v) for v in batch["label"]]}

        return {split: ds.map(norm, batched=True, desc="normalizing labels") for split, ds in splits.items()}
    forms: dict[str, set[str]] = {}
    for ds in splits.values():
        for value in ds.unique("label"):
            if isinstance(value, str):
                forms.setdefault(_label_form(value), set()).add(value)
    clashes = [sorted(group) for group in forms.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(", ".join(repr(v) for v in group) for group in sorted(clashes))
        logger.warning(
            "%s: labels that differ only by case or surrounding whitespace are separate classes: %s; "
            "pass --normalize_labels true to merge them (strip + casefold)",
            where,
            shown,
        )
    return splits


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


def encode_labels(
    splits: dict[str, Dataset], label_names: Sequence[str] | None, where: str
) -> dict[str, Dataset]:
    """Every split's raw single-label `label` column as train's `ClassLabel` (order: `label_names` or sorted).

    Integer labels that are not among `label_names` are read as positions in it; other splits may only
    use classes seen in train.
    """
    train = splits["train"]
    names = _names_for(train, label_names, where)
    use_ids = label_names is not None and any(p not in names for p in _present(train))
    out = {}
    for split, ds in splits.items():
        if use_ids:
            bad = [p for p in _present(ds) if not (p.isdigit() and int(p) < len(names))]
            if bad:
                raise DataError(
                    f"{where}: {split} has label ids {bad} outside 0..{len(names) - 1} of label_names "
                    f"{names}; fix the data or label_names"
                )
            features = ds.features.copy()
            features["label"] = ClassLabel(names=names)
            out[split] = ds.cast(features)
            continue
        if split != "train":
            unseen = sorted(set(_present(ds)) - set(_present(train)))
            if unseen:
                raise DataError(
                    f"{where}: {split} has labels never seen in train: {unseen}; fix the data or merge those classes"
                )
        out[split] = _encode(ds, names)
    return out


# ----------------------------------------------------------------------------------------------
# both kinds of targets


def present_multi(ds: Dataset) -> list[str]:
    """Class names that occur in the `labels` lists of `ds`."""
    names = ds.features["labels"].feature.names
    return [names[i] for i in sorted({i for row in ds["labels"] for i in row})]


def with_labels(ds: Dataset, ids: list[list[int]], names: list[str], where: str) -> Dataset:
    """`ds` with a multi-label `labels` column (List(ClassLabel(names))) holding the class ids `ids`."""
    if "labels" in ds.column_names:
        logger.info("%s: renaming existing column 'labels' to 'labels_orig'", where)
        ds = ds.rename_column("labels", "labels_orig")
    ids = [sorted(set(row)) for row in ids]
    return ds.add_column("labels", ids, feature=datasets.List(ClassLabel(names=names)))


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


def align_labels(ds: Dataset, names: Sequence[str], where: str, owner: str = "the model") -> Dataset:
    """`ds` (single- or multi-label, as `load_source`/`load_whole` return it) with its labels mapped by NAME
    onto `names` (e.g. a trained model's id2label, in id order). Labels that are not among `names` fail in
    one line naming each of them."""
    names = [str(n) for n in names]
    multilabel = is_multilabel(ds)
    present = present_multi(ds) if multilabel else _present(ds)
    unknown = sorted(set(present) - set(names))
    if unknown:
        raise DataError(
            f"{where} has labels that {owner} does not know: {', '.join(map(repr, unknown))} ({owner} knows "
            f"{', '.join(map(repr, names))}); fix or drop those rows, or use a model trained on these labels"
        )
    if not multilabel:
        return _encode(ds, names)
    own = label_names(ds)
    if own == names:
        return ds
    index = {n: i for i, n in enumerate(names)}
    ids = [[index[own[j]] for j in row] for row in ds["labels"]]
    return with_labels(ds.remove_columns("labels"), ids, names, where)


def _check_eval_multilabel(train: Dataset, other: Dataset, name: str) -> Dataset:
    for ds, what in ((train, "train"), (other, name)):
        if not is_multilabel(ds):
            raise DataError(
                f"{what} has no multi-label 'labels' column (List(ClassLabel)) but the other set has one; "
                "compare datasets with the same kind of target"
            )
    names, other_names = label_names(train), label_names(other)
    seen = set(present_multi(train))
    unseen = sorted(set(present_multi(other)) - seen)
    if unseen:
        raise DataError(
            f"{name} has labels never seen in train: {unseen} (train has {sorted(seen)}); "
            "fix the data or merge those classes"
        )
    if other_names == names:
        return other
    index = {n: i for i, n in enumerate(names)}
    ids = [[index[other_names[j]] for j in row] for row in other["labels"]]
    return with_labels(other.remove_columns("labels"), ids, names, name)


def check_classes(train: Dataset, multilabel: bool, where: str) -> None:
    """A classifier needs at least two classes in its training split."""
    present = present_multi(train) if multilabel else _present(train)
    if len(present) < 2:
        only = f" ({present[0]!r})" if present else ""
        raise DataError(
            f"{where}: the label column has {len(present)} class{only} in train; a classifier needs at least "
            "2 classes; check --label_column or add examples of other classes"
        )
