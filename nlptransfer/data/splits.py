"""Splits: how `load_source` carves missing splits, and THE one seeded (stratified) subsample.

Split protocol. Missing splits are carved from train with `Dataset.train_test_split`, seeded and
stratified by label when possible (plain random otherwise, and always for multi-label targets): first
`test` takes `test_fraction` of train, then `validation` takes `validation_fraction` of what is left.
Both default to the source's `SplitProtocol`; explicit values override it.

Subsample. `subsample(ds, n, seed, label_column)` keeps at most `n` rows of `ds`: seeded, stratified by
a single-label `label_column` (every class kept when `n` allows; rows keep their order), or a seeded
shuffle for a multi-label list column or `label_column=None`. `per_class=True` keeps exactly `n` rows of
every class instead (few-shot: `--examples_per_class`; a class with fewer rows is one `DataError` line).
`subsample_indices` is the same draw on indices (what `nlptransfer.evaluation.comparison` gives every
method of a comparison). Every recipe caps its splits
(`--max_train_samples`, `--max_eval_samples`, ...) through these.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset, Value

from nlptransfer.data.labels import LIST_FEATURES
from nlptransfer.errors import ConfigError, DataError, first_line

logger = logging.getLogger("nlptransfer")


@dataclass(frozen=True)
class SplitProtocol:
    """How `load_source` carves missing splits: `test_fraction` of the corpus, then
    `validation_fraction` of the rest."""

    test_fraction: float = 0.5
    validation_fraction: float = 0.1


#: Local files and Hub sets without a test/validation split.
DEFAULT_PROTOCOL = SplitProtocol(0.2, 0.1)


def check_fraction(value: float, name: str) -> None:
    """A split fraction must lie strictly between 0 and 1."""
    if not 0 < value < 1:
        raise ConfigError(f"{name} must be between 0 and 1 (exclusive), got {value}; pass e.g. 0.1")


def carve(
    ds: Dataset, fraction: float, seed: int, stratify: bool, what: str, where: str
) -> tuple[Dataset, Dataset]:
    """(rest, carved): `fraction` of `ds` split off, seeded, stratified by `label` when `stratify` and possible."""
    try:
        if stratify:
            try:
                parts = ds.train_test_split(test_size=fraction, seed=seed, stratify_by_column="label")
            except ValueError as err:
                logger.warning(
                    "%s: cannot stratify the %s split (%s); using a plain random split",
                    where,
                    what,
                    first_line(err),
                )
                parts = ds.train_test_split(test_size=fraction, seed=seed)
        else:
            parts = ds.train_test_split(test_size=fraction, seed=seed)
    except ValueError as err:
        raise DataError(
            f"{where} has too few rows ({len(ds)}) to carve a {what} split of {fraction:g} "
            f"({first_line(err)}); add data or provide a {what} file"
        ) from None
    return parts["train"], parts["test"]


# ----------------------------------------------------------------------------------------------
# the one subsample


def subsample(
    ds: Dataset, n: int | None, seed: int, label_column: str | None = "label", *, per_class: bool = False
) -> Dataset:
    """At most `n` rows of `ds` (all of them when `n` is None, 0 or >= len(ds)), seeded.

    `per_class`: exactly `n` rows of every class of the single-label `label_column` (rows keep their
    order); `n` must be a positive number, and a class with fewer rows is a `DataError` naming it.

    Stratified by a single-label `label_column` (every class kept when `n` allows; rows keep their order);
    a random set of rows for a multi-label list column (in their order, the draw `--compare` uses).
    `label_column=None`: `ds.shuffle(seed).select(range(n))` (rows in shuffled order), which never reads
    the labels (unlabelled pools, regression targets).
    """
    if per_class:
        feature = ds.features.get(label_column) if label_column else None
        if feature is None or isinstance(feature, LIST_FEATURES):
            raise ConfigError(
                "--examples_per_class needs single-label data (one class per row); use --max_train_samples "
                "for multi-label data"
            )
        names = getattr(feature, "names", None)
        return ds.select(subsample_indices(len(ds), n, seed, ds[label_column], per_class=True, names=names))
    if not n or n >= len(ds):
        return ds
    if n < 0:
        raise ConfigError(f"cannot keep {n} rows of a dataset; pass a positive number of examples")
    if label_column is None:
        return ds.shuffle(seed=seed).select(range(n))
    if label_column not in ds.column_names:
        raise DataError(
            f"cannot stratify a subsample by {label_column!r}: no such column "
            f"(columns: {', '.join(ds.column_names)}); pass label_column=None for a random subsample"
        )
    feature = ds.features[label_column]
    if isinstance(feature, Value) and feature.dtype.startswith("float"):
        raise DataError(
            f"cannot stratify a subsample by {label_column!r}: it holds numbers, not classes; "
            "pass label_column=None for a regression target"
        )
    if isinstance(feature, LIST_FEATURES):  # multi-label lists: the comparison's random draw
        return ds.select(subsample_indices(len(ds), n, seed))
    return ds.select(subsample_indices(len(ds), n, seed, ds[label_column]))


def subsample_indices(
    dataset_or_len: int | Sized,
    size: int | str | None,
    seed: int,
    labels: Any = None,
    *,
    per_class: bool = False,
    names: list[str] | None = None,
    option: str = "--examples_per_class",
) -> list[int]:
    """Sorted indices of a seeded training subset of `size` examples (None or "all": every example).

    `per_class`: `size` examples of every class of the single-label `labels` (`names`: the class names, for
    the error naming a class with fewer examples; `option`: the flag it names); see `per_class_indices`.

    With single-label `labels` the subset is stratified (scikit-learn's train_test_split) and holds at least
    one example of every class when `size` allows; when stratification is impossible (a class with a single
    example, or fewer examples than classes) it falls back to a random subset, then still adds missing
    classes. Multilabel (2-D) labels or no labels: a random subset. Same arguments, same subset.
    A `size` larger than the number of examples is an error (a train size that cannot be met).
    """
    n = dataset_or_len if isinstance(dataset_or_len, int) else len(dataset_or_len)
    if per_class:
        return per_class_indices(labels, size, seed, names, option)
    if isinstance(size, str):
        if size.strip().lower() != "all":
            raise ConfigError(f"train size {size!r} must be a positive number of examples or 'all'")
        size = None
    if size is None:
        return list(range(n))
    if size <= 0:
        raise ConfigError(f"train size {size} must be a positive number of examples or 'all'")
    if size > n:
        raise DataError(
            f"train size {size} is larger than the {n} training examples; use sizes up to {n} or 'all'"
        )
    if size == n:
        return list(range(n))

    rng = np.random.default_rng(seed)
    y = None if labels is None else np.asarray(labels)
    if y is not None and len(y) != n:
        raise DataError(f"{len(y)} labels for {n} training examples: pass one label per example")
    if y is None or y.ndim != 1:
        return sorted(rng.choice(n, size=size, replace=False).tolist())

    from sklearn.model_selection import train_test_split  # scikit-learn is slow to import

    try:
        chosen, _ = train_test_split(np.arange(n), train_size=size, stratify=y, random_state=seed)
    except ValueError:
        # A class with one example, or fewer examples (in or out of the subset) than classes.
        chosen = rng.choice(n, size=size, replace=False)
    return sorted(_cover_classes(np.asarray(chosen), y, rng).tolist())


def per_class_indices(
    labels: Any, k: Any, seed: int, names: list[str] | None = None, option: str = "--examples_per_class"
) -> list[int]:
    """Sorted indices of `k` examples of every class of the single-label `labels` (few-shot selection).

    Seeded and stratified by construction: each class (in sorted order) draws `k` of its examples without
    replacement from one `numpy` generator seeded with `seed`, so the same arguments give the same subset.
    `k` below 1 is a `ConfigError`; a class with fewer than `k` examples a `DataError` naming the class
    and its count (the smallest such class) and the fix (`option`, the flag that asked for `k`).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"{option} {k} must be a positive number of examples per class (e.g. 16)")
    if labels is None:
        raise ConfigError(f"{option} needs labelled training data")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ConfigError(
            f"{option} needs single-label data (one class per row); use --max_train_samples "
            "for multi-label data"
        )
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < k:
        small = int(counts.argmin())
        cls = classes[small]
        name = names[int(cls)] if names is not None and np.issubdtype(y.dtype, np.integer) else cls
        raise DataError(
            f"class {str(name)!r} has only {counts[small]} training examples, fewer than the {k} per class "
            f"asked for; use {option} {counts[small]} or less"
        )
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(y == cls), size=k, replace=False) for cls in classes]
    return sorted(np.concatenate(chosen).tolist())


def _cover_classes(chosen: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Swap examples of missing classes in for examples of the most frequent class in the subset."""
    chosen = chosen.copy()
    classes = np.unique(y)
    if len(chosen) < len(classes):
        return chosen  # cannot hold every class; keep the stratified/random draw
    for cls in classes:
        subset_labels = y[chosen]
        if (subset_labels == cls).any():
            continue
        candidates = np.flatnonzero(y == cls)
        new = int(rng.choice(candidates))
        values, counts = np.unique(subset_labels, return_counts=True)
        donor = values[counts.argmax()]
        slot = int(rng.choice(np.flatnonzero(subset_labels == donor)))
        chosen[slot] = new
    return chosen
