"""Issue 18: self-training (pseudo-labels, rounds, teachers), the noise-aware guard, encoder-adapting methods."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from test_domain_adaptation import _argv as da_argv
from test_domain_adaptation import _domain_csv
from transformers import pipeline

from nlptransfer import adaptation, assets
from nlptransfer.adaptation_args import DomainAdaptationArguments
from nlptransfer.adaptation_report import ranking_agreement, versus_none
from nlptransfer.assets.registry import archive_path
from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.modeling import build_classifier, load_tokenizer, save_classifier
from nlptransfer.recipes import domain_adaptation
from nlptransfer.selection import negative_transfer_check
from nlptransfer.self_training import LexiconTeacher, select_pseudo_labels

NAMES = ["negative", "neutral", "positive"]


# ----------------------------------------------------------------------------------------------
# pseudo-labels


def test_pseudo_labels_are_confident_and_class_balanced():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (300, 3)) + np.array([1.5, -1.0, 0.5])  # classes of very different sizes
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rows, labels = select_pseudo_labels(probs, threshold=0.8)
    assert len(rows) > 0 and np.all(probs[rows].max(1) >= 0.8)
    assert np.array_equal(labels, probs[rows].argmax(1))
    counts = np.bincount(labels, minlength=3)
    assert counts.min() == counts.max() > 0  # the same number per class
    # the most confident of each class: no unpicked row of a class beats a picked one
    for c in range(3):
        cand = np.flatnonzero((probs.argmax(1) == c) & (probs.max(1) >= 0.8))
        picked = rows[labels == c]
        left = np.setdiff1d(cand, picked)
        if len(left):
            assert probs[left, c].max() <= probs[picked, c].min()
    rows_k, labels_k = select_pseudo_labels(probs, top_k=5)
    assert np.bincount(labels_k, minlength=3).tolist() == [5, 5, 5] and np.all(np.diff(rows_k) > 0)
    assert len(select_pseudo_labels(probs, threshold=1.0)[0]) == 0  # nothing that confident


def test_proportional_pseudo_labels_keep_the_teachers_class_proportions():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (600, 3)) + np.array([2.0, -1.0, 0.5])  # classes of very different sizes
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred, conf = probs.argmax(1), probs.max(1)
    rows, labels = select_pseudo_labels(probs, threshold=0.7, balance="proportional")
    # without top_k: every candidate, each with the teacher's label
    assert np.array_equal(rows, np.flatnonzero(conf >= 0.7)) and np.array_equal(labels, pred[rows])
    candidates = np.bincount(pred[conf >= 0.7], minlength=3)
    assert len(set(candidates.tolist())) == 3  # unequal classes, so equal counts would differ
    rows_k, labels_k = select_pseudo_labels(probs, threshold=0.7, top_k=20, balance="proportional")
    counts = np.bincount(labels_k, minlength=3)
    assert 57 <= counts.sum() <= 60  # at most top_k x classes (floors lose at most one row per class)
    fraction = 60 / candidates.sum()
    assert np.array_equal(counts, np.floor(fraction * candidates).astype(int))
    for c in range(3):  # the most confident of each class
        picked, left = (
            rows_k[labels_k == c],
            np.setdiff1d(np.flatnonzero((pred == c) & (conf >= 0.7)), rows_k),
        )
        if len(left):
            assert probs[left, c].max() <= probs[picked, c].min()
    with pytest.raises(Exception, match="unknown pseudo_balance 'even'; choose one of equal, proportional"):
        select_pseudo_labels(probs, top_k=5, balance="even")


def test_a_tie_for_the_top_probability_is_never_a_pseudo_label():
    probs = np.array(
        [[0.4, 0.4, 0.2], [0.6, 0.3, 0.1], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.7, 0.1], [0.1, 0.45, 0.45]]
    )
    for balance in ("equal", "proportional"):
        rows, labels = select_pseudo_labels(probs, balance=balance)
        assert rows.tolist() == [1, 3] and labels.tolist() == [0, 1]
    binary = np.array([[0.5, 0.5], [0.8, 0.2], [0.5, 0.5], [0.3, 0.7]])
    rows, labels = select_pseudo_labels(binary, threshold=0.5, balance="proportional")
    assert rows.tolist() == [1, 3] and labels.tolist() == [0, 1]  # the tied rows reach 0.5, yet no label


# ----------------------------------------------------------------------------------------------
# the lexicon teacher


def _package_analyzer():
    """The vaderSentiment package's analyzer, imported here independently of nlptransfer.self_training."""
    folder = assets.fetch("vader-lexicon")
    spec = importlib.util.spec_from_file_location("vader_for_test", folder / "vaderSentiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SentimentIntensityAnalyzer()


@pytest.mark.slow
@pytest.mark.skipif(
    not archive_path("vader-lexicon").is_file(),
    reason="the vaderSentiment sdist is not cached (make setup)",
)
def test_lexicon_teacher_is_the_packages_scorer_and_labels_obvious_texts():
    texts = [
        "VADER is smart, handsome, and funny.",
        "This movie is terrible, boring and a waste of time.",
        "The book is on the table.",
        "I love this phone, it is great!",
        "The service was awful :(",
    ]
    teacher = LexiconTeacher(NAMES)
    package = _package_analyzer()
    assert teacher.compound(texts).tolist() == [package.polarity_scores(t)["compound"] for t in texts]
    assert teacher.compound(texts[:1])[0] == pytest.approx(0.8316)  # vaderSentiment's README example
    probs = teacher.probabilities(texts)
    assert [NAMES[i] for i in probs.argmax(1)] == ["positive", "negative", "neutral", "positive", "negative"]
    assert np.allclose(probs.sum(1), 1.0)


class _CompoundIsTheText:
    """A stand-in for VADER's analyzer whose compound score is the text itself ("0.2" -> 0.2)."""

    def polarity_scores(self, text):
        return {"compound": float(text)}


@pytest.mark.parametrize("names", [NAMES, ["negative", "positive"]])
def test_lexicon_probabilities_always_favour_the_lexicons_class(names, monkeypatch):
    monkeypatch.setattr("nlptransfer.self_training.vader_analyzer", _CompoundIsTheText)  # no asset needed
    teacher = LexiconTeacher(names)
    compound = [-0.9, -0.3, -0.25, -0.2, -0.15, -0.1, -0.05, -0.04, 0.0, 0.03, 0.04]
    compound += [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.9]  # around 0.1-0.3 the old mapping picked a wrong class
    texts = [str(c) for c in compound]
    assert teacher.compound(texts).tolist() == compound  # the stand-in is the scorer
    probs = teacher.probabilities(texts)
    k = len(names)
    assert probs.shape == (len(compound), k) and np.all(probs >= 0) and np.allclose(probs.sum(1), 1.0)
    decided = [i for i, c in enumerate(compound) if abs(c) >= 0.05]
    band = [i for i, c in enumerate(compound) if abs(c) < 0.05]
    assert len(decided) == 14 and len(band) == 4
    for i in decided:
        j = names.index("positive" if compound[i] > 0 else "negative")
        assert probs[i].argmax() == j and np.sum(probs[i] == probs[i, j]) == 1  # a strict argmax
        assert probs[i, j] == pytest.approx(1 / k + (1 - 1 / k) * abs(compound[i]))
        assert np.allclose(np.delete(probs[i], j), (1 - abs(compound[i])) / k)
    for sign in (1, -1):  # more confident compound, more probable class
        j = names.index("positive" if sign > 0 else "negative")
        p = [probs[i, j] for i in sorted(decided, key=lambda i: sign * compound[i]) if sign * compound[i] > 0]
        assert len(p) == 7 and np.all(np.diff(p) > 0)
    if k == 3:
        assert [probs[i].argmax() for i in band] == [names.index("neutral")] * len(band)
        assert np.all(probs[band].max(1) > 0.96)
        assert probs[decided].max(1).min() == pytest.approx(1 / 3 + 2 / 3 * 0.05)
        # p >= T means |c| >= (T - 1/3) * 1.5: T = 0.67 keeps |c| >= ~0.5 of the decided rows
        rows, _ = select_pseudo_labels(probs, threshold=0.67, balance="proportional")
        assert sorted(compound[i] for i in rows if i in decided) == [-0.9, 0.9]
    else:
        assert np.all(probs[band] == 0.5)  # the lexicon abstains
    rows, labels = select_pseudo_labels(probs, threshold=0.5, balance="proportional")
    if k == 2:
        assert rows.tolist() == decided  # every decided row; never a tied (uniform) row of the neutral band
    else:
        assert set(band) <= set(rows.tolist())
    for i, label in zip(rows, labels, strict=True):  # every pseudo-label is the lexicon's own class
        expected = "positive" if compound[i] >= 0.05 else "negative" if compound[i] <= -0.05 else "neutral"
        assert names[label] == expected


# ----------------------------------------------------------------------------------------------
# the guard


def test_guard_ignores_a_drop_inside_seed_noise_and_flags_a_real_one():
    noise = negative_transfer_check([0.60, 0.63, 0.57], [0.62, 0.59, 0.61])
    assert noise["delta"] < 0 and not noise["negative_transfer"]
    assert noise["verdict"] == "no negative transfer" and noise["rule"].startswith(
        "paired t-test over 3 seeds"
    )
    real = negative_transfer_check([0.40, 0.43, 0.41], [0.60, 0.62, 0.59])
    assert real["negative_transfer"] and real["p_value"] < 0.05 and "paired t-test" in real["rule"]
    # one seed: a tolerance from a known seed std, else no verdict
    assert not negative_transfer_check(0.58, 0.60, seed_std=0.01)["negative_transfer"]  # tol 0.028
    one = negative_transfer_check(0.50, 0.60, seed_std=0.01)
    assert one["negative_transfer"] and one["tolerance"] == pytest.approx(0.0283, abs=1e-4)
    blind = negative_transfer_check(0.30, 0.60)
    assert not blind["negative_transfer"] and blind["verdict"] == "cannot tell"
    assert blind["rule"] == "one seed: cannot tell noise from loss"


def test_versus_none_pairs_the_seeds():
    none = {"f1_micro_per_seed": [0.60, 0.62, 0.58]}
    better = versus_none({"f1_micro_per_seed": [0.70, 0.71, 0.69]}, none)
    assert better["Δ micro vs none"] == pytest.approx(0.10) and better["p vs none"] < 0.01
    noisy = versus_none({"f1_micro_per_seed": [0.66, 0.55, 0.61]}, none)
    assert noisy["p vs none"] > 0.5
    assert versus_none(none, none)["p vs none"] == ""  # none against itself: no test


def test_ranking_agreement_spearman_and_kendall():
    results = [
        {"source": s, "target": "t", "methods": {"none": {"logme": lm, "f1_macro": f1}}}
        for s, lm, f1 in (("a", -0.1, 0.7), ("b", -0.2, 0.6), ("c", -0.3, 0.5), ("d", -0.4, 0.55))
    ]
    agreement = ranking_agreement(results, "none")["logme"]
    assert agreement["spearman_all_pairs"] == pytest.approx(0.8)
    assert agreement["kendall_all_pairs"] == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------------------------
# the recipe on tiny models


def _argv(model_dir, out, *extra):
    """test_domain_adaptation's flags, then 3 steps of 8 rows and the self-training options."""
    steps = ["--max_steps", "3", "--per_device_train_batch_size", "8", "--logging_steps", "1"]
    pseudo = ["--pseudo_threshold", "0.334", "--pseudo_top_k", "4", "--self_training_rounds", "2"]
    return da_argv(model_dir, out, *steps, *pseudo, *extra)


class TrapLabels:
    """Target train labels that record every read; reading them whole fails."""

    def __init__(self, y):
        self.y, self.reads = np.asarray(y), []

    def __getitem__(self, idx):
        self.reads.append(np.asarray(idx).copy())
        return self.y[idx]

    def __len__(self):
        return len(self.y)

    def __array__(self, *args, **kwargs):
        raise AssertionError("the target train labels were read whole")

    def __iter__(self):
        raise AssertionError("the target train labels were iterated")


def test_self_training_never_reads_target_labels_and_retrains_each_round(
    model_dir, tmp_path, tmp_cache, monkeypatch
):
    a = _domain_csv(tmp_path / "a.csv", 60, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 60, 2, "very very")
    traps, calls = [], []
    prepare, train = adaptation.prepare_domain, adaptation.train_method

    def trapped(name, *args, **kwargs):
        domain = prepare(name, *args, **kwargs)
        if name == str(b):
            domain.splits["train"]["label"] = TrapLabels(domain.splits["train"]["label"])
            traps.append(domain)
        return domain

    def counted(setup, method, seed, texts, labels, *args, **kwargs):
        calls.append((method, len(texts), np.asarray(labels).copy()))
        return train(setup, method, seed, texts, labels, *args, **kwargs)

    monkeypatch.setattr(domain_adaptation, "prepare_domain", trapped)
    monkeypatch.setattr(adaptation, "train_method", counted)
    out = tmp_path / "run"
    argv = ["--source", str(a), "--target", str(b), "--method", "self_training", "--strategy", "full"]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv, "--negative_transfer_guard", "false"))
    (domain,) = traps
    # only the lightly labelled sample (LogME / H-score) was read, never the pool the teacher labels
    assert domain.splits["train"]["label"].reads
    for read in domain.splits["train"]["label"].reads:
        assert np.array_equal(read, domain.labelled_idx)
    # one source model, then one retraining per round on source + balanced pseudo-labels
    n_source = len(calls[0][2])
    assert [c[0] for c in calls] == ["none"] * 3 and calls[0][1] == n_source
    st = next(iter(metrics["pairs"].values()))["methods"]["self_training"]
    rounds = st["self_training_seed0"]
    assert [r["round"] for r in rounds] == [1, 2]
    for (_, n, labels), r in zip(calls[1:], rounds, strict=True):
        assert n == n_source + r["pseudo_labels"] > n_source
        counts = [c for c in r["per_class"].values() if c]
        assert len(set(counts)) == 1 and max(counts) <= 4  # class-balanced, top-k 4 per class
        assert np.bincount(labels[n_source:], minlength=3).tolist() == list(r["per_class"].values())
    assert (
        "self_training" in (out / "results.md").read_text()
        and "self_training" in (out / "README.md").read_text()
    )


def test_proportional_balance_reaches_the_selection_and_the_model_card(
    model_dir, tmp_path, tmp_cache, monkeypatch
):
    a = _domain_csv(tmp_path / "a.csv", 40, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 40, 2, "very very")
    seen, select = [], adaptation.select_pseudo_labels

    def recorded(probs, **kwargs):
        seen.append(kwargs)
        return select(probs, **kwargs)

    monkeypatch.setattr(adaptation, "select_pseudo_labels", recorded)
    out = tmp_path / "run"
    argv = ["--source", str(a), "--target", str(b), "--method", "self_training", "--strategy", "full"]
    argv += ["--pseudo_balance", "proportional", "--negative_transfer_guard", "false"]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv))
    assert [k["balance"] for k in seen] == ["proportional", "proportional"]  # both rounds
    assert all(k["threshold"] == 0.334 and k["top_k"] == 4 for k in seen)
    rounds = next(iter(metrics["pairs"].values()))["methods"]["self_training"]["self_training_seed0"]
    assert all(r["pseudo_labels"] <= 4 * 3 for r in rounds)  # at most top_k x classes in all
    assert "teacher-proportional pseudo-labels" in (out / "README.md").read_text()


@pytest.mark.parametrize(
    ("strategy", "pooling", "seeds"), [("full", "mean", 2), ("lora", "mean", 1), ("full", "auto", 1)]
)
def test_every_method_trains_with_the_encoder_adapting_saves_and_reloads(
    strategy, pooling, seeds, model_dir, tmp_path, tmp_cache
):
    a = _domain_csv(tmp_path / "a.csv", 32, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 32, 2, "very very")
    out = tmp_path / "run"
    argv = ["--source", str(a), "--target", str(b), "--strategy", strategy, "--pooling", pooling]
    argv += ["--seeds", str(seeds), "--negative_transfer_guard", str(seeds > 1).lower()]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv))
    assert metrics["adapted_representation"] == "pooled"
    pair = next(iter(metrics["pairs"].values()))
    assert pair["representation_scored"] == "pooled"
    assert set(pair["methods"]) == set(adaptation.METHODS)
    assert "p vs none" in (out / "results.csv").read_text().splitlines()[0]
    assert "domain_accuracy" in pair["methods"]["dann"]["train_log_seed0"]
    for method in adaptation.METHODS:
        scores = pair["methods"][method]
        assert np.isfinite(scores["logme"]) and np.isfinite(scores["h_score"])
        if seeds > 1:  # the guard over seeds (one seed: no baseline trained)
            assert scores["guard"]["rule"].startswith("paired t-test over 2 seeds")
        clf = pipeline("text-classification", model=str(out / "models" / method))
        assert clf.model.config.id2label == dict(enumerate(NAMES))
        assert clf(["good movie"])[0]["label"] in NAMES


def test_teacher_model_dir_score_is_reported_beside_the_student(model_dir, tmp_path, tmp_cache):
    a = _domain_csv(tmp_path / "a.csv", 48, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 48, 2, "very very")
    teacher_dir = tmp_path / "teacher"  # labels in another order: mapped to the source's by name
    model = build_classifier(
        ModelArguments(model_name_or_path=str(model_dir)), TransferArguments(strategy="full"), NAMES[::-1]
    )
    save_classifier(model, load_tokenizer(str(model_dir)), teacher_dir)
    out = tmp_path / "run"
    argv = ["--source", str(a), "--target", str(b), "--method", "none", "self_training"]
    argv += ["--teacher", str(teacher_dir), "--negative_transfer_guard", "false"]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv))
    st = next(iter(metrics["pairs"].values()))["methods"]["self_training"]
    assert st["teacher"]["name"] == str(teacher_dir) and 0 <= st["teacher"]["f1_micro"] <= 1
    header = (out / "results.csv").read_text().splitlines()[0]
    assert "teacher micro-F1" in header and "teacher macro-F1" in header
    assert json.loads((out / "metrics.json").read_text())["pairs"]


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("threshold", r"pseudo_threshold=1.5 is outside \(0, 1\]"),
        ("threshold_zero", r"pseudo_threshold=0.0 is outside \(0, 1\]"),
        ("rounds", "self_training_rounds=0 must be >= 1"),
        ("balance", r"--pseudo_balance.*invalid choice: 'even' \(choose from 'equal', 'proportional'\)"),
        ("teacher_labels", r"teacher .* predicts labels \['bad', 'good'\] but the source has"),
        ("lexicon_topic", r"--teacher lexicon scores sentiment, but the labels are \['politics', 'sports'\]"),
        ("teacher_missing", "--teacher '.*nope' is neither 'source', 'lexicon' nor a directory"),
        ("teacher_without_method", "--teacher lexicon labels targets for --method self_training"),
        ("threshold_without_method", r"pseudo_threshold=1.5 is outside \(0, 1\]"),
        ("repeated_method", "--method lists 'dann' twice"),
        ("distance_samples", r"distance_samples=3 must be >= 5 .*--distance_samples 2000"),
        ("max_train_zero", r"max_train_samples=0 must be a positive number .*--max_train_samples 2000"),
        ("guard_std", r"guard_seed_std=3.0 must be between 0 and 0.5"),
    ],
)
def test_bad_self_training_inputs_one_line_exit_2(case, match, model_dir, tmp_path, capsys):
    a = _domain_csv(tmp_path / "a.csv", 30, 1)
    b = _domain_csv(tmp_path / "b.csv", 30, 2)
    extra = ["--method", "self_training"]
    if case == "threshold":
        extra += ["--pseudo_threshold", "1.5"]
    elif case == "threshold_zero":
        extra += ["--pseudo_threshold", "0"]
    elif case == "rounds":
        extra += ["--self_training_rounds", "0"]
    elif case == "balance":
        extra += ["--pseudo_balance", "even"]
    elif case == "teacher_labels":
        teacher_dir = tmp_path / "teacher"
        model = build_classifier(
            ModelArguments(model_name_or_path=str(model_dir)),
            TransferArguments(strategy="full"),
            ["bad", "good"],
        )
        save_classifier(model, load_tokenizer(str(model_dir)), teacher_dir)
        extra += ["--teacher", str(teacher_dir)]
    elif case == "lexicon_topic":
        a = _domain_csv(tmp_path / "a2.csv", 30, 1, labels=("politics", "sports"))
        b = _domain_csv(tmp_path / "b2.csv", 30, 2, labels=("politics", "sports"))
        extra += ["--teacher", "lexicon"]
    elif case == "teacher_missing":
        extra += ["--teacher", str(tmp_path / "nope")]
    elif case == "threshold_without_method":  # the ranges are checked even when self_training is not run
        extra = ["--method", "none", "dann", "--pseudo_threshold", "1.5"]
    elif case == "repeated_method":
        extra = ["--method", "none", "dann", "dann"]
    elif case == "distance_samples":
        extra = ["--method", "none", "--distance_samples", "3"]
    elif case == "max_train_zero":
        extra = ["--method", "none", "--max_train_samples", "0"]
    elif case == "guard_std":
        extra = ["--method", "none", "--guard_seed_std", "3.0"]
    else:
        extra = ["--method", "none", "--teacher", "lexicon"]
    out = tmp_path / "out"
    argv = _argv(model_dir, out, "--source", str(a), "--target", str(b), *extra)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(domain_adaptation.main, argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, errors
    assert re.search(match, errors[0]), errors[0]
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("where", ["is", "is inside"])
def test_a_teacher_in_the_output_dir_is_refused_before_anything_is_written(
    where, model_dir, tmp_path, capsys, monkeypatch
):
    a = _domain_csv(tmp_path / "a.csv", 30, 1)
    b = _domain_csv(tmp_path / "b.csv", 30, 2)
    out = tmp_path / "out"
    teacher_dir = out if where == "is" else out / "models" / "none"  # a previous run's saved model
    teacher_dir.mkdir(parents=True)
    (teacher_dir / "config.json").write_text("{}")
    before = sorted(p.relative_to(tmp_path) for p in out.rglob("*"))
    monkeypatch.chdir(tmp_path)  # the teacher given relative, the output_dir absolute: the same folder
    teacher = str(teacher_dir.relative_to(tmp_path))
    extra = ["--method", "none", "self_training", "--teacher", teacher, "--overwrite_output_dir"]
    argv = _argv(model_dir, out, "--source", str(a), "--target", str(b), *extra)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(domain_adaptation.main, argv)
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, errors
    assert errors[0].endswith(
        f"--teacher {teacher!r} {where} --output_dir {str(out)!r}: the run would write over its own input "
        "(--overwrite_output_dir removes a previous run's files); choose another --output_dir"
    ), errors[0]
    assert sorted(p.relative_to(tmp_path) for p in out.rglob("*")) == before  # nothing written or removed
    assert (teacher_dir / "config.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"method": ["none", "dann"], "pseudo_threshold": 1.5}, r"pseudo_threshold=1.5 is outside \(0, 1\]"),
        ({"method": ["dann"], "pseudo_top_k": 0}, "pseudo_top_k=0 must be >= 1"),
        ({"self_training_rounds": 0}, "self_training_rounds=0 must be >= 1"),
        ({"self_training_align": "wiggle"}, "unknown align 'wiggle'"),
        ({"pseudo_balance": "even"}, "unknown pseudo_balance 'even'"),
        ({"method": ["dann", "dann"]}, "--method lists 'dann' twice"),
        (
            {"method": ["none", "self_training", "none"], "pseudo_threshold": 0.9},
            "--method lists 'none' twice",
        ),
        (
            {"max_train_samples": 0},
            r"max_train_samples=0 must be a positive number .*--max_train_samples 2000",
        ),
        ({"max_train_samples": -5}, "max_train_samples=-5 must be a positive number"),
        ({"max_eval_samples": 0}, r"max_eval_samples=0 must be a positive number .*--max_eval_samples 1000"),
        ({"distance_samples": -1}, "distance_samples=-1 must be >= 5"),
        ({"distance_samples": 0}, "distance_samples=0 must be >= 5"),
        ({"distance_samples": 4}, r"distance_samples=4 must be >= 5 .*--distance_samples 2000"),
        ({"guard_seed_std": 3.0}, r"guard_seed_std=3.0 must be between 0 and 0.5 .*--guard_seed_std 0.01"),
        ({"guard_seed_std": -0.1}, "guard_seed_std=-0.1 must be between 0 and 0.5"),
        ({"guard_seed_std": float("nan")}, "guard_seed_std=nan must be between 0 and 0.5"),
    ],
)
def test_domain_adaptation_arguments_refuse_out_of_range_options(fields, match):
    with pytest.raises(ConfigError, match=match):
        DomainAdaptationArguments(**{"method": ["none"], **fields})


def test_domain_adaptation_arguments_accept_the_boundaries():
    args = DomainAdaptationArguments(
        method=["none", "dann"],
        max_train_samples=1,
        max_eval_samples=1,
        distance_samples=5,
        guard_seed_std=0.5,
        pseudo_threshold=1.0,
        pseudo_top_k=1,
        self_training_rounds=1,
    )
    assert args.method == ["none", "dann"] and args.distance_samples == 5
    DomainAdaptationArguments(method=["none"], guard_seed_std=0.0)
    # a threshold or top-k is needed only when self_training runs
    DomainAdaptationArguments(method=["none"])
    DomainAdaptationArguments(method=["self_training"], pseudo_top_k=10)
    with pytest.raises(ConfigError, match="self_training needs --pseudo_threshold"):
        DomainAdaptationArguments(method=["none", "self_training"])


def test_source_selection_benchmark_rereads_a_matrix_run(tmp_path):
    from benchmarks import bench_source_selection

    f1 = {"a": 0.7, "b": 0.6, "c": 0.5}  # the trained order: a > b > c for every target
    pairs = {
        f"{s}->{t}": {
            "source": s,
            "target": t,
            "representation_scored": "pooled",
            "distance": {"mmd": 1 - f1[s], "proxy_a_distance": 2 - f1[s]},
            "methods": {"none": {"logme": f1[s], "h_score": -f1[s], "f1_macro": f1[s] - 0.01 * len(t)}},
        }
        for s in f1
        for t in ("x", "y")
    }
    (tmp_path / "metrics.json").write_text(json.dumps({"strategy": "full", "pairs": pairs}))
    text = bench_source_selection.main([str(tmp_path)])
    assert (tmp_path / "source_selection.md").read_text() == text
    assert "6 pairs" in text and "LogME on pooled" in text
    assert "| x      | a > b > c | a > b > c |" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "1.0000" in rows["logme"] and "-1.0000" in rows["h_score"]


def test_h_score_still_ranks_features_with_fewer_samples_than_dimensions():
    from nlptransfer.selection import h_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    informative = np.concatenate([np.eye(3)[y] * 2.0, rng.normal(0, 1, (60, 125))], axis=1)
    informative += rng.normal(0, 0.5, informative.shape)
    random_feats = rng.normal(0, 1, (60, 128))
    # the plain pinv estimate saturates at classes - 1 for both: it cannot rank them
    plain = [h_score(x, y, shrinkage=False) for x in (informative, random_feats)]
    assert plain == pytest.approx([2.0, 2.0], abs=1e-6)
    assert h_score(informative, y) > 3 * h_score(random_feats, y) > 0


def test_self_training_with_a_frozen_backbone_trains_the_head_on_cached_features(
    model_dir, tmp_path, tmp_cache
):
    a = _domain_csv(tmp_path / "a.csv", 48, 1, "film")
    b = _domain_csv(tmp_path / "b.csv", 48, 2, "very very")
    out = tmp_path / "run"
    argv = [
        "--source",
        str(a),
        "--target",
        str(b),
        "--strategy",
        "frozen",
        "--method",
        "none",
        "self_training",
    ]
    metrics = domain_adaptation.main(_argv(model_dir, out, *argv, "--negative_transfer_guard", "false"))
    pair = next(iter(metrics["pairs"].values()))
    assert pair["representation_scored"] == "logits"
    rounds = pair["methods"]["self_training"]["self_training_seed0"]
    assert len(rounds) == 2 and all(r["pseudo_labels"] > 0 for r in rounds)
    clf = pipeline("text-classification", model=str(out / "models" / "self_training"))
    assert clf(["good movie"])[0]["label"] in NAMES
