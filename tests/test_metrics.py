"""Bundled evaluate metric modules (offline, scikit-learn math) and the nlptransfer.evaluation.metrics helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager

import datasets
import evaluate
import numpy as np
import pytest
from sklearn import metrics as skm
from transformers import EvalPrediction

from nlptransfer.errors import ConfigError, DataError, NlpTransferError
from nlptransfer.evaluation import metrics as m

N_CLASSES = 4
LABEL_NAMES = ["neg", "neu", "pos", "mixed"]
PRF = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(0)
    refs = rng.integers(0, N_CLASSES, 300)
    preds = np.where(rng.random(300) < 0.6, refs, rng.integers(0, N_CLASSES, 300))
    return preds, refs


@pytest.fixture(scope="module")
def multilabel():
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 2, (200, N_CLASSES))
    preds = np.where(rng.random((200, N_CLASSES)) < 0.7, refs, 1 - refs)
    return preds, refs


@pytest.fixture(scope="module")
def modules():
    """Every bundled module, loaded the way a user would: evaluate.load(<path to the script>)."""
    return {
        (name, config): evaluate.load(m.bundled_metric_path(name), config, keep_in_memory=True)
        for name in m.BUNDLED_METRICS
        for config in (None, "multilabel")
    }


@contextmanager
def _quiet():
    """Turn warnings (e.g. sklearn's UndefinedMetricWarning) into errors inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------------------------------- the modules


@pytest.mark.parametrize("name", m.BUNDLED_METRICS)
def test_modules_are_evaluate_metrics_named_like_the_hub(modules, name):
    single, multi = modules[(name, None)], modules[(name, "multilabel")]
    assert isinstance(single, evaluate.Metric)
    assert single.name == name
    assert single.config_name == "default" and multi.config_name == "multilabel"
    assert single.description and single.citation and single.inputs_description
    int32 = datasets.Value("int32")
    assert dict(single.features) == {"predictions": int32, "references": int32}
    assert dict(multi.features) == {
        "predictions": datasets.Sequence(int32),
        "references": datasets.Sequence(int32),
    }


def test_accuracy_matches_sklearn(modules, multiclass, multilabel):
    preds, refs = multiclass
    out = modules[("accuracy", None)].compute(predictions=preds, references=refs)
    assert out == {"accuracy": pytest.approx(skm.accuracy_score(refs, preds))}
    assert type(out["accuracy"]) is float
    weights = np.linspace(0.1, 2, len(refs))
    out = modules[("accuracy", None)].compute(
        predictions=preds, references=refs, normalize=False, sample_weight=weights
    )
    assert out["accuracy"] == pytest.approx(
        skm.accuracy_score(refs, preds, normalize=False, sample_weight=weights)
    )
    preds, refs = multilabel
    out = modules[("accuracy", "multilabel")].compute(predictions=preds, references=refs)
    assert out == {"accuracy": pytest.approx(skm.accuracy_score(refs, preds))}


@pytest.mark.parametrize("name", sorted(PRF))
def test_prf_matches_sklearn_multiclass(modules, multiclass, name):
    preds, refs = multiclass
    module, fn = modules[(name, None)], PRF[name]
    for average in ("micro", "macro", "weighted"):
        out = module.compute(predictions=preds, references=refs, average=average)
        assert set(out) == {name} and type(out[name]) is float
        assert out[name] == pytest.approx(fn(refs, preds, average=average)), average
    per_label = module.compute(predictions=preds, references=refs, average=None)[name]
    assert isinstance(per_label, np.ndarray)  # as the Hub module returns it
    np.testing.assert_allclose(per_label, fn(refs, preds, average=None))
    subset = module.compute(predictions=preds, references=refs, average="macro", labels=[2, 0])[name]
    assert subset == pytest.approx(fn(refs, preds, average="macro", labels=[2, 0]))
    # binary (the Hub default average) with pos_label
    bp, br = (preds > 1).astype(int), (refs > 1).astype(int)
    assert module.compute(predictions=bp, references=br)[name] == pytest.approx(fn(br, bp))
    assert module.compute(predictions=bp, references=br, pos_label=0)[name] == pytest.approx(
        fn(br, bp, pos_label=0)
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # same on both sides
@pytest.mark.parametrize("name", sorted(PRF))
def test_prf_matches_sklearn_multilabel(modules, multilabel, name):
    preds, refs = multilabel
    module, fn = modules[(name, "multilabel")], PRF[name]
    for average in ("micro", "macro", "weighted", "samples"):
        out = module.compute(predictions=preds, references=refs, average=average)
        assert out[name] == pytest.approx(fn(refs, preds, average=average)), average
    np.testing.assert_allclose(
        module.compute(predictions=preds, references=refs, average=None)[name], fn(refs, preds, average=None)
    )


@pytest.mark.parametrize("name", sorted(PRF))
def test_prf_zero_division_for_absent_labels(modules, name):
    refs, preds = [0, 1, 2, 0, 1, 2], [0, 0, 0, 0, 0, 0]  # classes 1 and 2 never predicted, 3 never seen
    module, fn = modules[(name, None)], PRF[name]
    for zero_division in (0.0, 1.0):
        with _quiet():
            out = module.compute(
                predictions=preds,
                references=refs,
                average="macro",
                labels=[0, 1, 2, 3],
                zero_division=zero_division,
            )
        expected = fn(refs, preds, average="macro", labels=[0, 1, 2, 3], zero_division=zero_division)
        assert out[name] == pytest.approx(expected)
    nan = module.compute(predictions=preds, references=refs, average=None, labels=[3], zero_division=np.nan)[
        name
    ]
    assert np.isnan(nan)  # a single per-label score comes back as a float, as in the Hub module


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")  # same on both sides
def test_classification_report_matches_sklearn(modules, multiclass, multilabel):
    preds, refs = multiclass
    out = modules[("classification_report", None)].compute(
        predictions=preds, references=refs, target_names=LABEL_NAMES
    )
    assert set(out) == {"classification_report"}
    report = out["classification_report"]
    assert report == skm.classification_report(refs, preds, target_names=LABEL_NAMES, output_dict=True)
    assert set(report["neg"]) == {"precision", "recall", "f1-score", "support"}
    json.dumps(report)
    preds, refs = multilabel
    out = modules[("classification_report", "multilabel")].compute(
        predictions=preds, references=refs, labels=[0, 1, 2, 3]
    )
    assert out["classification_report"] == skm.classification_report(
        refs, preds, labels=[0, 1, 2, 3], output_dict=True
    )
    assert "samples avg" in out["classification_report"]


def test_confusion_matrix_matches_sklearn(modules, multiclass, multilabel):
    preds, refs = multiclass
    module = modules[("confusion_matrix", None)]
    out = module.compute(predictions=preds, references=refs)
    assert set(out) == {"confusion_matrix"}
    assert out["confusion_matrix"] == skm.confusion_matrix(refs, preds).tolist()
    assert type(out["confusion_matrix"]) is list and type(out["confusion_matrix"][0][0]) is int
    reordered = module.compute(predictions=preds, references=refs, labels=[3, 1], normalize="true")[
        "confusion_matrix"
    ]
    np.testing.assert_allclose(reordered, skm.confusion_matrix(refs, preds, labels=[3, 1], normalize="true"))
    preds, refs = multilabel
    out = modules[("confusion_matrix", "multilabel")].compute(predictions=preds, references=refs)
    assert out["confusion_matrix"] == skm.multilabel_confusion_matrix(refs, preds).tolist()


def test_modules_accumulate_batches_like_evaluate(modules, multiclass):
    preds, refs = multiclass
    f1 = evaluate.load(m.bundled_metric_path("f1"), keep_in_memory=True)
    for start in range(0, len(refs), 64):
        f1.add_batch(predictions=preds[start : start + 64], references=refs[start : start + 64])
    assert f1.compute(average="macro")["f1"] == pytest.approx(skm.f1_score(refs, preds, average="macro"))


# ------------------------------------------------------------------------------------------- loading


def test_load_metric_serves_bundled_modules_and_caches_them():
    m.clear_metric_cache()
    f1 = m.load_metric("f1")
    assert f1 is m.load_metric("f1") is m.load_metric("f1", "default")
    assert m.load_metric("f1", "multilabel") is not f1
    assert m.load_metric("f1", "multilabel").config_name == "multilabel"
    assert f1.compute(predictions=[0, 1, 1], references=[0, 1, 0], average="macro") == {
        "f1": pytest.approx(2 / 3)
    }
    private = m.load_metric("f1", experiment_id="mine")
    assert private is not f1 and private.experiment_id == "mine"


def test_cached_instance_survives_a_failed_compute():
    f1 = m.load_metric("f1")
    with pytest.raises(ValueError, match="average"):
        f1.compute(
            predictions=[0, 1, 2], references=[0, 2, 1]
        )  # multiclass with the default average="binary"
    assert f1.compute(predictions=[0, 1, 1], references=[0, 1, 1], average="micro") == {"f1": 1.0}


def _count_network_attempts(monkeypatch) -> list:
    """Refuse (OSError) and record every name lookup and socket connection made from now on."""
    import socket

    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[-1] if args else kwargs)
        raise OSError("network disabled in this test")

    for owner, name in ((socket, "getaddrinfo"), (socket.socket, "connect"), (socket.socket, "connect_ex")):
        monkeypatch.setattr(owner, name, refuse)
    return attempts


def test_load_metric_unknown_name_offline_is_a_one_line_project_error(monkeypatch):
    from evaluate import config as evaluate_config

    evaluate_offline = evaluate_config.HF_EVALUATE_OFFLINE
    monkeypatch.delenv("HF_EVALUATE_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    attempts = _count_network_attempts(monkeypatch)
    with pytest.raises(m.MetricLoadError) as info:
        m.load_metric("no_such_metric_xyz")
    assert attempts == [], "offline, an unknown metric must not touch the network"
    assert isinstance(info.value, NlpTransferError)
    message = str(info.value)
    assert "\n" not in message
    assert "'no_such_metric_xyz'" in message and "HF_HUB_OFFLINE" in message
    assert all(name in message for name in m.BUNDLED_METRICS)
    assert evaluate_config.HF_EVALUATE_OFFLINE == evaluate_offline  # restored after the call


def test_load_metric_does_not_wait_for_an_unreachable_hub(monkeypatch):
    """No offline variable set, but the Hub endpoint is firewalled: the probe fails, evaluate stays offline."""
    for var in ("HF_EVALUATE_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    import requests

    def firewalled(*args, **kwargs):
        raise requests.ConnectTimeout("timed out")

    monkeypatch.setattr(requests, "head", firewalled)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("evaluate.config.HF_EVALUATE_OFFLINE", False)
    assert m._hub_reachable() is False
    with pytest.raises(m.MetricLoadError, match=r"did not answer within 3 s.*bundled metrics: accuracy"):
        m.load_metric("bleu")


def test_load_metric_missing_local_script():
    with pytest.raises(m.MetricLoadError, match="local metric script"):
        m.load_metric("/nonexistent/dir/my_metric.py")


def test_bundled_scripts_load_offline_in_a_fresh_process(tmp_path):
    """evaluate reads HF_*_OFFLINE at import time: check a fresh process with HF_HUB_OFFLINE/HF_DATASETS_OFFLINE.

    Every name lookup and socket connection is refused and counted: loading a bundled metric and failing on an unknown one
    must not even try the network (retries against an unreachable Hub cost ~24 s each).
    """
    script = (
        "import socket\n"
        "attempts = []\n"
        "def refuse(*args, **kwargs):\n"
        "    attempts.append(args[-1] if args else kwargs)\n"
        "    raise OSError('network disabled in this test')\n"
        "socket.getaddrinfo = socket.socket.connect = socket.socket.connect_ex = refuse\n"
        "import evaluate\n"
        "from nlptransfer.evaluation.metrics import bundled_metric_path, load_metric, MetricLoadError\n"
        "acc = evaluate.load(bundled_metric_path('accuracy'))\n"
        "assert acc.compute(predictions=[0, 1], references=[0, 0]) == {'accuracy': 0.5}\n"
        "try:\n"
        "    load_metric('accuracy_from_the_hub_xyz')\n"
        "except MetricLoadError:\n"
        "    pass\n"
        "print(len(attempts), attempts[:3])\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    offline = {**base, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=offline, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].startswith("0 "), result.stdout


# ------------------------------------------------------------------------------------------ helpers


def test_classification_metrics_multiclass(multiclass):
    preds, refs = multiclass
    scores = m.classification_metrics(preds, refs, LABEL_NAMES)
    assert list(scores) == ["accuracy", "f1_micro", "f1_macro", "precision_macro", "recall_macro"]
    assert all(type(v) is float for v in scores.values())
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(refs, preds))
    assert scores["f1_micro"] == pytest.approx(skm.f1_score(refs, preds, average="micro"))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(refs, preds, average="macro"))
    assert scores["precision_macro"] == pytest.approx(skm.precision_score(refs, preds, average="macro"))
    assert scores["recall_macro"] == pytest.approx(skm.recall_score(refs, preds, average="macro"))
    # a datasets Column / plain lists work too
    assert m.classification_metrics(list(preds), refs.tolist(), LABEL_NAMES) == scores


def test_classification_metrics_multilabel(multilabel):
    preds, refs = multilabel
    scores = m.classification_metrics(preds, refs, LABEL_NAMES, multilabel=True)
    assert list(scores) == [
        "accuracy",
        "f1_micro",
        "f1_macro",
        "f1_samples",
        "precision_macro",
        "recall_macro",
    ]
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(refs, preds))
    assert scores["f1_samples"] == pytest.approx(
        skm.f1_score(refs, preds, average="samples", zero_division=0)
    )
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(refs, preds, average="macro"))


def test_labels_absent_from_predictions_score_zero_without_warnings():
    refs = [0, 1, 2, 0, 1, 2]
    preds = [0, 0, 1, 0, 0, 1]  # "pos" (2) never predicted, "mixed" (3) never anywhere
    with _quiet():
        scores = m.classification_metrics(preds, refs, LABEL_NAMES)
        report = m.per_class_report(preds, refs, LABEL_NAMES)
        matrix = m.confusion(preds, refs, LABEL_NAMES)
    labels = [0, 1, 2, 3]
    assert scores["f1_macro"] == pytest.approx(
        skm.f1_score(refs, preds, average="macro", labels=labels, zero_division=0)
    )
    assert scores["precision_macro"] == pytest.approx(
        skm.precision_score(refs, preds, average="macro", labels=labels, zero_division=0)
    )
    assert report["pos"]["precision"] == 0.0 and report["mixed"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1-score": 0.0,
        "support": 0.0,
    }
    assert matrix == [[2, 0, 0, 0], [2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0]]
    json.dumps({"report": report, "matrix": matrix})


def test_per_class_report_and_confusion_multilabel(multilabel):
    preds, refs = multilabel
    report = m.per_class_report(preds, refs, LABEL_NAMES, multilabel=True)
    assert report == skm.classification_report(
        refs, preds, labels=[0, 1, 2, 3], target_names=LABEL_NAMES, output_dict=True, zero_division=0
    )
    assert (
        m.confusion(preds, refs, LABEL_NAMES, multilabel=True)
        == skm.multilabel_confusion_matrix(refs, preds).tolist()
    )


@pytest.mark.parametrize(
    ("preds", "refs", "match"),
    [
        ([0, 1], [0], "2 predictions but 1 references"),
        ([0, 4], [0, 1], "label id 4, outside 0..3"),
        ([], [], "no examples"),
        ([[0.1, 0.9]], [1], "1-D class ids"),
    ],
)
def test_bad_inputs_are_data_errors(preds, refs, match):
    with pytest.raises(DataError, match=match):
        m.classification_metrics(preds, refs, LABEL_NAMES)


def test_ignore_index_references_are_dropped():
    scores = m.classification_metrics([0, 1, 3], [0, 1, -100], LABEL_NAMES)
    assert scores["accuracy"] == 1.0


# ---------------------------------------------------------------------------------- compute_metrics


def test_compute_metrics_with_tuple_of_logits(multiclass):
    _, refs = multiclass
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(len(refs), N_CLASSES)).astype(np.float32)
    hidden = rng.normal(size=(len(refs), 7, 3))
    compute_metrics = m.make_compute_metrics(LABEL_NAMES)
    scores = compute_metrics(EvalPrediction(predictions=(logits, hidden), label_ids=refs))
    preds = logits.argmax(-1)
    assert scores == m.classification_metrics(preds, refs, LABEL_NAMES)
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(refs, preds, average="macro"))
    assert compute_metrics(EvalPrediction(predictions=logits, label_ids=refs)) == scores
    assert compute_metrics((logits, refs)) == scores  # old-style tuple unpacking


def test_compute_metrics_multilabel_threshold(multilabel):
    _, refs = multilabel
    rng = np.random.default_rng(3)
    logits = rng.normal(size=refs.shape)
    for threshold in (0.5, 0.8):
        compute_metrics = m.make_compute_metrics(LABEL_NAMES, multilabel=True, threshold=threshold)
        scores = compute_metrics(EvalPrediction(predictions=(logits,), label_ids=refs.astype(np.float32)))
        preds = (1 / (1 + np.exp(-logits)) > threshold).astype(int)
        assert scores == m.classification_metrics(preds, refs, LABEL_NAMES, multilabel=True)
        assert "f1_samples" in scores


def test_compute_metrics_batched_like_batch_eval_metrics(multiclass):
    torch = pytest.importorskip("torch")
    _, refs = multiclass
    logits = torch.randn(len(refs), N_CLASSES, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    labels = torch.as_tensor(refs)
    compute_metrics = m.make_compute_metrics(LABEL_NAMES)
    for start in range(0, len(refs), 128):
        end = start + 128
        out = compute_metrics(
            EvalPrediction(predictions=logits[start:end], label_ids=labels[start:end]),
            compute_result=end >= len(refs),
        )
    assert out == m.classification_metrics(logits.float().argmax(-1).numpy(), refs, LABEL_NAMES)


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_preprocess_logits_keeps_ids_and_gives_the_same_scores(multiclass, multilabel, threshold):
    torch = pytest.importorskip("torch")
    _, refs = multiclass
    logits = torch.randn(len(refs), N_CLASSES, generator=torch.Generator().manual_seed(4))
    ids = m.make_preprocess_logits()((logits, torch.zeros(1)), torch.as_tensor(refs))
    assert ids.shape == (len(refs),) and not ids.is_floating_point()
    compute_metrics = m.make_compute_metrics(LABEL_NAMES)
    assert compute_metrics((ids.numpy(), refs)) == compute_metrics((logits.numpy(), refs))

    _, ml_refs = multilabel
    ml_logits = torch.randn(*ml_refs.shape, generator=torch.Generator().manual_seed(5))
    kept = m.make_preprocess_logits(multilabel=True, threshold=threshold)(ml_logits, None)
    assert kept.shape == ml_refs.shape and not kept.is_floating_point()
    ml_metrics = m.make_compute_metrics(LABEL_NAMES, multilabel=True, threshold=threshold)
    assert ml_metrics((kept.numpy(), ml_refs)) == ml_metrics((ml_logits.numpy(), ml_refs))


def test_make_compute_metrics_rejects_bad_config():
    with pytest.raises(ConfigError):
        m.make_compute_metrics(LABEL_NAMES, multilabel=True, threshold=1.5)
    with pytest.raises(DataError, match=r"shape \(n, 4\)"):
        m.make_compute_metrics(LABEL_NAMES)(
            EvalPrediction(predictions=np.zeros((3, 2)), label_ids=np.zeros(3))
        )
