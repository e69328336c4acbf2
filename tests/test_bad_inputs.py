"""Bad-input battery: every case ends in one line naming the problem and the fix, exit code 2, no traceback,
and nothing of the user's is created, changed or deleted. From Python, each raises a specific
`NlpTransferError` subclass. Property-based tests check the file loaders on arbitrary text and labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import sentiment_rows, tiny_model_dir, write_csv

from nlptransfer import NlpTransferError
from nlptransfer.config import DataArguments, ModelArguments, TransferArguments
from nlptransfer.data import load_source
from nlptransfer.errors import ConfigError, DataError, ModelError, OutputDirError, run_cli
from nlptransfer.modeling import build_classifier
from nlptransfer.recipes import sentiment, text_classification
from nlptransfer.runs import RunWriter
from nlptransfer.trainers import TransferTrainingArguments

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    extra: list[str]  # flags after the common ones (later flags override earlier ones)
    expected: str  # a fragment of the one-line error (the problem or the fix)
    setup: Callable[[Path], None] | None = None  # writes the bad input into the case folder
    recipe: str = "sentiment"


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)

    return setup


def _rows_csv(name: str, rows: list[dict]) -> Callable[[Path], None]:
    return lambda root: write_csv(root / name, rows)


def _unfinished_run(root: Path) -> None:
    out = root / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (out / "run.json").write_text(json.dumps({"recipe": "sentiment", "status": "running", "files": []}))


def _user_files(root: Path) -> None:
    (root / "out").mkdir()
    (root / "out" / "notes.txt").write_text("mine")


def _pickled_model(root: Path) -> None:
    from safetensors.torch import load_file

    src = tiny_model_dir(root / "src")
    shutil.copytree(src, root / "pickled")
    torch.save(load_file(root / "pickled" / "model.safetensors"), root / "pickled" / "pytorch_model.bin")
    (root / "pickled" / "model.safetensors").unlink()
    shutil.rmtree(root / "src")


def _config_only_model(root: Path) -> None:
    src = tiny_model_dir(root / "src")
    (root / "empty-model").mkdir()
    for f in src.iterdir():  # config and tokenizer, no weights
        if f.suffix != ".safetensors":
            shutil.copy(f, root / "empty-model" / f.name)
    shutil.rmtree(root / "src")


ONE_CLASS = [{"review": f"good film {i}", "sentiment": "positive"} for i in range(30)]
BLANK_LABELS = sentiment_rows(30)[:20] + [{"review": "a film", "sentiment": ""} for _ in range(10)]

CASES: dict[str, Case] = {
    # files and encodings
    "missing data file": Case(["--dataset", "{root}/nope.csv"], "nope.csv"),
    "empty csv file": Case(["--dataset", "{root}/empty.csv"], "empty", _write("empty.csv", "")),
    "csv with a header only": Case(
        ["--dataset", "{root}/header.csv"], "no rows", _write("header.csv", "review,sentiment\n")
    ),
    "latin-1 csv": Case(
        ["--dataset", "{root}/latin.csv"],
        "UTF-8",
        _write("latin.csv", ("review,sentiment\n" + "caf\xe9 good,positive\n" * 20).encode("latin-1")),
    ),
    "broken json": Case(["--dataset", "{root}/bad.json"], "bad.json", _write("bad.json", '[{"review": "x",')),
    "unsupported extension": Case(
        ["--dataset", "{root}/data.xlsx"], "data.xlsx", _write("data.xlsx", b"PK\x03")
    ),
    # columns and labels
    "missing text column": Case(["--text_column", "body"], "--text_column"),
    "missing label column": Case(["--label_column", "stars"], "--label_column"),
    "one class only": Case(["--dataset", "{root}/one.csv"], "class", _rows_csv("one.csv", ONE_CLASS)),
    "blank labels": Case(["--dataset", "{root}/blank.csv"], "label", _rows_csv("blank.csv", BLANK_LABELS)),
    "missing multi-label columns": Case(["--label_column", "a,b,c"], "--label_column", recipe="tc"),
    # configs
    "unknown flag": Case(["--lerning_rate", "1"], "did you mean 'learning_rate'"),
    "unknown yaml key": Case(
        ["--config", "{root}/c.yaml"], "did you mean 'strategy'", _write("c.yaml", "strategi: lora\n")
    ),
    "missing config file": Case(["--config", "{root}/none.yaml"], "none.yaml"),
    "invalid yaml": Case(["--config", "{root}/bad.yaml"], "YAML", _write("bad.yaml", "a: [1,\n")),
    "yaml not a mapping": Case(
        ["--config", "{root}/list.yaml"], "mapping", _write("list.yaml", "- 1\n- 2\n")
    ),
    "bad number": Case(["--num_train_epochs", "many"], "num_train_epochs"),
    "validation fraction > 1": Case(["--validation_fraction", "1.5"], "between 0 and 1"),
    # model paths and security
    "missing model path": Case(["--model_name_or_path", "{root}/no-model"], "embedded default"),
    "model folder without weights": Case(
        ["--model_name_or_path", "{root}/empty-model"], "could not be loaded", _config_only_model
    ),
    "pickled weights": Case(["--model_name_or_path", "{root}/pickled"], "--allow_pickle", _pickled_model),
    # strategies and peft settings
    "unknown strategy": Case(["--strategy", "bitfit"], "invalid choice"),
    "lora target modules absent": Case(
        ["--strategy", "lora", "--target_modules", "q_proj"], "--target_modules"
    ),
    "lora rank 0": Case(["--strategy", "lora", "--lora_r", "0"], "lora_r"),
    "unknown compare strategy": Case(
        ["--compare", "true", "--compare_strategies", "adapterx"], "compare_strategies"
    ),
    # sizes
    "max_length too small": Case(["--max_length", "4"], "--max_length"),
    "max_length above the model's positions": Case(["--max_length", "1000"], "takes (128 positions)"),
    "zero epochs": Case(["--num_train_epochs", "0", "--max_steps", "-1"], "--num_train_epochs"),
    "zero training samples": Case(["--max_train_samples", "0"], "max_train_samples"),
    "zero batch size": Case(["--per_device_train_batch_size", "0"], "per_device_train_batch_size"),
    "compare train size above data": Case(["--compare", "true", "--train_sizes", "10,5000"], "--train_sizes"),
    "zero seeds": Case(["--compare", "true", "--seeds", "0"], "seeds"),
    # output directories
    "output dir is a file": Case(["--output_dir", "{root}/out.txt"], "is a file", _write("out.txt", "mine")),
    "output dir holds user files": Case([], "--overwrite_output_dir", _user_files),
    "unfinished run without --resume": Case([], "--resume", _unfinished_run),
    # conflicting options
    "gradual unfreezing with frozen": Case(
        ["--strategy", "frozen", "--gradual_unfreezing_steps", "2"], "--strategy full"
    ),
    "gradual unfreezing with lora": Case(
        ["--strategy", "lora", "--gradual_unfreezing_steps", "2"], "full only"
    ),
    "best model with mismatched strategies": Case(
        ["--load_best_model_at_end", "true", "--eval_strategy", "epoch", "--save_strategy", "steps"],
        "strategy",
        recipe="tc",
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _argv(model_dir: Path, root: Path, extra: list[str]) -> list[str]:
    data = root / "reviews.csv"
    if not data.exists():
        write_csv(data, sentiment_rows(60))
    base = [
        "--model_name_or_path",
        str(model_dir),
        "--dataset",
        str(data),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(root / "out"),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--use_cpu",
        "true",
        "--report_to",
        "none",
    ]
    return base + [a.replace("{root}", str(root)) for a in extra]


def _fails(main, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    # Progress bars of steps that did run may come first; the error is one line, the last, no traceback.
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err), err
    return errors[0]


def test_the_battery_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(name, model_dir, tmp_path, capsys):
    case = CASES[name]
    root = tmp_path / "case"
    root.mkdir()
    if case.setup:
        case.setup(root)
    argv = _argv(model_dir, root, case.extra)
    if case.recipe == "sentiment":
        argv += ["--eval_datasets", "none"]
    before = _snapshot(root)
    main = sentiment.main if case.recipe == "sentiment" else text_classification.main
    msg = _fails(main, argv, capsys)
    assert case.expected in msg, msg
    assert _snapshot(root) == before, "a failed run must not create, change or delete any file"


def test_real_subprocess_bad_input_and_debug(model_dir, tmp_path):
    """The installed entry point: one stderr line and exit 2; --debug shows the traceback."""
    (tmp_path / "bad.yaml").write_text("learning_rat: 1\n")
    cmd = [
        sys.executable,
        "-m",
        "nlptransfer.recipes.text_classification",
        "--config",
        str(tmp_path / "bad.yaml"),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "learning_rate" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    debug = subprocess.run(cmd + ["--debug"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


# ---- the Python API raises specific exception types --------------------------------------------


def test_python_api_raises_specific_errors(model_dir, tmp_path):
    with pytest.raises(DataError):
        load_source(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError):
        ModelArguments(max_length=2)
    with pytest.raises(ConfigError):
        TransferArguments(strategy="bitfit")
    with pytest.raises(ConfigError):
        DataArguments(test_fraction=0)
    with pytest.raises(ConfigError):
        TransferTrainingArguments(str(tmp_path / "o"), num_train_epochs=0)
    with pytest.raises(ConfigError):
        TransferTrainingArguments(str(tmp_path / "o"), layerwise_lr_decay=0)
    with pytest.raises(ModelError):
        build_classifier(ModelArguments(str(tmp_path / "nothing")), TransferArguments(), ["a", "b"])
    with pytest.raises(ModelError):
        build_classifier(
            ModelArguments(str(model_dir)),
            TransferArguments(strategy="lora", target_modules=["zz"]),
            ["a", "b"],
        )
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError):
        RunWriter.start(tmp_path / "file", "sentiment", overwrite=True)
    for err in (DataError, ConfigError, ModelError, OutputDirError):
        assert issubclass(err, NlpTransferError)


# ---- property-based: the file loaders on arbitrary text and labels -----------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40)
LABEL = st.sampled_from(["pos", "neg", "neu", "", " ", "1", "0", "ünï", "a,b", 'q"t'])


def _write_rows(path: Path, rows: list[dict]) -> None:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.fixed_dictionaries({"text": TEXT, "label": LABEL}), min_size=0, max_size=30),
    ext=st.sampled_from([".csv", ".json", ".jsonl"]),
)
def test_loaders_round_trip_or_fail_with_data_error(rows, ext, tmp_path_factory):
    path = tmp_path_factory.mktemp("prop") / f"data{ext}"
    _write_rows(path, rows)
    try:
        splits = load_source(str(path), seed=0)
    except DataError as err:
        assert "\n" not in str(err).strip()
        return
    names = splits["train"].features["label"].names
    loaded = sorted(
        (text, names[label])
        for split in splits.values()
        for text, label in zip(split["text"], split["label"], strict=True)
    )
    # Every loaded row is one of the written rows (texts may be stripped; rows without text/label dropped).
    written = [(r["text"], r["label"]) for r in rows]
    assert 0 < len(loaded) <= len(written)
    for text, label in loaded:
        assert any(text == t.strip() or text == t for t, lab in written if lab.strip() == label.strip()), (
            text,
            label,
        )
