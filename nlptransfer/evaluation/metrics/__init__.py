"""Classification metrics that work offline: evaluate modules bundled in the package, scored by scikit-learn.

`nlptransfer/evaluation/metrics/modules/<name>.py` are ordinary `evaluate.Metric` scripts (same inputs, keyword
arguments, `multilabel` config and return keys as the Hub's `evaluate-metric/<name>` modules), so both
`evaluate.load(bundled_metric_path("f1"))` and `load_metric("f1")` behave like `evaluate.load("f1")` without
the Hub. Bundled: accuracy, f1, precision, recall, classification_report, confusion_matrix, and for translation
(`TEXT_METRICS`) sacrebleu (BLEU) and chrf, computed by sacrebleu.

    >>> load_metric("f1").compute(predictions=[0, 1, 1], references=[0, 1, 0], average="macro")
    {'f1': 0.6666666666666666}
    >>> classification_metrics(preds, refs, label_names)   # accuracy, f1_micro, f1_macro, precision/recall_macro
    >>> Trainer(..., compute_metrics=make_compute_metrics(label_names))

Offline behaviour (evaluate 0.4.6): a local script never touches the network, but a Hub name does, and
evaluate only honours its own `HF_EVALUATE_OFFLINE`, not `HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE`; it then
makes a download-count HEAD request (10 s timeout) and several script requests (100 s timeout each).
`load_metric` therefore, for names that are not bundled: switches evaluate to offline mode for the call when
any of HF_EVALUATE_OFFLINE / HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / TRANSFORMERS_OFFLINE is set or the Hub
endpoint does not answer a HEAD request within 3 s, so a firewalled machine fails in seconds (a Hub module
already in evaluate's module cache still loads); turns off the download-count request;
and turns every load failure into a one-line `MetricLoadError` (an `NlpTransferError`) listing the bundled
names.
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nlptransfer.errors import ConfigError, DataError, first_line

__all__ = [
    "collapse_warning",
    "BUNDLED_METRICS",
    "IGNORE_INDEX",
    "MetricLoadError",
    "TEXT_METRICS",
    "bundled_metric_path",
    "classification_metrics",
    "clear_metric_cache",
    "confusion",
    "load_metric",
    "make_compute_metrics",
    "make_preprocess_logits",
    "per_class_report",
]

MODULES_DIR = Path(__file__).resolve().parent / "modules"
BUNDLED_METRICS: tuple[str, ...] = (
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "f1",
    "precision",
    "recall",
)
# Translation metrics (sacrebleu's scorers behind the Hub modules' interface: list-of-str predictions,
# list-of-list-of-str references), bundled the same way.
TEXT_METRICS: tuple[str, ...] = ("chrf", "sacrebleu")
_ALL_BUNDLED: tuple[str, ...] = tuple(sorted(BUNDLED_METRICS + TEXT_METRICS))
# References equal to this are dropped before scoring single-label inputs (the transformers loss convention).
IGNORE_INDEX = -100

_OFFLINE_ENV_VARS = ("HF_EVALUATE_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}
_PROBE_TIMEOUT = 3.0


class MetricLoadError(ConfigError):
    """A metric name that is neither bundled nor loadable (from the Hub, its cache or a local script)."""


# --------------------------------------------------------------------------------------------- loading


def bundled_metric_path(name: str) -> str:
    """The path of the bundled module script `name`, for `evaluate.load(path)`."""
    if name not in _ALL_BUNDLED:
        raise MetricLoadError(f"{name!r} is not a bundled metric; bundled metrics: {', '.join(_ALL_BUNDLED)}")
    return str(MODULES_DIR / f"{name}.py")


def load_metric(name: str, config_name: str | None = None, **kw: Any):
    """`evaluate.load(name, config_name, **kw)`, served from the bundled modules when `name` is bundled.

    Other names (Hub ids such as "bleu" or "user/metric", local scripts) go to `evaluate.load`, with the
    offline handling described in the module docstring; failures raise `MetricLoadError` (one line).
    `keep_in_memory` defaults to True (no Arrow cache file under ~/.cache/huggingface/metrics) unless
    `num_process > 1`.

    Without keyword arguments the instance is cached per (name, config_name) and shared between callers:
    repeated `compute(predictions=..., references=...)` calls are fine (a failed call leaves no state
    behind), but it is not thread-safe and `add_batch` calls from two users must not interleave; pass any
    keyword (e.g. `experiment_id="mine"`) for a private, uncached instance.
    """
    if not kw:
        return _cached_metric(name, _normalize_config(config_name))
    return _load(name, _normalize_config(config_name), kw)


def clear_metric_cache() -> None:
    """Forget the instances cached by `load_metric` (and used by the helpers below)."""
    _cached_metric.cache_clear()


def _normalize_config(config_name: str | None) -> str | None:
    return None if config_name in (None, "default") else config_name


@functools.lru_cache(maxsize=64)
def _cached_metric(name: str, config_name: str | None):
    return _load(name, config_name, {})


def _load(name: str, config_name: str | None, kw: dict[str, Any]):
    import evaluate

    kw = dict(kw)
    kw.setdefault("keep_in_memory", kw.get("num_process", 1) == 1)
    if name in _ALL_BUNDLED:
        try:
            return evaluate.load(bundled_metric_path(name), config_name, **kw)
        except OSError as err:  # e.g. a read-only ~/.cache/huggingface/modules
            raise MetricLoadError(
                f"cannot load the bundled metric {name!r}: {first_line(err)} "
                "(evaluate copies metric scripts to HF_MODULES_CACHE, which must be writable)"
            ) from err

    is_local = name.endswith(".py") or os.path.exists(name)
    offline_reason = _offline_reason(check_hub=not is_local)
    try:
        with _evaluate_network_settings(offline=offline_reason is not None):
            return evaluate.load(name, config_name, **kw)
    except (OSError, ImportError) as err:  # FileNotFoundError, ConnectionError, requests errors, missing deps
        if is_local:
            problem = f"could not be loaded as a local metric script ({first_line(err)})"
        elif isinstance(err, ImportError):
            problem = f"needs a missing package ({first_line(err)})"
        elif offline_reason is not None:
            problem = f"cannot be fetched from the Hugging Face Hub ({offline_reason}) and is not in evaluate's cache"
        else:
            problem = f"could not be loaded from the Hugging Face Hub ({first_line(err)})"
        raise MetricLoadError(
            f"metric {name!r} is not bundled with nlptransfer and {problem}; "
            f"bundled metrics: {', '.join(_ALL_BUNDLED)}"
        ) from err


def _offline_reason(check_hub: bool) -> str | None:
    """Why evaluate must not touch the network now (None: it may). Switches are read now, not at import."""
    for var in _OFFLINE_ENV_VARS:
        if os.environ.get(var, "").strip().upper() in _TRUE_VALUES:
            return f"offline: {var} is set"
    from evaluate import config as evaluate_config
    from huggingface_hub import constants as hub_constants

    if evaluate_config.HF_EVALUATE_OFFLINE or hub_constants.HF_HUB_OFFLINE:
        return "offline mode is on"
    if check_hub and not _hub_reachable():
        host = urllib.parse.urlsplit(evaluate_config.HF_ENDPOINT).netloc or "the Hub"
        return f"offline: {host} did not answer within {_PROBE_TIMEOUT:g} s"
    return None


def _hub_reachable(timeout: float = _PROBE_TIMEOUT) -> bool:
    """Whether the Hub endpoint answers an HTTP HEAD (any status) within `timeout` seconds.

    Uses requests, like evaluate, so HTTPS_PROXY/NO_PROXY apply the same way. A real request rather than a
    TCP connect: a proxy or middlebox that accepts connections but never answers would otherwise make
    evaluate wait 100 s per attempt (its hard-coded etag timeout).
    """
    import requests
    from evaluate import config as evaluate_config

    try:
        requests.head(evaluate_config.HF_ENDPOINT, timeout=(timeout, timeout), allow_redirects=False)
    except (requests.RequestException, OSError):
        return False
    return True


@contextmanager
def _evaluate_network_settings(offline: bool) -> Iterator[None]:
    """evaluate reads these module globals at call time: offline mode, and the download-count HEAD request."""
    from evaluate import config as evaluate_config

    saved = evaluate_config.HF_EVALUATE_OFFLINE, evaluate_config.HF_UPDATE_DOWNLOAD_COUNTS
    evaluate_config.HF_EVALUATE_OFFLINE = saved[0] or offline
    evaluate_config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        yield
    finally:
        evaluate_config.HF_EVALUATE_OFFLINE, evaluate_config.HF_UPDATE_DOWNLOAD_COUNTS = saved


# ------------------------------------------------------------------------------------------- helpers


def classification_metrics(
    predictions: Any, references: Any, label_names: Sequence[str], multilabel: bool = False
) -> dict[str, float]:
    """accuracy, f1_micro, f1_macro, precision_macro, recall_macro (+ f1_samples when multilabel).

    Single-label: `predictions`/`references` are class ids in `range(len(label_names))` (references equal
    to -100 are dropped). Multilabel: (n, len(label_names)) 0/1 indicator matrices; accuracy is then the
    subset (exact-match) accuracy. Classes absent from the predictions or references score 0 (zero_division=0,
    no warning) and still count in the macro averages. Computed by the bundled evaluate modules.
    """
    preds, refs, labels = _prepare(predictions, references, label_names, multilabel)
    config = "multilabel" if multilabel else None
    inputs = {"predictions": preds, "references": refs}
    prf = {"labels": labels, "zero_division": 0.0}
    scores = {"accuracy": load_metric("accuracy", config).compute(**inputs)["accuracy"]}
    f1 = load_metric("f1", config)
    for average in ("micro", "macro") + (("samples",) if multilabel else ()):
        scores[f"f1_{average}"] = f1.compute(**inputs, average=average, **prf)["f1"]
    scores["precision_macro"] = load_metric("precision", config).compute(**inputs, average="macro", **prf)[
        "precision"
    ]
    scores["recall_macro"] = load_metric("recall", config).compute(**inputs, average="macro", **prf)["recall"]
    return {key: float(value) for key, value in scores.items()}


def collapse_warning(
    predictions: Any, label_names: Sequence[str], multilabel: bool = False, where: str = "validation"
) -> str | None:
    """One line when every prediction is the same class (multi-label: the same label set), i.e. the model
    learned the class prior only, naming the likely fixes; None otherwise (or for fewer than 2 rows)."""
    preds = np.asarray(predictions)
    if len(preds) < 2 or len(label_names) < 2:
        return None
    if multilabel:
        if not (preds == preds[0]).all():
            return None
        names = [label_names[j] for j in np.flatnonzero(preds[0])]
        what = f"the label set [{', '.join(names)}]" if names else "no label"
    else:
        if len(np.unique(preds)) > 1:
            return None
        what = f"{label_names[int(preds[0])]!r}"
    return (
        f"all {len(preds)} {where} predictions are {what}: the model learned only the class prior. Likely "
        "fixes: a larger --learning_rate for head-only/adapter strategies (frozen ~1e-2, lora ~1e-3), more "
        "--num_train_epochs, --pooling mean for sentence-embedding models, or check that the labels follow "
        "the texts"
    )


def per_class_report(
    predictions: Any, references: Any, label_names: Sequence[str], multilabel: bool = False
) -> dict[str, Any]:
    """scikit-learn's classification report as a dict keyed by label name (+ "accuracy"/"micro avg",
    "macro avg", "weighted avg"[, "samples avg"]), every class listed even when absent; JSON-serializable.
    `support` is a count of rows, an int (scikit-learn gives floats in the averages)."""
    preds, refs, labels = _prepare(predictions, references, label_names, multilabel)
    report = load_metric("classification_report", "multilabel" if multilabel else None).compute(
        predictions=preds, references=refs, labels=labels, target_names=list(label_names), zero_division=0.0
    )["classification_report"]
    for scores in report.values():
        if isinstance(scores, dict) and "support" in scores:
            scores["support"] = int(scores["support"])
    return report


def confusion(
    predictions: Any,
    references: Any,
    label_names: Sequence[str],
    multilabel: bool = False,
    normalize: str | None = None,
) -> list:
    """The confusion matrix as nested lists: rows are true classes, columns predicted ones, in `label_names`
    order. Multilabel: one [[TN, FP], [FN, TP]] per label. `normalize`: None, "true", "pred" or "all"."""
    preds, refs, labels = _prepare(predictions, references, label_names, multilabel)
    kwargs = {"normalize": normalize} if normalize is not None else {}
    result = load_metric("confusion_matrix", "multilabel" if multilabel else None).compute(
        predictions=preds, references=refs, labels=labels, **kwargs
    )
    return result["confusion_matrix"]


def make_compute_metrics(
    label_names: Sequence[str], multilabel: bool = False, threshold: float = 0.5
) -> Callable[..., dict[str, float]]:
    """A `compute_metrics` for `transformers.Trainer`, returning `classification_metrics(...)`.

    Takes an `EvalPrediction` (or a `(predictions, label_ids)` tuple). A tuple of model outputs uses its
    first element (the logits). Single-label: argmax over the last axis (1-D integer predictions, e.g. from
    `preprocess_logits_for_metrics`, are used as ids). Multilabel: sigmoid(logits) > threshold (integer or
    boolean predictions are used as they are); float references are rounded. Also works with
    `TrainingArguments(batch_eval_metrics=True)`: batches are accumulated until `compute_result=True`.
    """
    names = list(label_names)
    if not names:
        raise ConfigError("make_compute_metrics needs at least one label name")
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"threshold must be a probability strictly between 0 and 1, got {threshold}")
    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def compute_metrics(eval_pred: Any, compute_result: bool | None = None) -> dict[str, float]:
        if hasattr(eval_pred, "predictions"):
            raw_predictions, raw_labels = eval_pred.predictions, eval_pred.label_ids
        else:
            raw_predictions, raw_labels = eval_pred[0], eval_pred[1]
        predictions = _decode_predictions(
            _to_numpy(_first(raw_predictions)), len(names), multilabel, threshold
        )
        references = _to_numpy(_first(raw_labels))
        if compute_result is None:
            return classification_metrics(predictions, references, names, multilabel)
        pending.append((predictions, references))
        if not compute_result:
            return {}
        batches = list(pending)
        pending.clear()
        return classification_metrics(
            np.concatenate([p for p, _ in batches]),
            np.concatenate([r for _, r in batches]),
            names,
            multilabel,
        )

    return compute_metrics


def make_preprocess_logits(multilabel: bool = False, threshold: float = 0.5) -> Callable[..., Any]:
    """A `preprocess_logits_for_metrics` for `transformers.Trainer` that keeps only predicted ids.

    Without it the Trainer gathers every evaluation logit (and any extra model outputs) in memory until the
    end of evaluation; with it only an integer per row (single-label: argmax) or per label (multilabel:
    sigmoid(logit) > threshold) is kept. `make_compute_metrics` accepts either form.
    """
    cut = float(np.log(threshold / (1.0 - threshold)))  # sigmoid(x) > threshold  <=>  x > logit(threshold)

    def preprocess(logits: Any, labels: Any) -> Any:
        logits = _first(logits)
        return (logits > cut).int() if multilabel else logits.argmax(dim=-1)

    return preprocess


# ---------------------------------------------------------------------------------------- internals


def _first(value: Any) -> Any:
    """The first array of a tuple of model outputs (the logits), or of label arrays; other values unchanged."""
    while isinstance(value, tuple) and value and np.ndim(value[0]) > 0 and hasattr(value[0], "shape"):
        value = value[0]
    return value


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (batch_eval_metrics passes tensors, maybe bf16 on GPU)
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _decode_predictions(
    logits: np.ndarray, num_labels: int, multilabel: bool, threshold: float
) -> np.ndarray:
    is_integer = logits.dtype.kind in "iub"
    if multilabel:
        if logits.ndim != 2 or logits.shape[1] != num_labels:
            raise DataError(
                f"multilabel predictions must have shape (n, {num_labels}) for {num_labels} labels, "
                f"got {logits.shape}"
            )
        if is_integer:
            return logits.astype(np.int64)
        from scipy.special import expit

        return (expit(logits.astype(np.float64)) > threshold).astype(np.int64)
    if logits.ndim == 1 and is_integer:
        return logits.astype(np.int64)
    if logits.ndim != 2 or logits.shape[1] != num_labels:
        raise DataError(
            f"predictions must be logits of shape (n, {num_labels}) for {num_labels} labels (or 1-D class ids), "
            f"got {logits.shape}"
        )
    return logits.argmax(axis=-1)


def _prepare(
    predictions: Any, references: Any, label_names: Sequence[str], multilabel: bool
) -> tuple[list, list, list[int]]:
    """Validate and convert to the lists the modules take; returns (predictions, references, label ids)."""
    names = list(label_names)
    if not names:
        raise DataError("label_names is empty: pass the class names in label-id order")
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"label_names has duplicates {duplicates}: each class needs a distinct name")
    preds, refs = _to_numpy(predictions), _to_numpy(references)
    if len(preds) != len(refs):
        raise DataError(f"{len(preds)} predictions but {len(refs)} references: they must pair up")
    n = len(names)
    if multilabel:
        for what, arr in (("predictions", preds), ("references", refs)):
            if arr.ndim != 2 or arr.shape[1] != n:
                raise DataError(
                    f"multilabel {what} must be a 0/1 matrix of shape (n, {n}) for {n} label names, got {arr.shape}"
                )
        refs = np.rint(refs) if refs.dtype.kind == "f" else refs
        for what, arr in (("predictions", preds), ("references", refs)):
            bad = arr[(arr != 0) & (arr != 1)]
            if bad.size:
                raise DataError(f"multilabel {what} must be 0/1 indicators, found {bad.flat[0].item()!r}")
    else:
        if preds.ndim != 1 or refs.ndim != 1:
            raise DataError(
                f"predictions and references must be 1-D class ids, got shapes {preds.shape} and {refs.shape} "
                "(pass logits through make_compute_metrics, or argmax them first)"
            )
        keep = refs != IGNORE_INDEX
        preds, refs = preds[keep], refs[keep]
        for what, arr in (("predictions", preds), ("references", refs)):
            bad = arr[(arr < 0) | (arr >= n) | (arr != np.rint(arr))] if arr.size else arr
            if bad.size:
                raise DataError(
                    f"{what} contain label id {bad.flat[0].item()!r}, outside 0..{n - 1} for the {n} label names"
                )
    if len(refs) == 0:
        raise DataError("no examples to score: predictions and references are empty")
    return preds.astype(np.int64).tolist(), refs.astype(np.int64).tolist(), list(range(n))
