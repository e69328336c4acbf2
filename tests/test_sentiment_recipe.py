"""The sentiment recipe end to end on a tiny model and tiny data, plus its bad-input behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from tiny import sentiment_rows, write_csv
from transformers import pipeline

from nlptransfer.errors import run_cli
from nlptransfer.recipes import sentiment


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(90))


def _argv(model_dir, data_csv, out, *extra):
    return [
        "--model_name_or_path",
        str(model_dir),
        "--dataset",
        str(data_csv),
        "--eval_datasets",
        "none",
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "8",
        "--per_device_eval_batch_size",
        "4",
        "--learning_rate",
        "1e-2",
        "--logging_steps",
        "1",
        "--use_cpu",
        "true",
        *extra,
    ]


def test_recipe_writes_a_complete_loadable_run(model_dir, data_csv, tmp_path):
    out = tmp_path / "run"
    # group_by_length makes Trainer.predict return rows out of order in transformers 5; the recipe must not care.
    metrics = sentiment.main(_argv(model_dir, data_csv, out, "--train_sampling_strategy", "group_by_length"))
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "config.yaml",
        "README.md",
        "predictions.jsonl",
        "run.json",
        "loss_curve.png",
        "confusion_matrix.png",
    ):
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and "metrics.json" in run["files"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == json.loads(json.dumps(metrics["test"]))
    card = (out / "README.md").read_text()
    assert "micro-F1" in card and f"{saved['test'][str(data_csv)]['f1_micro']:.4f}" in card
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["text_column"] == "review" and config["strategy"] == "full"

    # Row i of predictions.jsonl is the prediction for text i: the saved model scores each text the same.
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    accuracy = sum(r["label"] == r["gold"] for r in rows) / len(rows)  # = micro-F1 for single labels
    assert saved["test"][str(data_csv)]["f1_micro"] == pytest.approx(accuracy)
    clf = pipeline("text-classification", model=str(out))
    texts = [r["text"] for r in rows]
    assert len(set(texts)) > 10
    for row, got in zip(rows, clf(texts, batch_size=1), strict=True):
        assert got["label"] == row["label"]
        assert got["score"] == pytest.approx(row["score"], abs=1e-4)


def test_lora_run_saves_adapter_and_merged_model(model_dir, data_csv, tmp_path):
    out = tmp_path / "lora"
    sentiment.main(
        _argv(model_dir, data_csv, out, "--strategy", "lora", "--target_modules", "query", "value")
    )
    assert (out / "adapter" / "adapter_config.json").exists()
    assert (out / "model.safetensors").exists()
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    got = pipeline("text-classification", model=str(out))([r["text"] for r in rows[:5]])
    assert [g["label"] for g in got] == [r["label"] for r in rows[:5]]


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sentiment.main, argv)
    assert exit_info.value.code == 2
    # Progress bars of the steps that did run may precede it; the error is one line, last, no traceback.
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err)
    return errors[0]


def test_previous_run_is_never_overwritten(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    msg = _fails(_argv(model_dir, data_csv, out), capsys)
    assert "--overwrite_output_dir" in msg and "1 file(s)" in msg
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # --overwrite_output_dir replaces only a previous run's own files: a user's file means refuse, by name
    msg = _fails(_argv(model_dir, data_csv, out, "--overwrite_output_dir", "true"), capsys)
    assert "notes.txt" in msg
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"  # nothing of the user's lost
    (out / "notes.txt").unlink()
    sentiment.main(_argv(model_dir, data_csv, out))
    msg = _fails(_argv(model_dir, data_csv, out), capsys)
    assert "previous run" in msg


def test_bad_inputs_one_line_exit_2(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "out"
    cases = {
        "missing file": (["--dataset", str(tmp_path / "nope.csv")], "nope.csv"),
        "missing column": (["--text_column", "body"], "--text_column"),
        "bad strategy": (["--strategy", "adapterx"], "invalid choice"),
        "bad target modules": (["--strategy", "lora", "--target_modules", "q_proj"], "--target_modules"),
        "unknown key": (["--lerning_rate", "1"], "did you mean 'learning_rate'"),
        "missing model": (["--model_name_or_path", str(tmp_path / "no-model")], "embedded default"),
    }
    for name, (extra, expected) in cases.items():
        msg = _fails(_argv(model_dir, data_csv, out) + extra, capsys)  # later flags override earlier ones
        assert expected in msg, (name, msg)
        assert not out.exists(), f"{name}: a failed run must not create the output directory"


def test_cli_subprocess_error_is_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlptransfer.recipes.sentiment",
            "--dataset",
            str(tmp_path / "missing.csv"),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.csv" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
    debug = subprocess.run(
        [
            sys.executable,
            "-m",
            "nlptransfer.recipes.sentiment",
            "--dataset",
            str(tmp_path / "missing.csv"),
            "--output_dir",
            str(tmp_path / "o"),
            "--debug",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.slow
def test_real_recipe_few_steps_on_embedded_assets(tmp_path):
    """The default recipe on the embedded MiniLM and VADER data, cut to a few steps and small test sets."""
    out = tmp_path / "real"
    flags = "--max_steps 4 --max_eval_samples 64 --eval_strategy no --strategy lora".split()
    metrics = sentiment.main(["--output_dir", str(out), *flags])
    assert set(metrics["test"]) == {"vader-movies", "vader-tweets", "vader-amazon", "vader-nyt"}
    assert metrics["trainable_parameters"] < metrics["total_parameters"] / 10
    clf = pipeline("text-classification", model=str(out))
    assert clf("a wonderful, moving film")[0]["label"] in {"negative", "neutral", "positive"}


def test_compare_writes_the_three_files(model_dir, data_csv, tmp_path):
    out = tmp_path / "cmp"
    argv = _argv(
        model_dir,
        data_csv,
        out,
        "--compare",
        "true",
        "--seeds",
        "2",
        "--compare_strategies",
        "frozen",
        "lora",
    )
    result = sentiment.main(argv + ["--max_steps", "2"])
    assert {"comparison.md", "comparison.csv", "comparison.png"} <= set(result["comparison"])
    rows = (out / "comparison.csv").read_text().splitlines()
    methods = {line.split(",")[0] for line in rows[1:]}
    assert methods == {"tfidf_logreg", "scratch", "frozen", "lora"}
    assert len(rows) - 1 == 4 * 2  # methods x seeds, one train size
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "transfer" in (out / "comparison.md").read_text()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_report_to_tensorboard_writes_event_files(model_dir, data_csv, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "tb"
    sentiment.main(_argv(model_dir, data_csv, out, "--report_to", "tensorboard"))
    assert list((out / "runs").rglob("events.out.tfevents.*"))


def test_atomic_writes_keep_normal_permissions(tmp_path):
    import os

    from nlptransfer.runs import write_text_atomic

    path = write_text_atomic(tmp_path / "m.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
