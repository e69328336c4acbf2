"""Domain adaptation: the losses, the trainers on a tiny model, selection scores, the recipe and its bad inputs."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from tiny import sentiment_rows, tiny_model_dir, write_csv
from transformers import AutoModelForSequenceClassification, pipeline

from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.errors import ConfigError, DataError, run_cli
from nlptransfer.features import rank_models
from nlptransfer.losses import coral_loss, dann_lambda, grad_reverse, mmd_loss
from nlptransfer.modeling import build_classifier, load_tokenizer, save_classifier
from nlptransfer.recipes import domain_adaptation
from nlptransfer.selection import (
    h_score,
    importance_weights,
    logme,
    mmd,
    negative_transfer_check,
    proxy_a_distance,
    rank_by_score,
)
from nlptransfer.trainers.adaptation import (
    DomainAdversarialConfig,
    DomainAdversarialTrainer,
    FeatureAlignmentConfig,
    FeatureAlignmentTrainer,
    ImportanceWeightedTrainer,
    ImportanceWeightingConfig,
    pair_with_target,
)
from nlptransfer.training import encode

NAMES = ["negative", "neutral", "positive"]
PROBES = ["good movie", "awful boring plot", "the film was not bad"]


# ----------------------------------------------------------------------------------------------
# losses


def test_gradient_reversal_flips_the_sign_of_gradients():
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(4, 3)
    (grad_reverse(x, 0.5) * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)
    y = torch.randn(4, 3, requires_grad=True)
    out = grad_reverse(y, 2.0)
    assert torch.equal(out, y)  # identity forward
    (out * w).sum().backward()
    assert torch.allclose(y.grad, -2.0 * w)


def test_dann_schedule():
    assert dann_lambda(0.0) == 0.0
    assert 0.99 < dann_lambda(1.0) < 1.0
    assert dann_lambda(0.1) < dann_lambda(0.5)


@pytest.mark.parametrize("loss", [coral_loss, mmd_loss], ids=["coral", "mmd"])
def test_alignment_losses_zero_for_identical_positive_for_shifted(loss):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    shifted = torch.randn(64, 8, generator=g) * 3.0 + 2.0  # other mean and scale
    assert loss(x, shifted).item() > 1e-3
    same_dist = torch.randn(64, 8, generator=g)
    assert loss(x, shifted).item() > 5 * loss(x, same_dist).item()


# ----------------------------------------------------------------------------------------------
# selection


def test_importance_weights_favour_target_like_source_examples():
    rng = np.random.default_rng(0)
    # Source: half cluster A (around 0), half cluster B (around 3). Target: mostly B.
    a = rng.normal(0.0, 1.0, (200, 5))
    b = rng.normal(3.0, 1.0, (200, 5))
    source = np.concatenate([a, b])
    target = np.concatenate([rng.normal(3.0, 1.0, (180, 5)), rng.normal(0.0, 1.0, (20, 5))])
    w = importance_weights(source, target, clip=10.0)
    assert w.shape == (400,) and w.mean() == pytest.approx(1.0, abs=1e-5)
    assert w[200:].mean() > 3 * w[:200].mean()
    assert w.max() <= 10.0 * 1.5 and w.min() > 0


def test_logme_and_h_score_rank_informative_features_above_random():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] * 2.0 + rng.normal(0, 0.5, (300, 3))
    informative = np.concatenate([informative, rng.normal(0, 1, (300, 13))], axis=1)
    random_feats = rng.normal(0, 1, (300, 16))
    assert logme(informative, y) > logme(random_feats, y) + 0.1
    assert h_score(informative, y) > h_score(random_feats, y)
    ranked = rank_by_score({"random": random_feats, "informative": informative}, y)
    assert [name for name, _ in ranked] == ["informative", "random"]


def test_domain_distances_small_for_same_large_for_shifted():
    rng = np.random.default_rng(1)
    x, same = rng.normal(0, 1, (300, 10)), rng.normal(0, 1, (300, 10))
    far = rng.normal(2, 1, (300, 10))
    assert proxy_a_distance(x, same) < 0.5 < 1.5 < proxy_a_distance(x, far)
    assert mmd(x, far) > 10 * mmd(x, same)


def test_negative_transfer_guard_warns_only_when_worse(caplog):
    with caplog.at_level(logging.WARNING, logger="nlptransfer"):
        ok = negative_transfer_check(0.70, 0.60, what="movies->tweets dann", seed_std=0.01)
        assert not caplog.records
        bad = negative_transfer_check(0.50, 0.60, what="movies->nyt dann", seed_std=0.01)
    assert not ok["negative_transfer"] and bad["negative_transfer"]
    assert bad["delta"] == pytest.approx(-0.10)
    assert "NEGATIVE TRANSFER" in caplog.text and "movies->nyt dann" in caplog.text


# ----------------------------------------------------------------------------------------------
# trainers on a tiny model


@pytest.fixture(scope="module")
def tiny_data(model_dir):
    tokenizer = load_tokenizer(str(model_dir))
    rows = sentiment_rows(48)
    source = Dataset.from_dict(
        {"text": [r["review"] for r in rows], "label": [NAMES.index(r["sentiment"]) for r in rows]}
    )
    target = Dataset.from_dict(
        {"text": [r["review"] + " very very" for r in sentiment_rows(32, seed=5)], "label": [0] * 32}
    )
    enc = encode(DatasetDict(train=source, target=target), tokenizer, 32, False, 3)
    return tokenizer, enc["train"], enc["target"].remove_columns("labels")


def _train_and_save(kind, strategy, model_dir, tiny_data, out: Path):
    tokenizer, source, target = tiny_data
    torch.manual_seed(0)
    model = build_classifier(
        ModelArguments(model_name_or_path=str(model_dir)), TransferArguments(strategy=strategy), NAMES
    )
    common = {
        "max_steps": 3,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-2,
        "report_to": "none",
        "use_cpu": True,
        "logging_steps": 1,
        "save_strategy": "no",
    }
    kw = {"model": model, "train_dataset": source, "processing_class": tokenizer}
    if kind == "dann":
        trainer = DomainAdversarialTrainer(
            args=DomainAdversarialConfig(str(out / "tr"), **common), target_dataset=target, **kw
        )
        before = [p.detach().clone() for p in trainer.domain_classifier.parameters()]
    elif kind == "coral":
        trainer = FeatureAlignmentTrainer(
            args=FeatureAlignmentConfig(str(out / "tr"), alignment="coral", **common),
            target_dataset=target,
            **kw,
        )
    else:
        rng = np.random.default_rng(0)
        trainer = ImportanceWeightedTrainer(
            args=ImportanceWeightingConfig(str(out / "tr"), **common),
            source_features=rng.normal(0, 1, (len(source), 6)),
            target_features=rng.normal(0.5, 1, (40, 6)),
            **kw,
        )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    if kind == "iw":  # a density ratio per source row: mean 1, not uniform
        weights = trainer.instance_weights
        assert weights.mean() == pytest.approx(1.0, abs=1e-4) and weights.std() > 0.01
    else:  # every step's loss is the source loss plus the adaptation loss (adaptation_weight 1)
        for entry in logs:
            assert entry["loss"] == pytest.approx(entry["source_loss"] + entry["adaptation_loss"], abs=1e-3)
    if kind == "dann":
        assert "domain_accuracy" in logs[-1] and logs[-1]["grl_lambda"] > 0
        after = list(trainer.domain_classifier.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # it trains too
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(**tokenizer(PROBES, return_tensors="pt", padding=True)).logits
    save_classifier(trainer.model, tokenizer, out / "saved")
    return trainer, torch.softmax(logits, -1)


@pytest.mark.parametrize("strategy", ["full", "lora", "frozen"])
@pytest.mark.parametrize("kind", ["dann", "coral", "iw"])
def test_trainers_run_and_save_plain_models(kind, strategy, model_dir, tiny_data, tmp_path):
    trainer, probs = _train_and_save(kind, strategy, model_dir, tiny_data, tmp_path)
    expected = "pooled" if strategy != "frozen" else "logits"
    if kind != "iw":
        assert trainer.align_on == expected
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert reloaded.config.id2label[0] == "negative"
    assert not any("domain" in k for k in reloaded.state_dict())  # the domain classifier is not saved
    clf = pipeline("text-classification", model=str(tmp_path / "saved"), top_k=None)
    # The saved plain model predicts what the trained (possibly peft-wrapped) model did.
    for text, expected in zip(PROBES, probs, strict=True):
        got = {d["label"]: d["score"] for d in clf([text])[0]}
        assert [got[name] for name in NAMES] == pytest.approx(expected.tolist(), abs=1e-5)


def test_config_rejects_negative_weights():
    with pytest.raises(ConfigError, match="reversal_weight=-1.0 must be >= 0"):
        DomainAdversarialConfig("x", reversal_weight=-1.0, report_to="none")
    with pytest.raises(ConfigError, match="unknown alignment 'kl'"):
        FeatureAlignmentConfig("x", alignment="kl", report_to="none")


# ----------------------------------------------------------------------------------------------
# the recipe


def _domain_csv(path: Path, n: int, seed: int, extra: str = "", labels=("negative", "neutral", "positive")):
    """A tiny sentiment domain (`extra` appended to 80% of texts); rows outside `labels` are dropped, and
    two non-sentiment `labels` relabel the rows (a topic label set)."""
    rows = sentiment_rows(n, seed=seed)
    rng = random.Random(seed)
    sentiment = ["negative", "neutral", "positive"]
    for r in rows:
        r["review"] = (r["review"] + " " + extra).strip() if rng.random() < 0.8 else r["review"]
        if labels[0] not in sentiment:
            r["sentiment"] = labels[sentiment.index(r["sentiment"]) % 2]
    rows = [r for r in rows if r["sentiment"] in labels]
    return write_csv(path, rows)


def _argv(model_dir, out, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--output_dir",
        str(out),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--num_train_epochs",
        "2",
        "--per_device_train_batch_size",
        "16",
        "--per_device_eval_batch_size",
        "32",
        "--learning_rate",
        "1e-2",
        "--logging_steps",
        "5",
        "--use_cpu",
        "true",
        "--target_labelled_samples",
        "20",
        "--distance_samples",
        "60",
        *extra,
    ]


def test_matrix_writes_table_csv_heatmap_and_summary(model_dir, tmp_path, tmp_cache):
    a = _domain_csv(tmp_path / "a.csv", 60, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 60, 2, "very very")
    c = _domain_csv(tmp_path / "c.csv", 60, 3, "plot actor")
    out = tmp_path / "matrix"
    argv = [
        "--matrix",
        "true",
        "--domains",
        str(a),
        str(b),
        str(c),
        "--method",
        "dann",
        "--negative_transfer_guard",
        "false",
    ]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv))
    for name in (
        "cross_domain.md",
        "cross_domain.csv",
        "cross_domain.png",
        "metrics.json",
        "README.md",
        "run.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "cross_domain.png").read_bytes()[:4] == b"\x89PNG"
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and "cross_domain.png" in run["files"]
    assert len(metrics["pairs"]) == 6
    lines = (out / "cross_domain.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 and "proxy A-dist" in lines[0] and "paper 2014" in lines[0]
    pair = metrics["pairs"][f"{a}->{b}"]
    assert set(pair["methods"]) == {"dann"}
    assert "domain_accuracy" in pair["methods"]["dann"]["train_log_seed0"]  # the adversarial loss ran
    assert "proxy_a_distance" in pair["distance"]
    assert set(metrics["summary"]["source_ranking"]) == {str(a), str(b), str(c)}
    assert "LogME ranks sources" in (out / "cross_domain.md").read_text()


def test_single_pair_saves_models_and_runs_the_negative_transfer_guard(model_dir, tmp_path, tmp_cache):
    a = _domain_csv(tmp_path / "a.csv", 60, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 60, 2, "very very")
    out = tmp_path / "pair"
    argv = ["--source", str(a), "--target", str(b), "--method", "mmd", "iw"]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv))
    assert metrics["adapted_representation"] == "logits"
    for method in ("mmd", "iw"):
        clf = pipeline("text-classification", model=str(out / "models" / method))
        assert clf.model.config.id2label == dict(enumerate(NAMES))  # the saved head names the labels
    pair = next(iter(metrics["pairs"].values()))
    assert pair["target_only_baseline"]["n_labelled"] == 20
    guard = pair["methods"]["iw"]["guard"]  # one seed, no known seed std: no verdict, and it says so
    assert not guard["negative_transfer"] and guard["rule"] == "one seed: cannot tell noise from loss"
    assert "adaptation_loss" in pair["methods"]["mmd"]["train_log_seed0"]
    assert "negative transfer" in (out / "results.csv").read_text().splitlines()[0]
    assert (out / "results.md").is_file() and not (out / "cross_domain.png").exists()


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("empty_target", "has no texts"),
        ("labels_differ", r"different label sets: only in source \['neutral'\]"),
        ("bad_method", "unknown method 'adabn'; choose from none, dann, coral, mmd, iw, self_training"),
        ("negative_reversal", "reversal_weight=-0.5 must be >= 0"),
        (
            "absent_target_modules",
            "lora cannot be applied to BertForSequenceClassification.*--target_modules",
        ),
    ],
)
def test_bad_inputs_one_line_exit_2(case, match, model_dir, tmp_path, capsys):
    a = _domain_csv(tmp_path / "a.csv", 30, 1)
    target, extra = _domain_csv(tmp_path / "b.csv", 30, 2), []
    if case == "empty_target":
        target = tmp_path / "empty.csv"
        target.write_text("review,sentiment\n", encoding="utf-8")
    elif case == "labels_differ":
        target = _domain_csv(tmp_path / "b2.csv", 30, 2, labels=("negative", "positive"))
    elif case == "bad_method":
        extra = ["--method", "none", "adabn"]
    elif case == "absent_target_modules":  # the strategy is built before the output directory is touched
        extra = ["--strategy", "lora", "--target_modules", "q_proj"]
    else:
        extra = ["--reversal_weight", "-0.5"]
    out = tmp_path / "out"
    argv = _argv(model_dir, out, "--source", str(a), "--target", str(target), *extra)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(domain_adaptation.main, argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, errors  # (progress bars share stderr)
    assert re.search(match, errors[0]), errors[0]
    assert not out.exists()  # nothing written


def test_api_errors_are_specific():
    with pytest.raises(DataError, match="no rows"):
        pair_with_target(Dataset.from_dict({"x": [1]}), Dataset.from_dict({"x": []}))
    with pytest.raises(DataError, match="single class"):
        logme(np.ones((5, 2)), np.zeros(5, dtype=int))


def test_rank_models_scores_each_candidate_without_fine_tuning(model_dir, tmp_path, tmp_cache):
    other = tiny_model_dir(tmp_path / "other", seed=3)
    rows = sentiment_rows(60)
    texts, labels = [r["review"] for r in rows], [NAMES.index(r["sentiment"]) for r in rows]
    ranked = rank_models([str(model_dir), str(other)], texts, labels)
    assert sorted(name for name, _ in ranked) == sorted([str(model_dir), str(other)])
    assert ranked[0][1] >= ranked[1][1] and all(np.isfinite(score) for _, score in ranked)
