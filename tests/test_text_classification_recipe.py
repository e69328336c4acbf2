"""The text-classification recipe on tiny models: multi-class, multi-label, class weights, cached frozen
features, --compare with a data-efficiency curve, and its bad inputs."""

from __future__ import annotations

import csv
import json
import logging

import pytest
from tiny import sentiment_rows, write_csv
from transformers import AutoConfig, pipeline

from nlptransfer.errors import run_cli
from nlptransfer.recipes import text_classification as tc


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(120))


def _argv(model_dir, data, out, *extra):
    flags = (
        "--text_column review --label_column sentiment --max_train_samples 80 --max_eval_samples 40 "
        "--num_train_epochs 2 --per_device_train_batch_size 8 --learning_rate 1e-2 --use_cpu true --max_length 32"
    ).split()
    paths = ["--model_name_or_path", str(model_dir), "--dataset", str(data), "--output_dir", str(out)]
    return [*paths, *flags, *extra]


def test_multiclass_with_class_weights_and_selection(model_dir, data_csv, tmp_path):
    out = tmp_path / "mc"
    metrics = tc.main(_argv(model_dir, data_csv, out))  # defaults: class weights, best macro-F1 epoch
    assert metrics["multilabel"] is False
    assert set(metrics["test"]) >= {"accuracy", "f1_micro", "f1_macro"}
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "single_label_classification"
    assert set(config["id2label"].values()) == {"negative", "neutral", "positive"}
    assert (out / "run.json").exists() and (out / "predictions.jsonl").exists()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test_report"]["negative"]["support"] > 0


def test_normalize_labels_through_the_recipe(model_dir, tmp_path, caplog):
    """Issue 15 #10: --normalize_labels true merges 'Positive' / 'positive ' into one class."""
    rows = sentiment_rows(90)
    for i, row in enumerate(rows):
        if i % 2:
            row["sentiment"] = f" {row['sentiment'].upper()}"
    data = write_csv(tmp_path / "cases.csv", rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("normalize_labels: true\nnum_train_epochs: 1\n", encoding="utf-8")
    out = tmp_path / "norm"
    caplog.set_level(logging.WARNING, logger="nlptransfer")
    tc.main([*_argv(model_dir, data, out), "--config", str(cfg)])
    config = json.loads((out / "config.json").read_text())
    assert set(config["id2label"].values()) == {"negative", "neutral", "positive"}
    assert "differ only by case" not in caplog.text


def _multilabel_jsonl(path, n=90):
    rows = sentiment_rows(n)
    with path.open("w", encoding="utf-8") as f:
        for i, row in enumerate(rows):
            tags = [row["sentiment"]] + (["long"] if len(row["review"].split()) > 6 else [])
            f.write(json.dumps({"review": row["review"], "tags": tags, "id": i}) + "\n")
    return path


def test_multilabel_list_column(model_dir, tmp_path):
    data = _multilabel_jsonl(tmp_path / "tags.jsonl")
    out = tmp_path / "ml"
    metrics = tc.main(_argv(model_dir, data, out, "--label_column", "tags"))  # class weights -> pos_weight
    assert metrics["multilabel"] is True
    assert {"f1_micro", "f1_macro", "f1_samples"} <= set(metrics["test"])
    assert set(metrics["thresholds"]) == {"long", "negative", "neutral", "positive"}
    assert all(0 < t < 1 for t in metrics["thresholds"].values())
    assert AutoConfig.from_pretrained(out).problem_type == "multi_label_classification"
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert isinstance(row["gold"], list) and isinstance(row["label"], list)
    assert set(row["probabilities"]) == set(metrics["thresholds"])


def test_multilabel_from_01_columns(model_dir, tmp_path):
    rows = sentiment_rows(90)
    path = tmp_path / "cols.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "pos", "neg"])
        for r in rows:
            w.writerow([r["review"], int(r["sentiment"] == "positive"), int(r["sentiment"] == "negative")])
    metrics = tc.main(
        _argv(model_dir, path, tmp_path / "o", "--label_column", "pos,neg", "--class_weighted_loss", "false")
    )
    assert metrics["multilabel"] and set(metrics["thresholds"]) == {"pos", "neg"}


def test_frozen_features_are_cached_and_invalidated(model_dir, data_csv, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="nlptransfer")
    tc.main(_argv(model_dir, data_csv, tmp_path / "f1", "--strategy", "frozen"))
    assert "feature cache hit" not in caplog.text
    caplog.clear()
    tc.main(_argv(model_dir, data_csv, tmp_path / "f2", "--strategy", "frozen"))
    assert caplog.text.count("feature cache hit") == 2  # train and validation
    caplog.clear()
    other = write_csv(tmp_path / "other.csv", sentiment_rows(120, seed=7))  # different texts: a miss
    tc.main(_argv(model_dir, other, tmp_path / "f3", "--strategy", "frozen"))
    assert "feature cache hit" not in caplog.text
    assert list((tmp_path / "cache" / "features").glob("*.npy"))
    clf = pipeline("text-classification", model=str(tmp_path / "f3"))  # loads; its head names the labels
    assert clf.model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}


def test_compare_with_data_efficiency_curve(model_dir, data_csv, tmp_path):
    out = tmp_path / "cmp"
    flags = "--compare true --seeds 2 --train_sizes 30,all --compare_strategies frozen full"
    argv = _argv(model_dir, data_csv, out, *flags.split(), "--num_train_epochs", "1")
    files = set(tc.main(argv)["comparison"])
    assert {
        "comparison.md",
        "comparison.csv",
        "comparison.png",
        "data_efficiency.csv",
        "data_efficiency.png",
    } <= files
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert len(rows) == 4 * 2 * 2  # methods x seeds x sizes
    assert {r["method"] for r in rows} == {"tfidf_logreg", "scratch", "frozen", "full"}
    curve = list(csv.DictReader((out / "data_efficiency.csv").open()))
    assert {r["method"] for r in curve} == {"tfidf_logreg", "scratch", "frozen", "full"}
    md = (out / "comparison.md").read_text()
    assert "paired t-test" in md
    assert not (out / "compare_runs").exists()  # per-run Trainer scratch space is not left behind


def test_compare_takes_the_new_strategies_and_a_peft_config(model_dir, data_csv, tmp_path):
    """--strategy peft --peft_config FILE: the compared `peft` uses the file's method; the other compared
    strategies (bitfit, dora here) run without it."""
    (tmp_path / "peft.yaml").write_text("peft_type: LOKR\nr: 2\n", encoding="utf-8")
    out = tmp_path / "cmp"
    flags = "--compare true --seeds 1 --scratch false --compare_strategies bitfit dora peft --strategy peft"
    argv = _argv(model_dir, data_csv, out, *flags.split(), "--peft_config", str(tmp_path / "peft.yaml"))
    tc.main([*argv, "--max_steps", "3"])
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    assert {r["method"] for r in rows} == {"tfidf_logreg", "bitfit", "dora", "peft"}
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tc.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and not any("Traceback" in line for line in err)
    return errors[0]


def test_bad_inputs(model_dir, tmp_path, capsys):
    one_class = write_csv(
        tmp_path / "one.csv", [{"review": f"good movie {i}", "sentiment": "positive"} for i in range(20)]
    )
    assert "2 classes" in _fails(_argv(model_dir, one_class, tmp_path / "a"), capsys)
    blank = write_csv(tmp_path / "blank.csv", [{"review": "  ", "sentiment": "positive"}] * 10)
    assert "empty" in _fails(_argv(model_dir, blank, tmp_path / "b"), capsys)
    data = write_csv(tmp_path / "d.csv", sentiment_rows(60))
    msg = _fails(_argv(model_dir, data, tmp_path / "c", "--compare", "true", "--train_sizes", "5000"), capsys)
    assert "larger than" in msg and "'all'" in msg
    msg = _fails(_argv(model_dir, data, tmp_path / "d", "--compare", "true", "--train_sizes", "ten"), capsys)
    assert "--train_sizes" in msg or "train size" in msg
    assert not any((tmp_path / x).exists() for x in "abcd")


def test_an_interrupted_compare_keeps_its_finished_jobs_and_resumes(
    model_dir, data_csv, tmp_path, monkeypatch, caplog
):
    """Issue 21 #5/#6: Ctrl-C after some jobs leaves them on disk, a partial comparison.md and run.json
    'failed'; --resume true runs only the rest; a changed setting reuses nothing; config.yaml is saved."""
    from nlptransfer.recipes import _classification

    calls = {"n": 0, "fail_at": 2, "error": KeyboardInterrupt}
    real = _classification.evaluate

    def evaluate(fit, split):  # the neural jobs' last step
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise calls["error"]()
        return real(fit, split)

    monkeypatch.setattr(_classification, "evaluate", evaluate)
    out = tmp_path / "cmp"
    flags = "--compare true --seeds 3 --scratch false --compare_strategies full --num_train_epochs 1".split()
    argv = _argv(model_dir, data_csv, out, *flags)
    caplog.set_level(logging.INFO, logger="nlptransfer")
    with pytest.raises(KeyboardInterrupt):  # jobs: tfidf s0, full s0, tfidf s1 done; full s1 interrupted
        tc.main(argv)
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "interrupted" in record["reason"]
    assert len([f for f in record["files"] if f.startswith("compare_jobs/")]) == 3
    assert "config.yaml" in record["files"] and "compare: true" in (out / "config.yaml").read_text()
    md = (out / "comparison.md").read_text()
    assert "PARTIAL: 3 of 6 runs finished" in md and "--resume true" in md
    assert len(list(csv.DictReader((out / "comparison.csv").open()))) == 3
    assert "left" in caplog.text  # the time-left estimate after each job

    calls.update(n=0, fail_at=1, error=RuntimeError)  # a changed setting: no stored job may be reused
    with pytest.raises(RuntimeError):
        tc.main([*argv, "--resume", "true", "--learning_rate", "5e-3"])
    assert len(list(csv.DictReader((out / "comparison.csv").open()))) == 1  # tfidf s0 rerun, full s0 crashed
    assert json.loads((out / "run.json").read_text())["status"] == "failed"

    calls.update(n=0, fail_at=-1)
    tc.main([*argv, "--resume", "true"])  # the original settings: 3 stored jobs, 3 to run
    assert calls["n"] == 2  # full s1, full s2: the finished full s0 was not retrained
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and "comparison.md" in record["files"]
    assert set(record["files"]) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        "run.json"
    }
    assert len(list(csv.DictReader((out / "comparison.csv").open()))) == 6
    assert "PARTIAL" not in (out / "comparison.md").read_text()


def test_a_small_training_set_gets_enough_optimizer_steps(model_dir, data_csv, tmp_path, caplog):
    """Issue 21 #8: 80 rows at the default 2 epochs of batch 8 = 20 steps; min_train_steps 30 raises the
    epochs to 3 (logged once, recorded in config.yaml), unless the user chose the epochs or steps."""
    import yaml

    from nlptransfer.strategy_defaults import fit_budget_to_data

    base = [
        *(
            "--model_name_or_path",
            str(model_dir),
            "--dataset",
            str(data_csv),
            "--output_dir",
            str(tmp_path / "b"),
        ),
        *"--text_column review --label_column sentiment --max_train_samples 80 --max_eval_samples 40".split(),
        *"--per_device_train_batch_size 8 --use_cpu true --max_length 32 --min_train_steps 30".split(),
        *"--save_strategy no --load_best_model_at_end false".split(),
    ]
    for user, expected in (([], 3), (["--num_train_epochs", "2"], 2), (["--max_steps", "5"], None)):
        *_, training_args = tc.make_parser().parse([*base, *user])
        change = fit_budget_to_data(training_args, 80)
        assert change == ({} if expected in (None, 2) else {"num_train_epochs": 3})
        if expected is not None:
            assert training_args.num_train_epochs == expected

    # a --config file that sets the epochs keeps them unless it (or a flag) also asks for a minimum; a
    # shipped YAML sets both, so passing it with --config behaves as the recipe's defaults do
    no_min = [t for t in base if t not in ("--min_train_steps", "30")]
    both, epochs_only = tmp_path / "both.yaml", tmp_path / "epochs.yaml"
    both.write_text("num_train_epochs: 2\nmin_train_steps: 30\n")
    epochs_only.write_text("num_train_epochs: 2\n")
    for argv, expected in (
        (["--config", str(both), *no_min], 3),
        (["--config", str(epochs_only), *no_min, "--min_train_steps", "30"], 3),
        (["--config", str(epochs_only), *no_min], 2),
        (["--config", str(both), *no_min, "--num_train_epochs", "2"], 2),
    ):
        *_, training_args = tc.make_parser().parse(argv)
        fit_budget_to_data(training_args, 80)
        assert training_args.num_train_epochs == expected, argv

    caplog.set_level(logging.INFO, logger="nlptransfer")
    metrics = tc.main(base)
    assert caplog.text.count("raising --num_train_epochs from 2 to 3") == 1
    config = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert config["num_train_epochs"] == 3 and config["min_train_steps"] == 30
    assert max(e.get("step", 0) for e in metrics["log_history"]) >= 30
