"""Comparisons: the TF-IDF baseline, fair training subsets, aggregation, verdicts and output files."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest

from nlptransfer.errors import ConfigError, DataError
from nlptransfer.evaluation.baselines import tfidf_logreg, tfidf_logreg_method
from nlptransfer.evaluation.comparison import (
    ComparisonResult,
    job_key,
    parse_train_sizes,
    prepare_comparison,
    run_comparison,
    run_jobs,
)
from nlptransfer.evaluation.statistics import mean_std, paired_p_value, spearman
from nlptransfer.reporting import format_summary, write_comparison

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABEL_NAMES = ["sports", "cooking", "finance"]
VOCAB = {
    0: ["goal", "match", "referee", "striker", "league", "coach"],
    1: ["recipe", "oven", "garlic", "simmer", "flour", "sauce"],
    2: ["stock", "market", "bond", "dividend", "interest", "bank"],
}
FILLER = ["the", "today", "really", "about", "news", "people", "week", "said"]


def synthetic(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts with 2 class words among 4 shared filler words; balanced classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    texts = []
    for y in labels:
        words = list(rng.choice(VOCAB[int(y)], 2)) + list(rng.choice(FILLER, 4))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels


# ------------------------------------------------------------------------------------ tfidf_logreg


def test_tfidf_logreg_learns_well_above_chance():
    train_texts, train_labels = synthetic(90, seed=0)
    test_texts, test_labels = synthetic(60, seed=1)
    preds = tfidf_logreg(train_texts, train_labels, test_texts, seed=0, label_count=3)
    assert preds.shape == (60,) and set(preds.tolist()) <= {0, 1, 2}
    assert (preds == test_labels).mean() > 0.8  # chance is 1/3

    fn = tfidf_logreg_method(train_texts, train_labels, test_texts, test_labels, LABEL_NAMES)
    scores = fn(0, list(range(0, 90, 2)))
    assert {"accuracy", "f1_micro", "f1_macro"} <= set(scores) and scores["f1_macro"] > 0.7


def test_tfidf_logreg_multilabel_returns_indicator_matrix():
    texts, labels = synthetic(60, seed=2)
    y = np.zeros((60, 3), dtype=int)
    y[np.arange(60), labels] = 1
    y[:, 2] = 0  # a label never present in training: predicted as the constant 0, no error
    preds = tfidf_logreg(
        texts, y, texts[:10], seed=0, multilabel=True, label_count=3, class_weight="balanced"
    )
    assert preds.shape == (10, 3) and set(np.unique(preds)) <= {0, 1}
    assert (preds[:, 2] == 0).all()
    assert (preds[:, :2] == y[:10, :2]).mean() > 0.8


def test_tfidf_logreg_one_class_subset_is_a_clear_error():
    texts, _ = synthetic(9, seed=3)
    with pytest.raises(DataError, match="all have label id 1.*at least 2 classes.*--train_sizes"):
        tfidf_logreg(texts, [1] * 9, texts, seed=0, label_count=3)
    # two of three classes present is fine: the missing class is simply never predicted
    preds = tfidf_logreg(texts[:6], [0, 1, 0, 1, 0, 1], texts, seed=0, label_count=3)
    assert set(preds.tolist()) <= {0, 1}


def test_tfidf_logreg_bad_inputs():
    with pytest.raises(DataError, match="label id 5 is outside 0..2"):
        tfidf_logreg(["aa bb", "cc dd"], [0, 5], ["aa"], seed=0, label_count=3)
    with pytest.raises(DataError, match="empty vocabulary"):
        tfidf_logreg(["!", "?"], [0, 1], ["aa"], seed=0, label_count=2)
    with pytest.raises(ConfigError, match="class_weight"):
        tfidf_logreg(["aa bb", "cc dd"], [0, 1], ["aa"], seed=0, label_count=2, class_weight="auto")


# --------------------------------------------------------------------------------- train sizes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50,200,1000,all", [50, 200, 1000, None]),
        (" all , 10 ", [10, None]),
        ("1000,50", [50, 1000]),
        ("ALL", [None]),
        (["200", 50, "all"], [50, 200, None]),
    ],
)
def test_parse_train_sizes_good(text, expected):
    assert parse_train_sizes(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("50,abc", "'abc' is not a whole number"),
        ("2.5", "'2.5' is not a whole number"),
        ("0,100", "0 is not a positive"),
        ("-5", "-5 is not a positive"),
        ("50,50", "more than once"),
        ("all,ALL", "more than once"),
        ("", "is empty"),
        (" , ", "is empty"),
    ],
)
def test_parse_train_sizes_bad(text, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_train_sizes(text)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ run_comparison

SEEDS = [0, 1, 2]
JITTER = {0: 0.0, 1: 0.002, 2: -0.001}


def base_score(seed: int, indices: list[int]) -> float:
    return 0.5 + 0.01 * seed + 0.0001 * len(indices)


def fake(offset: dict[int, float] | float, calls: dict | None = None, name: str = ""):
    """A deterministic callback: base score (a function of seed and subset size) + offset."""

    def fn(seed: int, indices: list[int]) -> dict[str, float]:
        if calls is not None:
            calls[(name, len(indices), seed)] = list(indices)
        delta = offset[seed] if isinstance(offset, dict) else offset
        v = base_score(seed, indices) + delta
        return {"accuracy": v + 0.1, "f1_micro": v + 0.1, "f1_macro": v}

    return fn


@pytest.fixture
def comparison() -> tuple[ComparisonResult, dict]:
    calls: dict = {}
    labels = np.arange(300) % 3
    methods = {
        "tfidf_logreg": fake(0.0, calls, "tfidf_logreg"),
        "scratch": fake(-0.2, calls, "scratch"),
        "lora": fake({s: 0.1 + JITTER[s] for s in SEEDS}, calls, "lora"),  # clearly better
        "frozen": fake({0: 0.02, 1: -0.03, 2: 0.01}, calls, "frozen"),  # mean 0, spread: noise
        "full": fake({s: -0.1 + JITTER[s] for s in SEEDS}, calls, "full"),  # clearly worse
    }
    result = run_comparison(methods, SEEDS, parse_train_sizes("30,90,all"), 300, labels)
    return result, calls


def test_run_comparison_rows_and_fair_subsets(comparison):
    result, calls = comparison
    assert result.train_sizes == [30, 90, 300]
    assert result.baselines == ["tfidf_logreg", "scratch"] and result.transfer == ["lora", "frozen", "full"]
    assert len(result.rows) == 5 * 3 * 3
    assert {(r["method"], r["train_size"], r["seed"]) for r in result.rows} == {
        (m, n, s) for m in result.methods for n in (30, 90, 300) for s in SEEDS
    }
    assert {r["kind"] for r in result.rows if r["method"] in ("tfidf_logreg", "scratch")} == {"baseline"}
    for size in (30, 90, 300):
        for seed in SEEDS:
            subsets = {tuple(calls[(m, size, seed)]) for m in result.methods}
            assert len(subsets) == 1  # every method trained on the same examples
            assert list(subsets.pop()) == result.subsets[(size, seed)]
    assert result.subsets[(30, 0)] != result.subsets[(30, 1)]


def test_run_comparison_mean_and_sample_std(comparison):
    result, _ = comparison
    row = next(s for s in result.summary if s["method"] == "frozen" and s["train_size"] == 90)
    values = [base_score(s, [0] * 90) + d for s, d in zip(SEEDS, [0.02, -0.03, 0.01], strict=True)]
    assert row["n_seeds"] == 3
    assert row["f1_macro_mean"] == pytest.approx(np.mean(values))
    assert row["f1_macro_std"] == pytest.approx(np.std(values, ddof=1))
    assert row["accuracy_mean"] == pytest.approx(np.mean(values) + 0.1)
    assert row["f1_micro_std"] == pytest.approx(np.std(values, ddof=1))


def test_verdicts_better_within_noise_worse(comparison):
    result, _ = comparison
    at_all = {v.method: v for v in result.verdicts if v.train_size == 300}
    assert {v.baseline for v in at_all.values()} == {"tfidf_logreg"}  # the best baseline
    assert at_all["lora"].outcome == "helped" and at_all["lora"].difference == pytest.approx(0.1 + 0.001 / 3)
    assert at_all["frozen"].outcome == "no evidence" and at_all["frozen"].p_value > 0.05
    assert at_all["full"].outcome == "negative"
    summary = format_summary(result)
    assert "lora: +0.100 macro-F1 over tfidf_logreg" in summary
    assert "beyond noise, transfer helped" in summary
    assert "frozen: +0.000 macro-F1 vs tfidf_logreg" in summary
    assert "within noise, NO evidence that transfer helped" in summary
    assert "full: -0.100 macro-F1 vs tfidf_logreg" in summary
    assert "below the baseline beyond noise, NEGATIVE transfer" in summary
    assert "paired t-test" in summary and "p < 0.05" in summary
    assert "NEGATIVE transfer (worse than the baseline beyond noise): full" in summary
    assert "| method" in summary and "0.5" in summary


def test_no_transfer_helped_is_said_plainly():
    methods = {"tfidf_logreg": fake(0.0), "frozen": fake({0: 0.02, 1: -0.03, 2: 0.01})}
    result = run_comparison(methods, SEEDS, [None], 60)
    assert "NO transfer strategy beat the best target-only baseline beyond noise" in format_summary(result)


def test_one_seed_has_no_noise_estimate():
    result = run_comparison({"tfidf_logreg": fake(0.0), "lora": fake(0.1)}, [7], [None], 60)
    (verdict,) = result.verdicts
    assert verdict.outcome == "no noise estimate" and verdict.p_value is None
    assert result.summary[0]["f1_macro_std"] == 0.0
    text = format_summary(result)
    assert "1 seed (7): no noise estimate" in text and "1 seed: no noise estimate" in text


def test_two_seeds_are_too_few_for_a_test():
    """2 seeds = a t-test with 1 degree of freedom: +0.107 'helped' beside +0.102 'no evidence'. No test."""
    methods = {"tfidf_logreg": fake(0.0), "lora": fake({0: 0.1, 1: 0.114}), "full": fake({0: 0.09, 1: 0.114})}
    result = run_comparison(methods, [0, 1], [None], 60)
    assert {v.outcome for v in result.verdicts} == {"too few seeds"}
    assert all(v.p_value is None for v in result.verdicts)
    text = format_summary(result)
    assert "2 seeds: too few for a test" in text and "t-test p" not in text
    assert "Bottom line at 60 (all) training examples: 2 seeds, so no verdict" in text


def test_zero_variance_gives_a_clear_verdict_without_nan():
    constant = lambda value: lambda seed, indices: {"f1_macro": value, "accuracy": value}  # noqa: E731
    methods = {"tfidf_logreg": constant(0.5), "lora": constant(0.6), "frozen": constant(0.5)}
    methods["full"] = constant(0.4)
    result = run_comparison(methods, SEEDS, [None], 60)
    by = {v.method: v for v in result.verdicts}
    assert by["lora"].outcome == "helped" and by["lora"].difference == pytest.approx(0.1)
    assert by["frozen"].outcome == "no evidence" and by["full"].outcome == "negative"
    text = format_summary(result)
    assert "nan" not in text.lower() and "zero variance" in text and "identical to tfidf_logreg" in text


class MemoryStore:
    def __init__(self):
        self.saved: dict[str, dict] = {}

    def load(self, key):
        return self.saved[key]["scores"] if key in self.saved else None

    def save(self, key, record):
        self.saved[key] = record


def test_run_jobs_keeps_finished_jobs_and_skips_them_when_resumed(caplog, tmp_path):
    calls: dict = {}
    methods = {"tfidf_logreg": fake(0.0, calls, "tfidf_logreg"), "lora": fake(0.1, calls, "lora")}

    def interrupted(seed, indices):
        if seed == 1:
            raise KeyboardInterrupt
        return methods["lora"](seed, indices)

    store = MemoryStore()
    result = prepare_comparison({**methods, "lora": interrupted}, SEEDS, [None], 60)
    caplog.set_level(logging.INFO, logger="nlptransfer")
    with pytest.raises(KeyboardInterrupt):
        run_jobs(result, {**methods, "lora": interrupted}, store=store, fingerprint="a")
    assert [(r["method"], r["seed"]) for r in result.rows] == [
        ("tfidf_logreg", 0),
        ("lora", 0),
        ("tfidf_logreg", 1),
    ]
    assert len(store.saved) == 3 and "left" in caplog.text
    files = write_comparison(result, tmp_path)  # the partial comparison: marked, no figures
    md = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "PARTIAL: 3 of 6 runs finished" in md and "comparison.png" not in files and "nan" not in md

    calls.clear()
    resumed = run_comparison(methods, SEEDS, [None], 60, store=store, fingerprint="a")
    assert sorted(calls) == [("lora", 60, 1), ("lora", 60, 2), ("tfidf_logreg", 60, 2)]  # only the rest
    assert len(resumed.rows) == 6 and not resumed.partial
    calls.clear()
    run_comparison(methods, SEEDS, [None], 60, store=store, fingerprint="b")  # other settings: rerun all
    assert len(calls) == 6


def test_job_key_changes_with_everything_that_identifies_a_job():
    base = job_key("lora", 60, 0, [1, 2, 3], "f")
    assert base == job_key("lora", 60, 0, [1, 2, 3], "f")
    others = [
        job_key("full", 60, 0, [1, 2, 3], "f"),
        job_key("lora", 61, 0, [1, 2, 3], "f"),
        job_key("lora", 60, 1, [1, 2, 3], "f"),
        job_key("lora", 60, 0, [1, 2, 4], "f"),
        job_key("lora", 60, 0, [1, 2, 3], "g"),
    ]
    assert base not in others and len(set(others)) == 5


def test_settings_fingerprint_ignores_run_control_only():
    from datasets import Dataset

    from nlptransfer.evaluation.jobs import settings_fingerprint

    splits = {"train": Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})}
    config = {"learning_rate": 1e-3, "output_dir": "x", "resume": False, "seeds": 3}
    same = settings_fingerprint(config | {"output_dir": "y", "resume": True, "seeds": 5}, splits)
    assert settings_fingerprint(config, splits) == same
    assert settings_fingerprint(config | {"learning_rate": 2e-3}, splits) != same
    other_data = {"train": Dataset.from_dict({"text": ["a", "c"], "label": [0, 1]})}
    assert settings_fingerprint(config, other_data) != same


def test_run_comparison_errors_before_training():
    called = []

    def fn(seed, indices):
        called.append(seed)
        return {"f1_macro": 0.5}

    with pytest.raises(DataError, match="train size 500 is larger than the 100 training examples"):
        run_comparison({"tfidf_logreg": fn}, SEEDS, [50, 500], 100)
    assert called == []
    with pytest.raises(ConfigError, match="distinct seeds"):
        run_comparison({"tfidf_logreg": fn}, [1, 1], [None], 100)
    with pytest.raises(ConfigError, match="not among the methods"):
        run_comparison({"lora": fn}, SEEDS, [None], 100, baselines={"scratch"})
    with pytest.raises(ConfigError, match="metric 'f1_weighted' is not among the scores.*f1_macro"):
        run_comparison({"tfidf_logreg": fn}, SEEDS, [None], 100, metric="f1_weighted")


# ------------------------------------------------------------------------------------ outputs


def read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_write_comparison_files(comparison, tmp_path):
    result, _ = comparison
    files = write_comparison(result, tmp_path)
    assert set(files) == {
        "comparison.csv",
        "comparison_summary.csv",
        "comparison.md",
        "comparison.png",
        "data_efficiency.csv",
        "data_efficiency.png",
    }
    assert all((tmp_path / f).is_file() for f in files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left

    runs = read_csv(tmp_path / "comparison.csv")
    assert len(runs) == 5 * 3 * 3
    assert list(runs[0]) == ["method", "kind", "train_size", "seed", "accuracy", "f1_micro", "f1_macro"]
    summary = read_csv(tmp_path / "comparison_summary.csv")
    assert len(summary) == 5 * 3 and {"f1_macro_mean", "f1_macro_std", "n_seeds"} <= set(summary[0])
    curve = read_csv(tmp_path / "data_efficiency.csv")
    assert len(curve) == 5 * 3
    assert list(curve[0]) == ["method", "kind", "train_size", "n_seeds", "f1_macro_mean", "f1_macro_std"]
    assert [r["train_size"] for r in curve if r["method"] == "lora"] == ["30", "90", "300"]

    md = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "Noise rule" in md and "3 seeds (0, 1, 2)" in md and "300 (all)" in md
    assert "beyond noise, transfer helped" in md and "NEGATIVE transfer" in md
    assert "| tfidf_logreg | baseline |" in md and "±" in md
    for png in ("comparison.png", "data_efficiency.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC


def test_write_comparison_single_size_has_no_curve(tmp_path):
    result = run_comparison({"tfidf_logreg": fake(0.0), "lora": fake(0.1)}, SEEDS, [None], 60)
    files = write_comparison(result, tmp_path)
    assert "data_efficiency.png" not in files and not (tmp_path / "data_efficiency.csv").exists()
    assert (tmp_path / "comparison.png").read_bytes()[:8] == PNG_MAGIC
    assert len(read_csv(tmp_path / "comparison.csv")) == 2 * 3


# ---------------------------------------------------------------------------------------- statistics


def test_mean_std_paired_p_value_and_spearman():
    from scipy import stats

    assert mean_std(np.array([1.0, 2.0, 3.0])) == (2.0, 1.0)  # sample std (ddof=1)
    assert mean_std(np.array([0.5])) == (0.5, 0.0)
    assert all(np.isnan(mean_std(np.array([]))))
    diffs = np.array([0.1, 0.3, 0.2, 0.25])
    assert paired_p_value(diffs) == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    assert paired_p_value(np.array([0.2, 0.2])) == 0.0 and paired_p_value(np.zeros(3)) == 1.0
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert spearman([1, 2], [2, 1]) is None  # fewer than 3 pairs
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # constant input: undefined
