"""`--report_to tensorboard|mlflow|trackio`: each back-end logs offline into the run's output directory, its
files belong to the run (run.json, --overwrite_output_dir), a missing package names the extra to install."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny import review_argv, sentiment_rows, write_csv

from nlptransfer.errors import ConfigError
from nlptransfer.recipes import sentiment
from nlptransfer.run_dirs import check_output_dir, remove_previous_run
from nlptransfer.tracking import TRACKING_DIRS, check_tracking, prepare_tracking

ROOT = Path(__file__).resolve().parents[1]
# back-end -> what its logs look like inside the output directory
LOGS = {
    "tensorboard": "runs/*/events.out.tfevents.*",
    "mlflow": "mlruns/*/*/metrics/loss",
    "trackio": "trackio/*.db",
}
OWN_ENV = (
    "MLFLOW_TRACKING_URI",
    "TRACKIO_DIR",
    "TENSORBOARD_LOGGING_DIR",
    "MLFLOW_DISABLE_TELEMETRY",
    "MLFLOW_ALLOW_FILE_STORE",
)


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OWN_ENV}
    # No network: the Hub offline, and any other connection attempt goes to a closed local port.
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HTTP_PROXY="http://127.0.0.1:9")
    env.update(HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="", TRANSFORMERS_OFFLINE="1")
    # The run's working directory is tmp_path (nothing may land there): import this checkout's nlptransfer.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(argv, cwd, recipe="sentiment"):
    # A process per run: trackio reads its folder once per process (when first imported).
    cmd = [sys.executable, "-m", f"nlptransfer.recipes.{recipe}", *argv]
    return subprocess.run(cmd, cwd=cwd, env=_offline_env(), capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("backend", list(LOGS))
def test_each_backend_logs_into_the_run_offline_and_its_files_belong_to_the_run(backend, model_dir, tmp_path):
    data_csv = write_csv(tmp_path / "reviews.csv", sentiment_rows(60))
    out = tmp_path / "run"
    argv = review_argv(model_dir, data_csv, out, "--report_to", backend)
    proc = _run(argv, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = sorted(out.glob(LOGS[backend]))
    assert logs, sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    folder = out / TRACKING_DIRS[backend]
    written = {p.relative_to(out).as_posix() for p in folder.rglob("*") if p.is_file()}
    listed = set(json.loads((out / "run.json").read_text())["files"])
    assert written and written <= listed  # run.json lists every file of the logs
    # Nothing outside the output directory: no ./mlruns, ./mlflow.db, ./runs, ./trackio in the working dir.
    assert not {p.name for p in tmp_path.iterdir()} & {"mlruns", "mlflow.db", "runs", "trackio"}
    if backend == "mlflow":  # the metric of each logged step
        assert len(logs[0].read_text().splitlines()) == 2

    # Run again over it: the previous run's logs are replaced, nothing else is touched.
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    time.sleep(1.1)  # tensorboard names its folder by the second
    again = _run(argv + ["--overwrite_output_dir", "true"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert keep.read_text() == "mine"
    now = sorted(out.glob(LOGS[backend]))
    assert now
    if (
        backend != "trackio"
    ):  # trackio keeps one database per project: the old one was removed, then rewritten
        assert not set(logs) & set(now)
    relisted = set(json.loads((out / "run.json").read_text())["files"])
    assert {p.relative_to(out).as_posix() for p in folder.rglob("*") if p.is_file()} <= relisted


def test_a_recipe_whose_trainers_use_scratch_folders_logs_into_the_run(model_dir, tmp_path):
    """distill trains teacher and student with checkpoints in a scratch folder: their logs still land here."""
    data_csv = write_csv(tmp_path / "reviews.csv", sentiment_rows(60))
    out = tmp_path / "run"
    argv = review_argv(model_dir, data_csv, out, "--report_to", "tensorboard", "--student_layers", "1")
    argv += ["--teacher_epochs", "1", "--max_length", "32", "--compare_student_alone", "false"]
    proc = _run([a for a in argv if a not in ("--eval_datasets", "none")], tmp_path, "distill")
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = sorted(out.glob("runs/*/events.out.tfevents.*"))
    assert len(events) >= 2  # teacher and student
    listed = set(json.loads((out / "run.json").read_text())["files"])
    assert {p.relative_to(out).as_posix() for p in events} <= listed


def test_missing_package_names_the_tracking_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'nlptransfer\[tracking\]'"):
        check_tracking(["mlflow"])
    argv = ["--output_dir", str(tmp_path / "run"), "--report_to", "mlflow", "--use_cpu", "true"]
    with pytest.raises(ConfigError) as err:
        sentiment.make_parser().parse(argv)
    assert "nlptransfer[tracking]" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_tracking_goes_into_the_output_dir_unless_the_user_chose_a_place(tmp_path):
    from nlptransfer import TransferTrainingArguments

    saved = {name: os.environ.pop(name) for name in OWN_ENV if name in os.environ}
    try:
        kinds = ["mlflow", "trackio", "tensorboard"]
        args = TransferTrainingArguments(str(tmp_path / "run"), report_to=kinds, use_cpu=True)
        changed = prepare_tracking(args)
        # every trainer of the run logs there (distill's teacher and student train in scratch folders)
        runs = (tmp_path / "run" / "runs").resolve()
        assert os.path.dirname(changed["TENSORBOARD_LOGGING_DIR"]) == str(runs)
        assert changed["MLFLOW_TRACKING_URI"] == (tmp_path / "run" / "mlruns").resolve().as_uri()
        assert changed["TRACKIO_DIR"] == str((tmp_path / "run" / "trackio").resolve())
        os.environ["MLFLOW_TRACKING_URI"] = "http://tracking.example:5000"  # the user's own server
        other = TransferTrainingArguments(str(tmp_path / "other"), report_to=["mlflow"], use_cpu=True)
        assert "MLFLOW_TRACKING_URI" not in prepare_tracking(other)
        assert os.environ["MLFLOW_TRACKING_URI"] == "http://tracking.example:5000"
    finally:  # prepare_tracking sets the variables itself: leave none behind for other tests
        for name in OWN_ENV:
            os.environ.pop(name, None)
        os.environ.update(saved)


def test_logs_of_a_killed_run_may_be_replaced_but_not_the_users_files(tmp_path):
    run = tmp_path / "run"
    (run / "mlruns" / "0").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "running", "started": time.time() - 60, "files": []}))
    (run / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")  # written by the killed run
    assert check_output_dir(run, overwrite=True, resume=False) is False
    assert remove_previous_run(run) == ["mlruns/0/meta.yaml"]
    (run / "mlruns").mkdir()
    (run / "mlruns" / "notes.txt").write_text("mine")
    os.utime(run / "mlruns" / "notes.txt", (time.time() - 3600, time.time() - 3600))  # before the run started
    with pytest.raises(Exception, match="notes.txt"):
        check_output_dir(run, overwrite=True, resume=False)
