"""The classical no-transfer baseline: TF-IDF + logistic regression (scikit-learn).

`tfidf_logreg` fits and predicts; `tfidf_logreg_method` wraps it as a `run_comparison` callback.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nlptransfer.errors import ConfigError, DataError
from nlptransfer.evaluation.comparison import MethodFn
from nlptransfer.evaluation.metrics import classification_metrics

__all__ = ["tfidf_logreg", "tfidf_logreg_method"]

logger = logging.getLogger("nlptransfer")


def tfidf_logreg(
    train_texts: Sequence[str],
    train_labels: Any,
    test_texts: Sequence[str],
    *,
    seed: int,
    multilabel: bool = False,
    label_count: int,
    class_weight: str | None = None,
) -> np.ndarray:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; returns predictions for `test_texts`.

    Single-label: `train_labels` are class ids in 0..label_count-1; returns a 1-D array of ids (classes
    absent from the training subset are never predicted). Multilabel: a (n, label_count) 0/1 matrix; one
    logistic regression per label (one-vs-rest), returns a 0/1 matrix of the same width. `class_weight`:
    None or "balanced" (pass "balanced" when the neural methods use a class-weighted loss).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

    if class_weight not in (None, "balanced"):
        raise ConfigError(f"class_weight={class_weight!r} is not supported; use None or 'balanced'")
    if label_count < 1:
        raise ConfigError(f"label_count={label_count} must be the number of label names (at least 1)")
    labels = np.asarray(train_labels)
    if len(labels) != len(train_texts):
        raise DataError(f"{len(train_texts)} training texts but {len(labels)} labels: they must pair up")
    if len(train_texts) == 0 or len(test_texts) == 0:
        raise DataError("tfidf_logreg needs at least one training and one test text; got an empty split")

    logreg = LogisticRegression(max_iter=1000, class_weight=class_weight, random_state=seed)
    if multilabel:
        if labels.ndim != 2 or labels.shape[1] != label_count:
            raise DataError(
                f"multilabel labels must be a 0/1 matrix of shape (n, {label_count}), got {labels.shape}"
            )
        labels = np.rint(labels).astype(np.int64)
        constant = [i for i in range(label_count) if len(np.unique(labels[:, i])) < 2]
        if constant:
            # One-vs-rest then predicts the constant value for that label: expected on small subsets.
            logger.info(
                "tfidf_logreg: label column(s) %s are constant in the %d training examples; "
                "those labels are predicted as that constant",
                constant,
                len(labels),
            )
        classifier: Any = OneVsRestClassifier(logreg)
    else:
        if labels.ndim != 1:
            raise DataError(
                f"single-label labels must be 1-D class ids, got shape {labels.shape}; pass multilabel=True "
                "for a 0/1 label matrix"
            )
        labels = labels.astype(np.int64)
        bad = labels[(labels < 0) | (labels >= label_count)]
        if bad.size:
            raise DataError(
                f"training label id {bad[0]} is outside 0..{label_count - 1} for {label_count} labels"
            )
        present = np.unique(labels)
        if len(present) < 2:
            raise DataError(
                f"the {len(labels)} training examples all have label id {present[0]}: TF-IDF + logistic "
                "regression needs at least 2 classes; use a larger --train_sizes value or check the label column"
            )
        classifier = logreg

    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("logreg", classifier),
        ]
    )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            pipeline.fit(list(train_texts), labels)
    except ValueError as err:
        if "empty vocabulary" in str(err):
            raise DataError(
                "the training texts contain no words TF-IDF can use (empty vocabulary): check the text column"
            ) from err
        raise
    return np.asarray(pipeline.predict(list(test_texts))).astype(np.int64)


def tfidf_logreg_method(
    train_texts: Sequence[str],
    train_labels: Any,
    test_texts: Sequence[str],
    test_labels: Any,
    label_names: Sequence[str],
    *,
    multilabel: bool = False,
    class_weight: str | None = None,
) -> MethodFn:
    """A `run_comparison` callback: `tfidf_logreg` on the training subset, scored by classification_metrics."""
    texts = list(train_texts)
    labels = np.asarray(train_labels)

    def fn(seed: int, indices: list[int]) -> dict[str, float]:
        preds = tfidf_logreg(
            [texts[i] for i in indices],
            labels[indices],
            test_texts,
            seed=seed,
            multilabel=multilabel,
            label_count=len(label_names),
            class_weight=class_weight,
        )
        return classification_metrics(preds, test_labels, label_names, multilabel)

    return fn
