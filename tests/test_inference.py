"""nlptransfer.inference: the one softmax/sigmoid, decision and threshold-tuning code."""

from __future__ import annotations

import numpy as np
import pytest

from nlptransfer.inference import decide, probabilities, tune_thresholds


def test_softmax_rows_sum_to_one_and_survive_large_logits():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    probs = probabilities(logits, multilabel=False)
    assert probs.sum(-1) == pytest.approx([1.0, 1.0])
    assert probs[0] == pytest.approx(np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert not np.isnan(probs).any()
    assert decide(probs, multilabel=False).tolist() == [2, 0]


def test_sigmoid_per_label_and_thresholds():
    logits = np.array([[0.0, 2.0, -2.0], [-0.1, 0.1, 3.0]])
    probs = probabilities(logits, multilabel=True)
    assert probs == pytest.approx(1 / (1 + np.exp(-logits)))
    assert decide(probs, multilabel=True).tolist() == [[1, 1, 0], [0, 1, 1]]  # default 0.5, inclusive
    assert decide(probs, True, [0.6, 0.9, 0.1]).tolist() == [[0, 0, 1], [0, 0, 1]]


def test_tune_thresholds_per_label_and_default_without_positives():
    probs = np.array([[0.2, 0.9], [0.3, 0.8], [0.1, 0.7], [0.25, 0.1]])
    targets = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])
    thresholds = tune_thresholds(probs, targets)
    assert thresholds[1] == 0.5  # no positives for label 1: keep 0.5
    assert (decide(probs, True, thresholds)[:, 0] == targets[:, 0]).all()
