"""Behaviour stays the same: every recipe, run on tiny models and tiny data, gives the recorded metrics.

Each case runs one recipe through its public entry point only (`from nlptransfer.recipes import <name>`,
then `<name>.main(argv)`), with every budget and seed flag on the command line (defaults may move from the
recipes' Python dicts to YAML files), reads what the run wrote (`metrics.json`, or `comparison.csv` /
`comparison_summary.csv` for `--compare true`) and compares every numeric leaf that describes the model
(F1, accuracy, losses, BLEU, chrF, perplexity, LogME, domain distances, importance weights, multi-label
thresholds, parameter counts, the Trainer's loss log...) with `tests/golden/recipes_tiny.json`, to an
absolute tolerance of 1e-4. Timing and environment figures (seconds, runtimes, samples/steps per second,
texts per second, FLOs, memory, dates, paths) are left out: they differ from run to run.

Budgets: the fine-tuned classifiers take 24 optimizer steps (a fraction of a second on the tiny BERT): with
6 or fewer they still predict one class for every row, and F1 could not tell a correct run from one that,
say, pairs predictions with the wrong rows. The other stages take 3-12 steps.

The golden file was recorded before the package restructure; a refactoring must leave it unchanged.

Regenerate it ONLY when a change is meant to alter results (a new default, a bug fix that changes the
numbers), and say so in the commit:

    NLPTRANSFER_UPDATE_GOLDEN=1 pytest tests/test_behaviour.py

(each case then rewrites its own entry instead of comparing; cases no longer defined are dropped).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
from tiny import (
    DOMAIN,
    sentiment_rows,
    tiny_domain_model_dir,
    tiny_marian_dir,
    tiny_model_dir,
    toy_pairs,
    write_csv,
    write_tsv,
)

import nlptransfer.recipes
from nlptransfer.recipes import (
    distill,
    domain_adaptation,
    domain_pretraining,
    multitask,
    sentiment,
    text_classification,
    translation_pair,
)

GOLDEN = Path(__file__).parent / "golden" / "recipes_tiny.json"
UPDATE = os.environ.get("NLPTRANSFER_UPDATE_GOLDEN") == "1"
ATOL = 1e-4
DIGITS = 6

# Leaves whose key names a timing or environment figure: not a property of the model, different on every run
# or machine (train_runtime, *_samples_per_second, *_steps_per_second, texts_per_second, train_seconds,
# wall_seconds, total_flos, ...). Matched against the words ('_'/'-'/space-separated) of every key component.
EXCLUDED_WORDS = {
    "second",
    "seconds",
    "runtime",
    "time",
    "timestamp",
    "wall",
    "minute",
    "minutes",
    "date",
    "flos",
    "memory",
    "mem",
    "path",
    "dir",
    "host",
    "device",
}


def _excluded(key: str) -> bool:
    return any(word in EXCLUDED_WORDS for word in re.split(r"[_\-\s]+", key.lower()))


# ------------------------------------------------------------------------------------------ tiny setup


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: the same floating-point reduction order on any machine (and no thread contention
    slowing the tiny models down on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """The tiny checkpoints every case starts from, built from configs (no downloads)."""
    root = tmp_path_factory.mktemp("golden-models")
    return {
        "bert": tiny_model_dir(root, seed=0, positions=64),  # the golden metrics' model
        "domain_bert": tiny_domain_model_dir(root, seed=0),
        "marian": tiny_marian_dir(root, seed=0),
    }


def _with_score(rows: list[dict]) -> list[dict]:
    scores = {"negative": -2.0, "neutral": 0.0, "positive": 2.0}
    return [{**r, "score": scores[r["sentiment"]] + (i % 5) / 10} for i, r in enumerate(rows)]


def _domain_rows(n: int, seed: int, extra: str) -> list[dict]:
    """Sentiment rows of a 'domain': most reviews carry the domain's own extra words."""
    rows = sentiment_rows(n, seed=seed)
    for i, r in enumerate(rows):
        if i % 5:
            r["review"] = f"{r['review']} {extra}"
    return rows


def _common_training(steps: int, train_batch: int, eval_batch: int, lr: str, seed: str = "42") -> list[str]:
    """The Trainer budget and seed flags every case passes explicitly."""
    return [
        "--max_steps",
        str(steps),
        "--num_train_epochs",
        "1",
        "--per_device_train_batch_size",
        str(train_batch),
        "--per_device_eval_batch_size",
        str(eval_batch),
        "--learning_rate",
        lr,
        "--warmup_steps",
        "0",
        "--weight_decay",
        "0.01",
        "--seed",
        seed,
        "--report_to",
        "none",
        "--use_cpu",
        "true",
        "--disable_tqdm",
        "true",
    ]


def case_sentiment(models, data: Path, out: Path):
    train = write_csv(data / "reviews.csv", sentiment_rows(90, seed=0))
    other = write_csv(
        data / "other.csv",
        [{"text": r["review"], "label": r["sentiment"]} for r in sentiment_rows(60, seed=3)],
    )
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--dataset",
        str(train),
        "--eval_datasets",
        str(other),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--validation_fraction",
        "0.1",
        "--test_fraction",
        "0.2",
        "--split_seed",
        "42",
        "--strategy",
        "full",
        "--compare",
        "false",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "12",
        "--save_strategy",
        "no",
        "--logging_steps",
        "4",
        "--train_sampling_strategy",
        "group_by_length",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


def case_text_classification(models, data: Path, out: Path):
    train = write_csv(data / "reviews.csv", sentiment_rows(120, seed=0))
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--dataset",
        str(train),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--validation_fraction",
        "0.1",
        "--test_fraction",
        "0.2",
        "--split_seed",
        "42",
        "--max_train_samples",
        "80",
        "--max_eval_samples",
        "40",
        "--strategy",
        "full",
        "--compare",
        "false",
        "--class_weighted_loss",
        "true",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "12",
        "--save_strategy",
        "steps",
        "--save_steps",
        "12",
        "--save_total_limit",
        "1",
        "--load_best_model_at_end",
        "true",
        "--metric_for_best_model",
        "f1_macro",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


def case_text_classification_multilabel(models, data: Path, out: Path):
    tagged = data / "tags.jsonl"
    with tagged.open("w", encoding="utf-8") as f:
        for i, row in enumerate(sentiment_rows(120, seed=0)):
            tags = [row["sentiment"]] + (["long"] if len(row["review"].split()) > 6 else [])
            f.write(json.dumps({"review": row["review"], "tags": tags, "id": i}) + "\n")
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--dataset",
        str(tagged),
        "--text_column",
        "review",
        "--label_column",
        "tags",
        "--validation_fraction",
        "0.1",
        "--test_fraction",
        "0.2",
        "--split_seed",
        "42",
        "--max_train_samples",
        "80",
        "--max_eval_samples",
        "40",
        "--strategy",
        "full",
        "--compare",
        "false",
        "--class_weighted_loss",
        "true",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


def case_text_classification_compare(models, data: Path, out: Path):
    train = write_csv(data / "reviews.csv", sentiment_rows(120, seed=0))
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--dataset",
        str(train),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--validation_fraction",
        "0.1",
        "--test_fraction",
        "0.2",
        "--split_seed",
        "42",
        "--max_train_samples",
        "80",
        "--max_eval_samples",
        "40",
        "--strategy",
        "full",
        "--compare",
        "true",
        "--seeds",
        "1",
        "--train_sizes",
        "all",
        "--compare_strategies",
        "frozen",
        "lora",
        "full",
        "--scratch",
        "true",
        "--compare_adapter_lr",
        "1e-2",
        "--cache_features",
        "true",
        "--class_weighted_loss",
        "true",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "comparison.csv"


def case_translation_pair(models, data: Path, out: Path):
    child = write_tsv(data / "pairs.tsv", toy_pairs(120, "reva", seed=2))
    argv = [
        "--parent_model",
        str(models["marian"]),
        "--child_dataset",
        str(child),
        "--child_train_size",
        "60",
        "--runs",
        "zero_shot",
        "scratch",
        "transfer",
        "--vocab",
        "shared",
        "--strategy",
        "full",
        "--max_test_samples",
        "8",
        "--num_beams",
        "2",
        "--max_new_tokens",
        "12",
        "--length_penalty",
        "1.0",
        "--max_source_length",
        "32",
        "--max_target_length",
        "32",
        "--label_smoothing_factor",
        "0.1",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "3",
        "--train_sampling_strategy",
        "group_by_length",
        "--output_dir",
        str(out),
        *_common_training(12, 8, 16, "3e-3"),
    ]
    return argv, "metrics.json"


def case_translation_pair_offline_parent(models, data: Path, out: Path):
    parent = write_tsv(data / "parent.tsv", toy_pairs(200, "rev", seed=5))
    child = write_tsv(data / "pairs.tsv", toy_pairs(120, "reva", seed=2))
    argv = [
        "--parent_dataset",
        str(parent),
        "--child_dataset",
        str(child),
        "--child_train_size",
        "60",
        "--vocab_size",
        "100",
        "--d_model",
        "16",
        "--layers",
        "1",
        "--attention_heads",
        "2",
        "--ffn_dim",
        "32",
        "--parent_max_steps",
        "4",
        "--parent_learning_rate",
        "1e-3",
        "--parent_batch_size",
        "16",
        "--parent_max_length",
        "32",
        "--runs",
        "zero_shot",
        "transfer",
        "--vocab",
        "shared",
        "--strategy",
        "full",
        "--max_test_samples",
        "8",
        "--num_beams",
        "1",
        "--max_new_tokens",
        "8",
        "--length_penalty",
        "1.0",
        "--max_source_length",
        "32",
        "--max_target_length",
        "32",
        "--label_smoothing_factor",
        "0.1",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "3",
        "--train_sampling_strategy",
        "group_by_length",
        "--output_dir",
        str(out),
        *_common_training(3, 8, 16, "1e-2"),
    ]
    return argv, "metrics.json"


def case_domain_adaptation(models, data: Path, out: Path):
    source = write_csv(data / "source.csv", _domain_rows(60, 1, "film"))
    target = write_csv(data / "target.csv", _domain_rows(60, 2, "very very"))
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--source",
        str(source),
        "--target",
        str(target),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--method",
        "none",
        "dann",
        "coral",
        "mmd",
        "iw",
        "--seeds",
        "1",
        "--split_seed",
        "42",
        "--target_labelled_samples",
        "20",
        "--distance_samples",
        "60",
        "--negative_transfer_guard",
        "true",
        "--adaptation_weight",
        "1.0",
        "--reversal_weight",
        "1.0",
        "--align_on",
        "auto",
        "--weight_clip",
        "10.0",
        "--strategy",
        "full",
        "--save_models",
        "false",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


def case_domain_adaptation_frozen(models, data: Path, out: Path):
    """The recipe's default strategy: a frozen backbone, the head trained on cached features."""
    source = write_csv(data / "source.csv", _domain_rows(60, 1, "film"))
    target = write_csv(data / "target.csv", _domain_rows(60, 2, "very very"))
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--source",
        str(source),
        "--target",
        str(target),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--method",
        "none",
        "dann",
        "coral",
        "mmd",
        "iw",
        "--seeds",
        "2",
        "--split_seed",
        "42",
        "--target_labelled_samples",
        "20",
        "--distance_samples",
        "60",
        "--negative_transfer_guard",
        "true",
        "--adaptation_weight",
        "1.0",
        "--reversal_weight",
        "1.0",
        "--align_on",
        "auto",
        "--weight_clip",
        "10.0",
        "--strategy",
        "frozen",
        "--cache_features",
        "true",
        "--save_models",
        "true",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "2",
        *_common_training(6, 16, 32, "1e-2"),
    ]
    return argv, "metrics.json"


def case_domain_pretraining(models, data: Path, out: Path):
    corpus = data / "domain.txt"
    corpus.write_text("\n".join(DOMAIN * 4) + "\n", encoding="utf-8")
    argv = [
        "--model_name_or_path",
        str(models["domain_bert"]),
        "--max_length",
        "32",
        "--corpus",
        str(corpus),
        "--text_column",
        "text",
        "--label_column",
        "auto",
        "--split_seed",
        "42",
        "--max_train_samples",
        "60",
        "--max_eval_samples",
        "20",
        "--whole_word_mask",
        "true",
        "--mlm_probability",
        "0.3",
        "--extend_vocab",
        "2",
        "--min_count",
        "3",
        "--vocab_init",
        "mean",
        "--reference_corpus",
        "none",
        "--strategy",
        "full",
        "--output_dir",
        str(out),
        "--save_strategy",
        "no",
        "--logging_steps",
        "2",
        *_common_training(6, 8, 16, "5e-3"),
    ]
    return argv, "metrics.json"


def case_multitask(models, data: Path, out: Path):
    three = write_csv(data / "three.csv", _with_score(sentiment_rows(90, seed=0)))
    two = write_csv(data / "two.csv", sentiment_rows(60, seed=1, neutral=False))
    tasks = [
        {"name": "three", "dataset": str(three), "text_column": "review", "label_column": "sentiment"},
        {
            "name": "two",
            "dataset": str(two),
            "text_column": "review",
            "label_column": "sentiment",
            "weight": 0.5,
        },
        {
            "name": "rating",
            "dataset": str(three),
            "text_column": "review",
            "label_column": "score",
            "type": "regression",
        },
    ]
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--tasks",
        json.dumps(tasks),
        "--max_train_samples",
        "60",
        "--max_eval_samples",
        "30",
        "--split_seed",
        "42",
        "--pooling",
        "pooler",
        "--compare_single_task",
        "true",
        "--single_task_budget",
        "steps",
        "--seeds",
        "1",
        "--strategy",
        "full",
        "--task_sampling",
        "proportional",
        "--sampling_temperature",
        "2.0",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


def case_distill(models, data: Path, out: Path):
    reviews = write_csv(data / "reviews.csv", sentiment_rows(90, seed=0))
    argv = [
        "--model_name_or_path",
        str(models["bert"]),
        "--max_length",
        "32",
        "--dataset",
        str(reviews),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--validation_fraction",
        "0.1",
        "--test_fraction",
        "0.2",
        "--split_seed",
        "42",
        "--max_train_samples",
        "60",
        "--max_eval_samples",
        "30",
        "--teacher_epochs",
        "1",
        "--student_layers",
        "1",
        "--layer_pick",
        "first",
        "--transfer_texts",
        "none",
        "--compare_student_alone",
        "true",
        "--distill_temperature",
        "2.0",
        "--distill_alpha",
        "0.5",
        "--rkd_distance_weight",
        "1.0",
        "--rkd_angle_weight",
        "2.0",
        "--rkd_pooling",
        "mean",
        "--output_dir",
        str(out),
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--logging_steps",
        "4",
        *_common_training(24, 16, 32, "5e-3"),
    ]
    return argv, "metrics.json"


# case name -> (recipe module, argv builder returning (argv, the results file the run writes))
CASES = {
    "sentiment": (sentiment, case_sentiment),
    "text_classification": (text_classification, case_text_classification),
    "text_classification_multilabel": (text_classification, case_text_classification_multilabel),
    "text_classification_compare": (text_classification, case_text_classification_compare),
    "translation_pair": (translation_pair, case_translation_pair),
    "translation_pair_offline_parent": (translation_pair, case_translation_pair_offline_parent),
    "domain_adaptation": (domain_adaptation, case_domain_adaptation),
    "domain_adaptation_frozen": (domain_adaptation, case_domain_adaptation_frozen),
    "domain_pretraining": (domain_pretraining, case_domain_pretraining),
    "multitask": (multitask, case_multitask),
    "distill": (distill, case_distill),
}

# The figure(s) each case is about: they must be present (a run that silently stops reporting its headline
# number fails even when the golden file is regenerated).
KEY_METRICS = {
    "sentiment": ["test/reviews.csv/f1_micro", "test/other.csv/f1_micro"],
    "text_classification": ["test/f1_macro", "validation/f1_macro"],
    "text_classification_multilabel": ["test/f1_micro", "test/f1_samples", "thresholds/long"],
    "text_classification_compare": [
        f"comparison.csv/method={m}/train_size=80/seed=42/f1_macro"
        for m in ("tfidf_logreg", "scratch", "frozen", "lora", "full")
    ],
    "translation_pair": [f"results/{r}/bleu" for r in ("zero_shot", "scratch", "transfer")],
    "translation_pair_offline_parent": ["results/parent_own_pair/bleu", "results/transfer/chrf"],
    "domain_adaptation": [
        f"pairs/source.csv->target.csv/methods/{m}/f1_macro" for m in ("none", "dann", "coral", "mmd", "iw")
    ],
    "domain_adaptation_frozen": [
        "pairs/source.csv->target.csv/distance/mmd",
        "pairs/source.csv->target.csv/methods/dann/f1_macro_std",
        "pairs/source.csv->target.csv/methods/iw/logme",
    ],
    "domain_pretraining": [
        "mlm_loss_before",
        "mlm_loss_after_warmup",
        "mlm_loss_after",
        "perplexity_after",
        "fertility/fertility",
    ],
    "multitask": ["summary/three/multitask/0", "summary/rating/single_task/0", "summary/two/delta/0"],
    "distill": [f"test/{m}/f1_macro" for m in ("teacher", "student (distilled)", "student (labels only)")],
}


# ------------------------------------------------------------------------------------------ extraction


def _number(value: float) -> float | str:
    """Rounded to DIGITS decimals; NaN and infinities as strings (JSON has no such numbers)."""
    value = float(value)
    return repr(value) if not math.isfinite(value) else round(value, DIGITS)


def numeric_leaves(obj, prefix: str = "") -> dict[str, float | str]:
    """Every numeric leaf of a JSON value, keyed by its '/'-joined path; timing/environment keys left out.
    Booleans count as 0/1 (a flipped negative-transfer flag is a change of behaviour)."""
    out: dict[str, float | str] = {}
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        if isinstance(obj, bool | int | float):
            out[prefix] = _number(obj)
        return out
    for key, value in items:
        key = str(key)
        if _excluded(key):
            continue
        out.update(numeric_leaves(value, f"{prefix}/{key}" if prefix else key))
    return out


def read_results(out: Path, filename: str, data: Path) -> dict:
    """What the run wrote: metrics.json as it is; for --compare, comparison.csv (one row per method, train
    size and seed) and comparison_summary.csv (mean/std over seeds), each row keyed by its key columns.

    Datasets are keys in some metrics (test/<dataset>/..., pairs/<source>-><target>/...): they are named by
    file name, not by this run's temporary folder."""
    if filename == "metrics.json":
        text = (out / filename).read_text(encoding="utf-8")
        return json.loads(text.replace(json.dumps(f"{data}{os.sep}")[1:-1], ""))
    return {
        "comparison.csv": _csv_rows(out / "comparison.csv", ("method", "train_size", "seed")),
        "comparison_summary.csv": _csv_rows(out / "comparison_summary.csv", ("method", "train_size")),
    }


def _csv_rows(path: Path, key_columns: tuple[str, ...]) -> dict[str, dict[str, float]]:
    rows = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            key = "/".join(f"{c}={row[c]}" for c in key_columns)
            rows[key] = {k: float(v) for k, v in row.items() if k not in key_columns and _is_number(v)}
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def run_case(name: str, models: dict[str, Path], tmp_path: Path) -> dict[str, float | str]:
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "run"
    module, build = CASES[name]
    argv, filename = build(models, data, out)
    module.main(argv)
    return numeric_leaves(read_results(out, filename, data))


# ------------------------------------------------------------------------------------------ comparison


def differences(expected: dict, actual: dict, atol: float = ATOL) -> list[str]:
    """One line per key that is missing, new, or off by more than `atol`."""
    lines = [
        f"missing in the new output: {k} (golden {expected[k]})" for k in sorted(set(expected) - set(actual))
    ]
    lines += [
        f"new in the output (not in golden): {k} = {actual[k]}" for k in sorted(set(actual) - set(expected))
    ]
    for key in sorted(set(expected) & set(actual)):
        a, b = expected[key], actual[key]
        if isinstance(a, str) or isinstance(b, str):  # nan / inf
            same = a == b
        else:
            same = abs(a - b) <= atol
        if not same:
            lines.append(f"changed: {key}: golden {a}, now {b}")
    return lines


def _load_golden() -> dict:
    return json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.is_file() else {}


def _write_golden(golden: dict) -> None:
    golden = {name: dict(sorted(golden[name].items())) for name in CASES if name in golden}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=False) + "\n", encoding="utf-8")


@pytest.mark.parametrize("name", list(CASES))
def test_recipe_metrics_match_golden(name, models, tmp_path, tmp_cache):
    """`tmp_cache`: an empty nlptransfer cache (features, offline parents) per case, so nothing is reused."""
    actual = run_case(name, models, tmp_path)

    missing_keys = [k for k in KEY_METRICS[name] if k not in actual]
    assert not missing_keys, f"{name}: key metrics missing from the run's output: {missing_keys}"
    assert len({v for v in actual.values() if not isinstance(v, str)}) > 5, (
        f"{name}: degenerate output, too few distinct numbers: {actual}"
    )

    if UPDATE:
        golden = _load_golden()
        golden[name] = actual
        _write_golden(golden)
        return
    golden = _load_golden()
    assert name in golden, (
        f"{name} has no golden entry; record it with NLPTRANSFER_UPDATE_GOLDEN=1 (see docstring)"
    )
    diff = differences(golden[name], actual)
    message = f"{name}: {len(diff)} metric(s) differ from {GOLDEN.name} (atol {ATOL}):\n" + "\n".join(diff)
    assert not diff, message


def test_every_recipe_is_covered():
    """A recipe added (or renamed) in nlptransfer.recipes needs a golden case too."""
    import importlib
    import pkgutil

    recipes = set()
    for info in pkgutil.iter_modules(nlptransfer.recipes.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"nlptransfer.recipes.{info.name}")
        if callable(getattr(module, "main", None)):
            recipes.add(info.name)
    covered = {module.__name__.rsplit(".", 1)[-1] for module, _ in CASES.values()}
    assert recipes <= covered, f"recipes without a golden case: {sorted(recipes - covered)}"


def test_golden_file_has_exactly_the_cases():
    if UPDATE:
        pytest.skip("regenerating the golden file")
    assert set(_load_golden()) == set(CASES), "golden entries and CASES differ; regenerate (see docstring)"
