"""Few-shot transfer: K examples per class, contrastive pairs and loss, the logistic-regression head, and the
few-shot recipe runs (train, save, reload through `nlptransfer predict` with identical predictions)."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, List, Value
from tiny import sentiment_rows, write_csv
from transformers import AutoTokenizer

from nlptransfer import ModelArguments, TransferArguments, cli
from nlptransfer.data import subsample, subsample_indices
from nlptransfer.errors import ConfigError, DataError, ModelError, run_cli
from nlptransfer.fewshot import check_fewshot, check_method, fewshot_splits
from nlptransfer.losses import cosine_similarity_loss
from nlptransfer.modeling import build_classifier
from nlptransfer.recipes import sentiment, text_classification
from nlptransfer.trainers.contrastive import (
    ContrastiveTrainer,
    ContrastiveTrainingArguments,
    FewShotArguments,
    PairCollator,
    contrastive_pairs,
    embed_texts,
    fit_logistic_head,
)
from nlptransfer.training import FitResult, predict

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------ K examples per class


def _labelled(counts: dict[str, int]) -> Dataset:
    names = sorted(counts)
    labels = [i for i, name in enumerate(names) for _ in range(counts[name])]
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict(
        {"text": [f"t{i}" for i in range(len(labels))], "label": labels}, features=features
    )


def test_examples_per_class_draws_k_of_every_class_seeded():
    ds = _labelled({"a": 300, "b": 40, "c": 9})
    sub = subsample(ds, 8, seed=1, per_class=True)
    assert Counter(sub["label"]) == {0: 8, 1: 8, 2: 8} and len(set(sub["text"])) == 24
    assert sub["text"] == subsample(ds, 8, seed=1, per_class=True)["text"]  # same seed, same rows
    assert sub["text"] != subsample(ds, 8, seed=2, per_class=True)["text"]  # another seed, another draw
    assert sub.features == ds.features
    # the indices function is the same draw (what a comparison hands every method)
    indices = subsample_indices(len(ds), 8, 1, ds["label"], per_class=True)
    assert ds.select(indices)["text"] == sub["text"] and indices == sorted(indices)
    # K equal to the smallest class takes all of it
    assert Counter(subsample(ds, 9, seed=0, per_class=True)["label"])[2] == 9


def test_examples_per_class_errors_name_the_class_and_its_count():
    ds = _labelled({"big": 50, "rare": 5})
    with pytest.raises(
        DataError,
        match=r"class 'rare' has only 5 training examples, fewer than the 6.*--examples_per_class 5 or less",
    ):
        subsample(ds, 6, seed=0, per_class=True)
    for k in (0, -3):
        with pytest.raises(ConfigError, match="--examples_per_class"):
            subsample(ds, k, seed=0, per_class=True)
    multi = Dataset.from_dict(
        {"text": ["x", "y"], "labels": [[0], [0, 1]]},
        features=Features({"text": Value("string"), "labels": List(ClassLabel(names=["a", "b"]))}),
    )
    with pytest.raises(ConfigError, match="single-label"):
        subsample(multi, 1, seed=0, label_column="labels", per_class=True)


def test_fewshot_splits_train_on_some_labels_test_on_all():
    from datasets import DatasetDict

    from nlptransfer import DataArguments
    from nlptransfer.fewshot import fewshot_splits
    from nlptransfer.trainers.contrastive import FewShotArguments

    splits = DatasetDict(
        train=_labelled({"a": 20, "b": 20, "c": 20}),
        validation=_labelled({"a": 3, "b": 3, "c": 3}),
        test=_labelled({"a": 4, "b": 4, "c": 4}),
    )
    fewshot = FewShotArguments(examples_per_class=6, train_labels=["c", "a"])
    out = fewshot_splits(splits, fewshot, DataArguments(max_train_samples=5), seed=3)
    assert Counter(out["train"]["label"]) == {0: 6, 2: 6}  # K of each trained label; max_train_samples unused
    assert Counter(out["validation"]["label"]) == {0: 3, 2: 3}
    assert len(out["test"]) == 12 and out["train"].features["label"].names == ["a", "b", "c"]
    with pytest.raises(DataError, match="'z' is not a label"):
        fewshot_splits(splits, FewShotArguments(train_labels=["a", "z"]), DataArguments(), seed=0)


# ------------------------------------------------------------------------------------------- pairs


def test_contrastive_pairs_balanced_seeded_no_self_pairs():
    labels = [0] * 5 + [1] * 3 + [2] * 4
    pairs = contrastive_pairs(labels, iterations=3, seed=7)
    assert len(pairs) == 2 * 3 * len(labels)
    assert sum(s == 1.0 for _, _, s in pairs) == sum(s == 0.0 for _, _, s in pairs) == 3 * len(labels)
    assert all(i != j for i, j, _ in pairs)
    assert all((labels[i] == labels[j]) == (s == 1.0) for i, j, s in pairs)
    # every example anchors one positive and one negative pair per iteration
    anchors = Counter((i, s) for i, _, s in pairs)
    assert set(anchors.values()) == {3} and len(anchors) == 2 * len(labels)
    assert pairs == contrastive_pairs(labels, iterations=3, seed=7)
    assert pairs != contrastive_pairs(labels, iterations=3, seed=8)


def test_contrastive_pairs_refuse_what_cannot_pair():
    with pytest.raises(DataError, match="at least 2 per class"):
        contrastive_pairs([0, 0, 1], iterations=1, seed=0)
    with pytest.raises(DataError, match="at least 2 classes"):
        contrastive_pairs([1, 1, 1], iterations=1, seed=0)


def test_pair_collator_tokenizes_both_sides(model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = PairCollator(tokenizer, 16)(
        [{"text_a": "good movie", "text_b": "bad plot was dull", "label": 0.0}]
    )
    assert batch["a_input_ids"].shape[1] == 4 and batch["b_input_ids"].shape[1] == 6
    assert batch["labels"].tolist() == [0.0]


# ------------------------------------------------------------------------------- loss and training


def test_cosine_similarity_loss_is_mse_of_cosine_and_label():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_similarity_loss(a, b, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.0)
    assert cosine_similarity_loss(a, b, torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)


def _pair_cosines(model, tokenizer, texts, labels) -> tuple[float, float]:
    e = torch.nn.functional.normalize(torch.from_numpy(embed_texts(model, tokenizer, texts, 32)), dim=1)
    cos = (e @ e.T).numpy()
    y = np.asarray(labels)
    same = (y[:, None] == y[None, :]) & ~np.eye(len(y), dtype=bool)
    different = y[:, None] != y[None, :]
    return float(cos[same].mean()), float(cos[different].mean())


def test_contrastive_training_pulls_same_label_pairs_together(model_dir, tmp_path):
    rows = sentiment_rows(24, seed=3, neutral=False)
    texts = [r["review"] for r in rows]
    labels = [int(r["sentiment"] == "positive") for r in rows]
    torch.manual_seed(0)
    model = build_classifier(
        ModelArguments(str(model_dir), pooling="mean", max_length=32), TransferArguments(), ["neg", "pos"]
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    same_before, different_before = _pair_cosines(model, tokenizer, texts, labels)
    args = ContrastiveTrainingArguments(
        str(tmp_path / "out"),
        contrastive_iterations=4,
        learning_rate=5e-3,
        num_train_epochs=2,
        per_device_train_batch_size=16,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        seed=0,
    )
    trainer = ContrastiveTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"text": texts, "label": labels}),
        processing_class=tokenizer,
        max_length=32,
    )
    assert len(trainer.train_dataset) == 2 * 4 * len(texts)
    trainer.train()
    same_after, different_after = _pair_cosines(model, tokenizer, texts, labels)
    assert same_after > same_before
    assert same_after - different_after > same_before - different_before + 0.1


def test_a_strategy_that_trains_no_encoder_weight_is_refused(model_dir, tmp_path):
    model = build_classifier(
        ModelArguments(str(model_dir), pooling="mean"), TransferArguments(strategy="frozen"), ["a", "b"]
    )
    args = ContrastiveTrainingArguments(str(tmp_path / "o"), use_cpu=True, report_to="none")
    with pytest.raises(ConfigError, match="--strategy full or lora"):
        ContrastiveTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 0, 1, 1]}),
            processing_class=AutoTokenizer.from_pretrained(model_dir),
        )


# -------------------------------------------------------------------------------------------- head


@pytest.mark.parametrize("train_classes", [[0, 2], [0, 1, 2]])
def test_logistic_head_copied_into_the_classifier_predicts_like_the_regression(model_dir, train_classes):
    from sklearn.linear_model import LogisticRegression

    model = build_classifier(
        ModelArguments(str(model_dir), pooling="mean", max_length=32),
        TransferArguments(),
        ["negative", "neutral", "positive"],
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [r for r in sentiment_rows(60, seed=1) if r["sentiment"] != "neutral" or 1 in train_classes]
    ids = {"negative": 0, "neutral": 1, "positive": 2}
    texts, labels = [r["review"] for r in rows], [ids[r["sentiment"]] for r in rows]
    features = embed_texts(model, tokenizer, texts, 32)
    fit_logistic_head(model, features, labels, seed=0)
    fit = FitResult(model, tokenizer, ["negative", "neutral", "positive"], False, 32, 16)
    test_texts = [r["review"] for r in sentiment_rows(30, seed=9)]
    preds, probs = predict(fit, test_texts)
    regression = LogisticRegression(max_iter=1000, random_state=0).fit(features, labels)
    expected = regression.predict(embed_texts(model, tokenizer, test_texts, 32))
    assert preds.tolist() == expected.tolist()
    if 1 not in train_classes:  # a label never trained is never predicted
        assert 1 not in preds.tolist() and probs[:, 1].max() < 1e-6


def test_a_head_that_does_not_read_the_sentence_embedding_is_refused(model_dir):
    model = build_classifier(
        ModelArguments(str(model_dir), pooling="mean", max_length=32), TransferArguments(), ["a", "b"]
    )
    check_method(model, FewShotArguments(method="logreg"))  # its linear head reads the 32-d mean
    with pytest.raises(ModelError, match="the sentence embeddings have 16 numbers but the head reads 32"):
        fit_logistic_head(model, np.zeros((4, 16), dtype=np.float32), [0, 0, 1, 1], seed=0)
    model.classifier = torch.nn.Linear(16, 2)  # a head of other width: numpy's broadcast error mid-run
    with pytest.raises(
        ModelError,
        match="--method logreg copies a logistic regression on the 32-d sentence embedding into the head, "
        "but PooledForSequenceClassification's head reads 16 numbers",
    ):
        check_method(model, FewShotArguments(method="logreg"))


# ------------------------------------------------------------------------------------- the recipes


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data") / "reviews.csv", sentiment_rows(120))


def _argv(model_dir, data_csv, out, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--dataset",
        str(data_csv),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(out),
        "--max_length",
        "32",
        "--per_device_train_batch_size",
        "8",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--load_best_model_at_end",
        "false",
        *extra,
    ]


def _reloaded_predictions_match(out, tmp_path):
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    rows = cli.cli(
        [
            "predict",
            "--model",
            str(out),
            "--input",
            str(out / "predictions.jsonl"),
            "--output",
            str(tmp_path / f"{out.name}-p.jsonl"),
        ]
    )
    assert [r["label"] for r in rows] == [s["label"] for s in saved]
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in saved], abs=1e-4)
    return saved


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_contrastive_run_trains_saves_and_reloads(model_dir, data_csv, tmp_path, strategy):
    out = tmp_path / f"run-{strategy}"
    extra = ["--method", "contrastive", "--strategy", strategy, "--examples_per_class", "4"]
    extra += [
        "--train_labels",
        "negative",
        "positive",
        "--contrastive_iterations",
        "2",
        "--eval_datasets",
        "none",
    ]
    # the tiny BERT has no sentence-transformers config: auto reads its pooler; lora runs with mean pooling
    extra += ["--pooling", "mean"] if strategy == "lora" else []
    metrics = sentiment.main(_argv(model_dir, data_csv, out, *extra))
    config = json.loads((out / "config.json").read_text())
    if strategy == "lora":  # the pooled classifier, its head the copied regression
        assert config["model_type"] == "nlptransfer_pooled" and config["pooling"] == "mean"
    else:  # the plain transformers classifier: the regression reads the pooler output
        assert config["model_type"] == "bert" and config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}  # tested on all three
    assert "logreg_train_accuracy" in metrics["train"] and metrics["log_history"]
    saved = _reloaded_predictions_match(out, tmp_path)
    assert {s["gold"] for s in saved} == {"negative", "neutral", "positive"}
    assert "neutral" not in {s["label"] for s in saved}  # never trained, never predicted
    card = (out / "README.md").read_text()
    assert (
        "--method contrastive" in card and "4 examples per class" in card and f"--strategy {strategy}" in card
    )


def test_logreg_and_finetune_few_shot_runs(model_dir, data_csv, tmp_path):
    out = tmp_path / "logreg"
    metrics = text_classification.main(
        _argv(
            model_dir,
            data_csv,
            out,
            "--method",
            "logreg",
            "--strategy",
            "frozen",
            "--examples_per_class",
            "5",
        )
    )
    assert metrics["test"]["f1_micro"] > 0 and "--method logreg" in (out / "README.md").read_text()
    _reloaded_predictions_match(out, tmp_path)
    out = tmp_path / "finetune"
    text_classification.main(_argv(model_dir, data_csv, out, "--examples_per_class", "3", "--max_steps", "2"))
    assert "3 examples per class (9 rows" in (out / "README.md").read_text()
    _reloaded_predictions_match(out, tmp_path)


def _contents(folder) -> dict[str, str]:
    return {f.name: f.read_text() for f in sorted(folder.iterdir())}


def _refused_before_the_run_starts(main, argv, out, capsys) -> str:
    """The one error line of `main` run over a previous run's folder with --overwrite_output_dir true, which
    still holds that run's files afterwards (RunWriter.start removes them: nothing may fail after it)."""
    out.mkdir(parents=True)
    (out / "metrics.json").write_text('{"from": "the previous run"}')
    record = {
        "recipe": "text_classification",
        "status": "complete",
        "started": 0.0,
        "files": ["metrics.json"],
    }
    (out / "run.json").write_text(json.dumps(record))
    before = _contents(out)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [*argv, "--overwrite_output_dir", "true"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(errors) == 1 and err[-1] == errors[0], err[-5:]
    assert _contents(out) == before
    return errors[0]


@pytest.mark.parametrize("rows", [["--examples_per_class", "1"], ["--max_train_samples", "4"]])
def test_contrastive_with_a_single_example_of_a_class_fails_before_the_run(
    model_dir, data_csv, tmp_path, capsys, rows
):
    out = tmp_path / "out"
    argv = _argv(model_dir, data_csv, out, "--method", "contrastive", "--eval_datasets", "none", *rows)
    err = _refused_before_the_run_starts(sentiment.main, argv, out, capsys)
    assert re.fullmatch(
        r"error: --method contrastive needs >= 2 training examples of every class \(class '(negative|neutral|"
        r"positive)' has 1\); use --examples_per_class 2 or more",
        err,
    ), err


@pytest.mark.parametrize(
    "method", [["logreg", "--strategy", "frozen"], ["contrastive", "--strategy", "full"]]
)
def test_logreg_and_contrastive_on_multi_label_data_fail_before_the_run(model_dir, tmp_path, capsys, method):
    data = tmp_path / "tags.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for row in sentiment_rows(90):
            tags = [row["sentiment"]] + (["long"] if len(row["review"].split()) > 6 else [])
            f.write(json.dumps({"review": row["review"], "tags": tags}) + "\n")
    out = tmp_path / "out"
    argv = _argv(model_dir, data, out, "--label_column", "tags", "--method", *method)
    err = _refused_before_the_run_starts(text_classification.main, argv, out, capsys)
    assert err == f"error: --method {method[0]} needs single-label data; use --method finetune"


def test_max_train_samples_as_a_flag_beats_examples_per_class_of_a_config_file(caplog):
    """--config recipes/sentiment/minilm_fewshot.yaml --max_train_samples 100 was refused: "both choose the
    training rows", though only one of them was given on the command line."""
    argv = ["--config", str(ROOT / "recipes/sentiment/minilm_fewshot.yaml"), "--max_train_samples", "100"]
    _, data_args, transfer_args, fewshot, compare_args, *_ = sentiment.make_parser().parse(argv)
    assert fewshot.examples_per_class == 16
    with caplog.at_level(logging.INFO, logger="nlptransfer"):
        check_fewshot(fewshot, transfer_args, compare_args, data_args)
    won = "--max_train_samples 100 chooses the training rows; examples_per_class 16 of --config is unused"
    assert won in caplog.text
    assert fewshot.examples_per_class is None and data_args.max_train_samples == 100
    from datasets import DatasetDict

    splits = DatasetDict(train=_labelled({"negative": 90, "neutral": 90, "positive": 90}))
    train = fewshot_splits(splits, fewshot, data_args, seed=0)["train"]  # train_labels of the file kept
    assert len(train) == 100 and set(train["label"]) == {0, 2}


COMPARE_ONLY = [
    (["--train_sizes", "8/class"], "--train_sizes draws a learning curve with --compare true"),
    (["--train_sizes", "garbage"], "for few-shot training use --examples_per_class 8"),
    (["--seeds", "3"], "--seeds repeats every compared method over seeds with --compare true"),
    (["--compare_strategies", "lora"], "--compare_strategies lists the strategies compared"),
    (["--scratch", "false"], "--scratch adds the random-initialisation baseline"),
    (
        ["--compare_adapter_lr", "1e-3"],
        "--compare_adapter_lr sets the learning rate of the compared adapters",
    ),
    (["--compare", "false", "--seeds", "2"], "--seeds repeats every compared method"),
]


@pytest.mark.parametrize(("flags", "expected"), COMPARE_ONLY, ids=[" ".join(f) for f, _ in COMPARE_ONLY])
@pytest.mark.parametrize("recipe", [sentiment, text_classification])
def test_compare_only_flags_without_compare_are_refused(recipe, flags, expected):
    """They were ignored: --train_sizes 8/class trained on every row without a word."""
    with pytest.raises(ConfigError, match=re.escape(expected)) as info:
        recipe.make_parser().parse(flags)
    assert "add --compare true" in str(info.value)


def test_compare_settings_of_a_config_file_or_with_compare_still_parse(model_dir, data_csv, tmp_path, capsys):
    sentiment.make_parser().parse(["--config", str(ROOT / "recipes/sentiment/glove_frozen.yaml")])
    sentiment.make_parser().parse(["--compare", "true", "--seeds", "2", "--train_sizes", "8/class"])
    compare = ROOT / "recipes/text_classification/minilm_pubmed_compare.yaml"  # compare: true in the file
    text_classification.make_parser().parse(["--config", str(compare), "--seeds", "1", "--scratch", "false"])
    out = tmp_path / "out"  # through the recipe: one line, nothing written
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sentiment.main, _argv(model_dir, data_csv, out, "--train_sizes", "8/class"))
    assert exit_info.value.code == 2 and "--train_sizes draws a learning curve" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------- learning curves per class


def test_train_sizes_per_class_parse_and_draw_k_of_every_class():
    from nlptransfer.evaluation.comparison import PerClass, parse_train_sizes, run_comparison

    assert parse_train_sizes("16/class, 8/class") == [PerClass(8), PerClass(16)]
    for bad in ("8/class,50", "0/class", "8/class,8/class"):
        with pytest.raises(ConfigError, match="--train_sizes"):
            parse_train_sizes(bad)
    labels = [0] * 30 + [1] * 12 + [2] * 6
    seen = []
    result = run_comparison(
        {"m": lambda seed, idx: seen.append([labels[i] for i in idx]) or {"f1_macro": 0.5}},
        seeds=[1, 2],
        train_sizes=parse_train_sizes("2/class,5/class"),
        n_train=len(labels),
        train_labels=labels,
    )
    assert result.train_sizes == [2, 5] and result.size_label(5) == "5/class"
    assert [Counter(s) for s in seen] == [Counter({0: k, 1: k, 2: k}) for k in (2, 2, 5, 5)]
    with pytest.raises(DataError, match="class '2' has only 6"):
        run_comparison({"m": lambda s, i: {}}, [1], [PerClass(7)], len(labels), labels)


def test_compare_with_sizes_per_class(model_dir, data_csv, tmp_path):
    out = tmp_path / "compare"
    flags = ["--compare", "true", "--seeds", "1", "--train_sizes", "3/class,6/class"]
    flags += ["--compare_strategies", "frozen", "--scratch", "false"]
    text_classification.main(_argv(model_dir, data_csv, out, *flags))
    summary = (out / "comparison_summary.csv").read_text()
    assert "3" in summary and (out / "data_efficiency.png").is_file()
    assert "6/class" in (out / "comparison.md").read_text()
    # a size per class above the smallest class fails before anything is written
    with pytest.raises(DataError, match="fewer than the 500 per class.*--train_sizes N/class"):
        text_classification.main(
            _argv(model_dir, data_csv, tmp_path / "c2", *flags[:4], "--train_sizes", "500/class")
        )
    assert not (tmp_path / "c2").exists()


# ------------------------------------------------------------------------------------- the benchmark


def test_bench_fewshot_flags_parse_and_results_render():
    from benchmarks import bench_fewshot
    from nlptransfer.fewshot import check_fewshot

    for recipe, data_flags, _, _ in bench_fewshot.DATASETS.values():
        parser = {"sentiment": sentiment, "text_classification": text_classification}[recipe].make_parser()
        for flags in bench_fewshot.METHODS.values():
            argv = [*data_flags, *bench_fewshot.COMMON, *flags, "--examples_per_class", "8", "--seed", "1"]
            _, data_args, transfer_args, fewshot, compare_args, *_ = parser.parse(argv)
            check_fewshot(fewshot, transfer_args, compare_args, data_args)
            assert fewshot.examples_per_class == 8
    results = [
        {"dataset": "movies", "method": m, "k": 8, "seed": s, "metric": "f1_micro", "score": score + step * s}
        | {"train_seconds": 1.0, "process_seconds": 2.0, "load_before": 0.5}
        for m, score, step in (("full", 0.5, 0.01), ("contrastive", 0.7, 0.02))
        for s in range(3)
    ]
    table = bench_fewshot.render(results)
    assert "0.720 ± 0.020" in table and "+0.210 (p=" in table


@pytest.mark.parametrize("recipe", ["sentiment", "text_classification"])
def test_every_shipped_yaml_passes_the_fewshot_checks_when_given_with_config(recipe, tmp_path):
    """The shipped YAMLs list the contrastive defaults; passing one with --config is not a contrastive
    option given without --method contrastive (it failed with exit 2 for recipes/sentiment/minilm_full.yaml)."""
    import importlib
    from pathlib import Path

    from nlptransfer.fewshot import check_fewshot

    module = importlib.import_module(f"nlptransfer.recipes.{recipe}")
    configs = sorted((Path(__file__).resolve().parents[1] / "recipes" / recipe).glob("*.yaml"))
    assert configs
    for config in configs:
        # with --examples_per_class as a flag too: it beats a max_train_samples of the file
        # or --max_train_samples as a flag: it beats an examples_per_class of the file
        for extra in ([], ["--examples_per_class", "4"], ["--max_train_samples", "50"]):
            _, data_args, transfer_args, fewshot, compare_args, *_ = module.make_parser().parse(
                ["--config", str(config), *extra]
            )
            check_fewshot(fewshot, transfer_args, compare_args, data_args)
    # a contrastive option away from its default, without --method contrastive, still fails
    _, data_args, transfer_args, fewshot, compare_args, *_ = module.make_parser().parse(
        ["--config", str(configs[0]), "--contrastive_iterations", "3", "--method", "finetune"]
    )
    with pytest.raises(ConfigError, match="--contrastive_iterations applies to --method contrastive only"):
        check_fewshot(fewshot, transfer_args, compare_args, data_args)
    # both chosen in one file, or both as flags: refused
    both = tmp_path / "both.yaml"
    both.write_text("examples_per_class: 4\nmax_train_samples: 10\n")
    for argv in (
        ["--config", str(configs[0]), "--examples_per_class", "4", "--max_train_samples", "10"],
        ["--config", str(both)],
    ):
        _, data_args, transfer_args, fewshot, compare_args, *_ = module.make_parser().parse(argv)
        with pytest.raises(ConfigError, match="both choose the training rows"):
            check_fewshot(fewshot, transfer_args, compare_args, data_args)
