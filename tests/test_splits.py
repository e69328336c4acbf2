"""The one seeded subsample (`nlptransfer.data.splits`): stratified, covers classes, seeded, all rows when n >= len."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, List, Value

from nlptransfer.data import subsample, subsample_indices
from nlptransfer.errors import ConfigError, DataError


def _labelled(counts: dict[str, int]) -> Dataset:
    names = sorted(counts)
    labels = [i for i, name in enumerate(names) for _ in range(counts[name])]
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels}, features=features
    )


# ---------------------------------------------------------------------------- subsample (a Dataset)


def test_stratified_proportions_kept() -> None:
    ds = _labelled({"a": 600, "b": 300, "c": 100})
    sub = subsample(ds, 100, seed=1)
    assert len(sub) == 100 and len(set(sub["text"])) == 100
    assert Counter(sub["label"]) == {0: 60, 1: 30, 2: 10}
    assert sub.features == ds.features


def test_every_class_present_when_n_allows() -> None:
    ds = _labelled({"big": 95, "small": 4, "single": 1})  # one class of one row: sklearn cannot stratify
    for seed in range(5):
        sub = subsample(ds, 5, seed=seed)
        assert len(sub) == 5 and set(sub["label"]) == {0, 1, 2}
    assert len(subsample(ds, 2, seed=0)) == 2  # fewer rows than classes: still a valid subset


def test_seeded_same_rows_twice_in_original_order() -> None:
    ds = _labelled({"a": 50, "b": 50})
    first, again = subsample(ds, 20, seed=7), subsample(ds, 20, seed=7)
    assert first["text"] == again["text"]
    assert first["text"] != subsample(ds, 20, seed=8)["text"]
    rows = [int(t[1:]) for t in first["text"]]
    assert rows == sorted(rows)


@pytest.mark.parametrize("n", [None, 0, 100, 1000])
def test_n_at_least_len_returns_all_rows(n: int | None) -> None:
    ds = _labelled({"a": 60, "b": 40})
    assert subsample(ds, n, seed=0) is ds


def test_unlabelled_and_multilabel_are_random() -> None:
    text = Dataset.from_dict({"text": [f"t{i}" for i in range(30)]})
    assert len(subsample(text, 10, seed=0, label_column=None)) == 10
    with pytest.raises(DataError, match="label_column=None"):
        subsample(text, 10, seed=0)  # no `label` column to stratify by
    multi = Dataset.from_dict(
        {"text": [f"t{i}" for i in range(30)], "labels": [[i % 3] for i in range(30)]},
        features=Features({"text": Value("string"), "labels": List(ClassLabel(names=["x", "y", "z"]))}),
    )
    drawn = subsample(multi, 10, seed=0, label_column="labels")["text"]
    assert drawn == [f"t{i}" for i in subsample_indices(30, 10, seed=0)]  # random rows, in their order
    shuffled = subsample(text, 10, 0, None)["text"]  # no labels: a seeded shuffle
    assert shuffled == text.shuffle(seed=0)["text"][:10] and shuffled != sorted(
        shuffled, key=lambda t: int(t[1:])
    )


def test_regression_target_is_not_stratified_silently() -> None:
    ds = Dataset.from_dict({"text": ["a", "b", "c"], "label": [0.5, 1.5, -2.0]})
    with pytest.raises(DataError, match="regression"):
        subsample(ds, 2, seed=0)
    with pytest.raises(ConfigError):
        subsample(ds, -1, seed=0)


# ---------------------------------------------------------------------------- subsample_indices (comparison)


def test_indices_too_large_is_one_line_error() -> None:
    with pytest.raises(DataError) as info:
        subsample_indices(1200, 5000, seed=0)
    assert str(info.value) == (
        "train size 5000 is larger than the 1200 training examples; use sizes up to 1200 or 'all'"
    )


def test_indices_stratified_seeded_and_all() -> None:
    labels = np.array([0] * 600 + [1] * 300 + [2] * 100)
    a = subsample_indices(len(labels), 100, seed=1, labels=labels)
    assert a == subsample_indices(labels, 100, seed=1, labels=labels)  # seeded; a sized object works too
    assert a != subsample_indices(len(labels), 100, seed=2, labels=labels)
    assert len(a) == len(set(a)) == 100 and a == sorted(a)
    assert Counter(labels[a].tolist()) == {0: 60, 1: 30, 2: 10}  # stratified
    assert subsample_indices(1000, None, seed=0) == list(range(1000))
    assert subsample_indices(1000, "all", seed=0) == list(range(1000))
    assert subsample_indices(1000, 1000, seed=0) == list(range(1000))


def test_indices_keep_every_class_when_possible() -> None:
    labels = np.array([0] * 95 + [1] * 4 + [2])  # class 2 has one example: stratification impossible
    for seed in range(5):
        idx = subsample_indices(len(labels), 5, seed=seed, labels=labels)
        assert len(idx) == 5 and set(labels[idx].tolist()) == {0, 1, 2}
    # fewer slots than classes: still a valid seeded subset
    assert len(subsample_indices(len(labels), 2, seed=0, labels=labels)) == 2


def test_dataset_and_indices_draw_the_same_rows() -> None:
    ds = _labelled({"a": 70, "b": 20, "c": 10})
    idx = subsample_indices(len(ds), 30, 3, ds["label"])
    assert subsample(ds, 30, 3)["text"] == [f"t{i}" for i in idx]
