"""A recipe's log, redirected to a file as a user's `> run.log 2>&1` does: no terminal colour codes, none of the
library warnings that are not the user's to fix (pin_memory on a CPU, peft's is_gradient_checkpointing), no
progress bars of internal dataset steps, each event once; `--verbose true` brings the bars back."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import sentiment_rows, tiny_model_dir, write_csv

from nlptransfer import assets
from nlptransfer.assets import download

INTERNAL_BARS = (
    "Flattening the indices",
    "Casting the dataset",
    "encoding labels",
    "tokenize:",
    "Loading weights",
)


def _run(tmp_path: Path, name: str, *extra: str) -> str:
    """The tiny sentiment recipe (LoRA, 2 epochs with validation) as a subprocess, its output in a file."""
    model_dir = tiny_model_dir(tmp_path / "models")
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(60))
    log = tmp_path / f"{name}.log"
    argv = [
        sys.executable,
        "-m",
        "nlptransfer.recipes.sentiment",
        "--model_name_or_path",
        str(model_dir),
        "--dataset",
        str(data),
        "--eval_datasets",
        "none",
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--strategy",
        "lora",
        "--target_modules",
        "query",
        "value",
        "--max_length",
        "32",
        "--num_train_epochs",
        "2",
        "--per_device_train_batch_size",
        "16",
        "--output_dir",
        str(tmp_path / name),
        "--use_cpu",
        "true",
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("FORCE_COLOR", None)
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=600)
    text = log.read_text(encoding="utf-8")
    assert proc.returncode == 0, text[-3000:]
    return text


@pytest.fixture(scope="module")
def quiet_log(tmp_path_factory) -> str:
    return _run(tmp_path_factory.mktemp("quiet"), "quiet")


def test_a_redirected_log_has_no_colour_codes(quiet_log):
    assert "\x1b[" not in quiet_log


def test_no_warnings_that_are_not_the_users_to_fix(quiet_log):
    assert "pin_memory" not in quiet_log  # printed every epoch on a CPU
    assert "is_gradient_checkpointing" not in quiet_log  # peft reading a deprecated transformers property


def test_no_progress_bars_of_internal_steps_but_the_training_bar_stays(quiet_log):
    for bar in INTERNAL_BARS:
        assert bar not in quiet_log, bar
    assert "it/s]" in quiet_log or "s/it]" in quiet_log  # the Trainer's training bar


def test_verbose_brings_the_internal_bars_back(tmp_path):
    text = _run(tmp_path, "verbose", "--verbose", "true")
    assert any(bar in text for bar in INTERNAL_BARS)
    assert "\x1b[" not in text  # still no colour codes in a file


def test_the_embedded_copy_is_announced_once_per_model(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(download, "fetch", lambda key, force=False: tmp_path / key)
    monkeypatch.setattr(download, "_ANNOUNCED", set())
    with caplog.at_level(logging.INFO, logger="nlptransfer"):
        for _ in range(3):  # tokenizer, model, pooling: each resolves the name
            assert assets.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(tmp_path / "minilm")
    lines = [r for r in caplog.records if "resolved to the embedded copy" in r.getMessage()]
    assert len(lines) == 1
