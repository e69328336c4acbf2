"""runs.RunWriter: only the main process writes, every path stays inside output_dir, run.json lists exactly
the files a run wrote and says "failed" (with the reason) when the run crashed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import accelerate
import pytest
from tiny import DOMAIN, sentiment_rows, tiny_domain_model_dir, write_csv
from transformers import AutoTokenizer

from nlptransfer import ModelArguments, TransferArguments
from nlptransfer.errors import OutputDirError
from nlptransfer.modeling import build_classifier, save_classifier
from nlptransfer.recipes import domain_pretraining, sentiment
from nlptransfer.runs import RunWriter, run_status, write_text_atomic


class SecondProcess:
    """`accelerate.PartialState` as process 1 of 2 sees it (barriers are no-ops here)."""

    is_main_process = False
    num_processes = 2

    def wait_for_everyone(self):
        pass


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(60))


def _flags(**values) -> list[str]:
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


def _sentiment_argv(model_dir, data_csv, out, *extra):
    common = _flags(
        model_name_or_path=model_dir,
        dataset=data_csv,
        eval_datasets="none",
        text_column="review",
        label_column="sentiment",
        output_dir=out,
        max_steps=4,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        logging_steps=1,
        use_cpu="true",
    )
    return common + list(extra)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# ---- one process writes -----------------------------------------------------------------------


def test_a_second_process_writes_nothing(model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(accelerate, "PartialState", SecondProcess)
    out = tmp_path / "out"
    run = RunWriter.start(out, "sentiment")
    assert not run.is_main and not out.exists()  # the main process creates the directory and run.json
    out.mkdir()  # as the main process would have
    run.write_text("a.txt", "x")
    run.write_json("m.json", {"a": 1})
    run.write_yaml("c.yaml", {"a": 1})
    run.write_bytes("b.bin", b"x")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert run.save_pretrained(tokenizer, "tok") == []
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(), ["a", "b"])
    assert save_classifier(model, tokenizer, run) == []
    run.finish()
    assert _files(out) == set()


def test_a_second_process_of_a_recipe_writes_nothing(tmp_path, monkeypatch):
    """domain_pretraining used to save its model from every process under `accelerate launch`."""
    model_dir = tiny_domain_model_dir(tmp_path / "models")
    corpus = tmp_path / "domain.txt"
    corpus.write_text("\n".join(DOMAIN * 4) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    monkeypatch.setattr(accelerate, "PartialState", SecondProcess)
    domain_pretraining.main(
        _flags(
            model_name_or_path=model_dir,
            corpus=corpus,
            output_dir=out,
            max_steps=2,
            max_length=32,
            per_device_train_batch_size=8,
            use_cpu="true",
            save_strategy="no",
            report_to="none",
        )
    )
    assert not out.exists() or _files(out) == set()


# ---- run.json ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        # the Trainer's checkpoints are the run's too (kept on request)
        ["--save_strategy", "steps", "--save_steps", "2", "--keep_checkpoints", "true"],
        ["--strategy", "lora", "--merge_adapters", "true", "--save_strategy", "no"],
    ],
    ids=["full-with-checkpoints", "lora-merged"],
)
def test_run_json_lists_exactly_the_files_written(model_dir, data_csv, tmp_path, extra):
    out = tmp_path / "run"
    sentiment.main(_sentiment_argv(model_dir, data_csv, out, *extra))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["num_processes"] == 1
    assert run["files"] == sorted(run["files"])
    assert set(run["files"]) == _files(out) - {"run.json"}
    assert {"model.safetensors", "metrics.json", "README.md", "predictions.jsonl"} <= set(run["files"])
    if "lora" in extra:
        assert "adapter/adapter_config.json" in run["files"]
    else:
        assert any(f.startswith("checkpoint-2/") for f in run["files"])


def test_a_finished_run_removes_its_checkpoints(model_dir, data_csv, tmp_path):
    """checkpoint-N/ (weights + optimizer state) go when the run completes; run.json lists what stays."""
    out = tmp_path / "run"
    sentiment.main(_sentiment_argv(model_dir, data_csv, out, "--save_strategy", "steps", "--save_steps", "2"))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert not list(out.rglob("checkpoint-*")) and not any("checkpoint-" in f for f in run["files"])
    assert set(run["files"]) == _files(out) - {"run.json"}
    assert "model.safetensors" in run["files"]


def test_checkpoint_removal_touches_only_the_runs_own_files(tmp_path):
    out = tmp_path / "out"
    with RunWriter.start(out, "test", keep_checkpoints=False) as run:
        run.write_text("metrics.json", "{}")
        for folder in ("checkpoint-1", "checkpoints-x/checkpoint-2"):  # as a Trainer writes them
            (out / folder).mkdir(parents=True)
            (out / folder / "optimizer.pt").write_bytes(b"x" * 100)
        (out / "runs").mkdir()
        (out / "runs" / "events.out").write_text("tb")
    record = json.loads((out / "run.json").read_text())
    assert record["files"] == ["metrics.json", "runs/events.out"]
    assert _files(out) == {"run.json", "metrics.json", "runs/events.out"}
    assert not (out / "checkpoints-x").exists()  # emptied folders go too

    failed = tmp_path / "failed"  # a run that did not finish keeps its checkpoints (for --resume)
    with pytest.raises(RuntimeError), RunWriter.start(failed, "test", keep_checkpoints=False):
        (failed / "checkpoint-1").mkdir()
        (failed / "checkpoint-1" / "trainer_state.json").write_text("{}")
        raise RuntimeError("boom")
    assert (failed / "checkpoint-1" / "trainer_state.json").is_file()


def test_a_previous_runs_files_are_not_listed(tmp_path):
    out = tmp_path / "out"
    with RunWriter.start(out, "test") as run:
        run.write_text("old.txt", "old")
        (out / "checkpoint-1").mkdir()
        (out / "checkpoint-1" / "trainer_state.json").write_text("{}")  # the Trainer's, recorded at finish
    assert json.loads((out / "run.json").read_text())["files"] == [
        "checkpoint-1/trainer_state.json",
        "old.txt",
    ]
    with RunWriter.start(out, "test", overwrite=True) as run:
        run.write_text("new.txt", "new")
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["files"] == ["new.txt"]
    assert _files(out) == {"run.json", "new.txt"}  # the previous run's own files are gone (issue 15 #3)


def test_save_pretrained_records_exactly_what_it_wrote(model_dir, tmp_path):
    out = tmp_path / "out"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with RunWriter.start(out, "test") as run:
        written = run.save_pretrained(tokenizer, "tok")
        assert written and all(f.startswith("tok/") for f in written)
        assert set(written) == {f"tok/{f}" for f in _files(out / "tok")} and not list(out.glob(".staging-*"))
        model = build_classifier(
            ModelArguments(str(model_dir)), TransferArguments(strategy="lora"), ["a", "b"]
        )
        saved = save_classifier(model, tokenizer, run, merge_adapters=False, relpath="clf")
        assert set(saved) == {f"clf/{f}" for f in _files(out / "clf")}
    assert set(json.loads((out / "run.json").read_text())["files"]) == _files(out) - {"run.json"}


# ---- paths ------------------------------------------------------------------------------------


ESCAPES = [
    "../escaped.txt",
    "/tmp/nlptransfer-escaped.txt",
    "a/../../escaped.txt",
    "link/escaped.txt",
    "run.json",
]


@pytest.mark.parametrize("relpath", ESCAPES)
def test_a_path_outside_output_dir_is_refused(tmp_path, relpath):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    run = RunWriter.start(out, "test")
    (out / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutputDirError, match="outside output_dir|not a (file|folder) name"):
        run.write_text(relpath, "x")
    with pytest.raises(OutputDirError):
        run.write_with(lambda folder: (folder / "x.txt").write_text("x"), relpath)
    with pytest.raises(OutputDirError):
        run.record([relpath])
    assert not list(outside.iterdir()) and not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/nlptransfer-escaped.txt").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "running"


# ---- failures ---------------------------------------------------------------------------------


def test_a_crash_mid_run_leaves_failed_with_the_reason(model_dir, data_csv, tmp_path, monkeypatch):
    out = tmp_path / "crashed"

    def crash(*args, **kwargs):
        raise RuntimeError("out of memory in step 3\nsecond line")

    monkeypatch.setattr(sentiment, "fit_fewshot", crash)  # the recipe trains through nlptransfer.fewshot
    with pytest.raises(RuntimeError):
        sentiment.main(_sentiment_argv(model_dir, data_csv, out))
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["reason"] == "RuntimeError: out of memory in step 3"
    # A failed run is a previous run: refused without --overwrite_output_dir; no checkpoint to resume.
    with pytest.raises(OutputDirError, match="already holds a previous run"):
        RunWriter.start(out, "sentiment")
    with pytest.raises(OutputDirError, match="--save_strategy steps"):
        RunWriter.start(out, "sentiment", resume=True)


def test_a_failed_run_with_a_checkpoint_resumes(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), RunWriter.start(out, "test") as run:
        (out / "checkpoint-2").mkdir()
        (out / "checkpoint-2" / "trainer_state.json").write_text("{}")
        run.write_text("partial.txt", "x")
        raise KeyboardInterrupt
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["reason"].startswith("interrupted")
    with pytest.raises(OutputDirError, match="--resume true"):
        RunWriter.start(out, "test")
    run = RunWriter.start(out, "test", resume=True)
    assert run.resumed and run_status(out) == "running"
    run.finish()
    assert run_status(out) == "complete"


def test_atomic_write_without_overwrite_never_clobbers(tmp_path):
    path = write_text_atomic(tmp_path / "a.yaml", "first")
    with pytest.raises(OutputDirError, match="already exists"):
        write_text_atomic(path, "second", overwrite=False)
    assert path.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["a.yaml"]


def test_a_killed_run_lists_its_files_and_can_be_overwritten(tmp_path):
    """SIGKILL leaves no chance to mark the run failed: run.json still says "running". It lists the files
    written so far (kept current as the run goes) and the Trainer's checkpoint files count as the run's, so
    --overwrite_output_dir replaces them; a user's file put there afterwards is still refused."""
    out = tmp_path / "out"
    script = f"""
import os, signal
from nlptransfer.runs import RunWriter
run = RunWriter.start({str(out)!r}, "sentiment")
run.write_text("metrics.json", "{{}}")
run.write_with(lambda folder: (folder / "model.safetensors").write_bytes(b"w"))
ckpt = run.output_dir / "checkpoints-x" / "checkpoint-2"   # what a Trainer writes, unlisted
ckpt.mkdir(parents=True)
(ckpt / "trainer_state.json").write_text("{{}}")
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "running" and record["files"] == ["metrics.json", "model.safetensors"]
    (out / "mine.txt").write_text("user notes")
    with pytest.raises(OutputDirError, match="mine.txt"):
        RunWriter.start(out, "sentiment", overwrite=True)
    (out / "mine.txt").unlink()
    run = RunWriter.start(out, "sentiment", overwrite=True)
    run.finish()
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]  # the killed run's files, all replaced
