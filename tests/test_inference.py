"""nlptransfer.inference: the one softmax/sigmoid, decision and threshold-tuning code."""

from __future__ import annotations

import numpy as np
import pytest

from nlptransfer.errors import ModelError
from nlptransfer.inference import decide, probabilities, tune_thresholds
from nlptransfer.predictor import rows_from_logits


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


def test_nan_or_infinite_probabilities_are_one_model_error_not_rows():
    """`predict` wrote bare NaN into its .jsonl, `serve` failed to encode the answer."""
    assert rows_from_logits(np.array([[0.0, 1.0]]), ["x"], ["a", "b"], False, None)[0]["label"] == "b"
    cases = [
        ([[0.0, 1.0], [np.nan, 0.0]], False),
        ([[np.inf, 0.0], [0.0, 1.0]], False),  # softmax of an infinite logit: NaN
        ([[np.nan, 0.0], [0.0, 0.0]], True),
    ]
    for logits, multilabel in cases:
        with pytest.raises(ModelError, match="NaN or infinite probabilities for 1 of 2 texts") as err:
            rows_from_logits(np.array(logits), ["x", "y"], ["a", "b"], multilabel, None)
        assert "\n" not in str(err.value)


def test_tune_thresholds_per_label_and_default_without_positives():
    probs = np.array([[0.2, 0.9], [0.3, 0.8], [0.1, 0.7], [0.25, 0.1]])
    targets = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])
    thresholds = tune_thresholds(probs, targets)
    assert thresholds[1] == 0.5  # no positives for label 1: keep 0.5
    assert (decide(probs, True, thresholds)[:, 0] == targets[:, 0]).all()


def test_collapse_warning_names_the_class_and_the_fixes():
    from nlptransfer.evaluation.metrics import collapse_warning

    names = ["negative", "neutral", "positive"]
    line = collapse_warning([2, 2, 2, 2], names)
    assert line.startswith("all 4 validation predictions are 'positive'") and "--learning_rate" in line
    assert "\n" not in line
    assert collapse_warning([2, 0, 2], names) is None
    assert collapse_warning([1], names) is None  # one row says nothing
    multi = np.array([[1, 0, 1], [1, 0, 1]])
    assert "[negative, positive]" in collapse_warning(multi, names, multilabel=True, where="test")
    assert collapse_warning(np.array([[1, 0, 1], [0, 0, 1]]), names, multilabel=True) is None


def test_a_classifier_that_learned_only_the_prior_warns_once(model_dir, tmp_path, caplog):
    import torch
    from tiny import sentiment_rows, write_csv

    from nlptransfer.config import ModelArguments, TransferArguments
    from nlptransfer.data import load_source
    from nlptransfer.modeling import build_classifier, load_tokenizer
    from nlptransfer.trainers import TransferTrainingArguments
    from nlptransfer.training import fit_classifier

    splits = load_source(
        str(write_csv(tmp_path / "r.csv", sentiment_rows(60))), text_column="review", label_column="sentiment"
    )
    labels = splits["train"].features["label"].names
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="frozen"), labels)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))  # every answer: the first class
    args = TransferTrainingArguments(
        str(tmp_path / "o"),
        max_steps=1,
        learning_rate=1e-9,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
    )
    with caplog.at_level("WARNING", logger="nlptransfer"):
        fit_classifier(model, load_tokenizer(str(model_dir)), args, splits, labels, strategy="frozen")
    warnings = [r.message for r in caplog.records if "class prior" in r.message]
    assert len(warnings) == 1 and f"are {labels[0]!r}" in warnings[0]


def test_multilabel_thresholds_of_another_length_are_refused_not_replaced_by_half():
    """A threshold list that does not fit the labels used to fall back to 0.5 for every label, silently."""
    from nlptransfer.errors import ConfigError

    logits = np.array([[0.0, 2.0, -2.0]])  # sigmoid 0.5, 0.88, 0.12
    rows = rows_from_logits(logits, ["x"], ["a", "b", "c"], True, [0.6, 0.9, 0.1])
    assert rows[0]["label"] == ["c"]
    with pytest.raises(ConfigError, match="2 thresholds for 3 labels"):
        rows_from_logits(logits, ["x"], ["a", "b", "c"], True, [0.6, 0.9])
    assert rows_from_logits(logits, ["x"], ["a", "b", "c"], True, None)[0]["label"] == ["a", "b"]
