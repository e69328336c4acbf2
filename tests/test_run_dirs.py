"""Output directories (issue 15 #2, #3, #15): `--overwrite_output_dir` replaces only a previous run's own
files (listed in its run.json) and removes the ones the new run does not rewrite; a folder that cannot be a
run directory (a file, a dangling symlink, a parent that is a file, an unwritable folder, a run.json folder)
ends in one `error:` line with exit code 2 and nothing written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tiny import previous_run, sentiment_rows, write_csv

from nlptransfer import cli
from nlptransfer.errors import OutputDirError, run_cli
from nlptransfer.recipes import sentiment
from nlptransfer.runs import RunWriter


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(60))


def _argv(model_dir, data_csv, out, *extra) -> list[str]:
    values = {
        "model_name_or_path": model_dir,
        "dataset": data_csv,
        "eval_datasets": "none",
        "text_column": "review",
        "label_column": "sentiment",
        "output_dir": out,
        "max_steps": 2,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": "true",
    }
    return [item for key, value in values.items() for item in (f"--{key}", str(value))] + list(extra)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def _one_line_error(capsys, argv, main=sentiment.main) -> str:
    capsys.readouterr()  # what earlier runs printed
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # progress bars may come first
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---- #2: only a previous run's own files are replaced ------------------------------------------


@pytest.mark.parametrize("user_file", ["README.md", "config.json", "notes/mine.txt"])
def test_overwrite_refuses_a_file_no_run_json_lists(model_dir, data_csv, tmp_path, capsys, user_file):
    out = tmp_path / "run"
    sentiment.main(_argv(model_dir, data_csv, out))
    before = {f: (out / f).read_bytes() for f in _files(out)}
    mine = out / user_file
    mine.parent.mkdir(parents=True, exist_ok=True)
    if mine.exists():  # a file the run wrote, then edited by the user: it is listed, so it is the run's
        mine.unlink()
    mine.write_text("the user's own file")
    record = json.loads((out / "run.json").read_text())
    record["files"] = [f for f in record["files"] if f != user_file]  # not the run's any more
    (out / "run.json").write_text(json.dumps(record))
    err = _one_line_error(capsys, _argv(model_dir, data_csv, out, "--overwrite_output_dir", "true"))
    assert user_file in err and "no run.json lists" in err
    assert mine.read_text() == "the user's own file"
    assert {f: (out / f).read_bytes() for f in _files(out) if f not in (user_file, "run.json")} == {
        f: b for f, b in before.items() if f not in (user_file, "run.json")
    }


def test_overwrite_refuses_a_folder_without_run_json(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("mine")
    err = _one_line_error(capsys, _argv(model_dir, data_csv, out, "--overwrite_output_dir", "true"))
    assert "README.md" in err and "no run.json" in err
    assert _files(out) == {"README.md"}


def test_overwrite_replaces_a_previous_runs_own_files(model_dir, data_csv, tmp_path):
    out = tmp_path / "run"
    sentiment.main(_argv(model_dir, data_csv, out))
    sentiment.main(_argv(model_dir, data_csv, out, "--overwrite_output_dir", "true"))
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and set(record["files"]) == _files(out) - {"run.json"}


# ---- #3: the previous run's files that the new one does not rewrite are removed ----------------


def test_a_full_run_over_a_lora_run_leaves_no_adapter_behind(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "run"
    lora = ("--strategy", "lora", "--target_modules", "query", "value", "--merge_adapters", "false")
    sentiment.main(_argv(model_dir, data_csv, out, *lora))
    assert (out / "adapter_config.json").is_file()
    sentiment.main(_argv(model_dir, data_csv, out, "--overwrite_output_dir", "true"))
    record = json.loads((out / "run.json").read_text())
    assert not (out / "adapter_config.json").exists() and not list(out.glob("adapter_model.*"))
    assert _files(out) == set(record["files"]) | {"run.json"}  # nothing of the LoRA run is left
    from nlptransfer.predictor import load_run_model

    model, _, _ = load_run_model(out)
    assert type(model).__name__ == "BertForSequenceClassification"  # the full model, not a PeftModel
    capsys.readouterr()
    rows = cli.cli(["predict", "--model", str(out), "--text", "good movie"])
    assert len(rows) == 1


def test_overwriting_removes_only_listed_files_inside_output_dir(tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    with RunWriter.start(out, "test") as run:
        run.write_text("sub/old.txt", "old")
        run.write_text("kept.txt", "old")
    record = json.loads((out / "run.json").read_text())
    record["files"] += ["../outside.txt", str(outside)]  # a hostile run.json: never followed
    (out / "run.json").write_text(json.dumps(record))
    with RunWriter.start(out, "test", overwrite=True) as run:
        assert _files(out) == {"run.json"} and not (out / "sub").exists()
        run.write_text("kept.txt", "new")
    assert outside.read_text() == "keep"
    assert _files(out) == {"run.json", "kept.txt"} and (out / "kept.txt").read_text() == "new"


# ---- #15: output folder problems end in one line ------------------------------------------------


def _bad_output_dirs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing", target_is_directory=True)
    marker_folder = tmp_path / "marker_folder"
    (marker_folder / "run.json").mkdir(parents=True)
    return {
        "output_dir-is-a-file": (a_file, "is a file"),
        "parent-is-a-file": (a_file / "out", "is a file, not a folder"),
        "grandparent-is-a-file": (a_file / "sub" / "out", "is a file, not a folder"),
        "dangling-symlink": (dangling, "symlink to the missing"),
        "under-a-dangling-symlink": (dangling / "out", "symlink to the missing"),
        "run.json-is-a-folder": (marker_folder, "is a folder, not a run record"),
    }


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize(
    "case",
    [
        "output_dir-is-a-file",
        "parent-is-a-file",
        "grandparent-is-a-file",
        "dangling-symlink",
        "under-a-dangling-symlink",
        "run.json-is-a-folder",
    ],
)
def test_an_unusable_output_dir_is_one_line(model_dir, data_csv, tmp_path, capsys, case, overwrite):
    out, expected = _bad_output_dirs(tmp_path)[case]
    before = _files(tmp_path)
    extra = ("--overwrite_output_dir", "true") if overwrite else ()
    err = _one_line_error(capsys, _argv(model_dir, data_csv, out, *extra))
    assert expected in err, err
    assert _files(tmp_path) == before and not (tmp_path / "missing").exists()


@contextlib.contextmanager
def _read_only(folder: Path):
    """`folder` unwritable: chmod 555 for a regular user; as root (whom chmod does not stop) a read-only bind
    mount of the folder onto itself, unmounted afterwards (skipped when mounting is not allowed)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    mount = shutil.which("mount")
    done = mount and subprocess.run(
        [mount, "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True, check=False
    )
    if not done or done.returncode != 0 or os.access(folder, os.W_OK):
        if done and done.returncode == 0:
            subprocess.run(["umount", str(folder)], check=False)
        pytest.skip(
            "running as root without permission for a read-only bind mount: cannot make a folder unwritable"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("sub", ["", "new/out"], ids=["output_dir", "parent"])
def test_an_unwritable_output_dir_is_one_line(model_dir, data_csv, tmp_path, capsys, sub):
    locked = tmp_path / "locked"
    locked.mkdir()
    with _read_only(locked):
        err = _one_line_error(capsys, _argv(model_dir, data_csv, locked / sub if sub else locked))
    assert "not writable" in err and not list(locked.iterdir())


def test_a_write_error_mid_run_is_one_line(tmp_path):
    """The root of every write (disk full, a folder where a file goes): an OutputDirError, not an OSError."""
    out = tmp_path / "out"
    with pytest.raises(OutputDirError, match="cannot write"), RunWriter.start(out, "test") as run:
        (out / "taken").mkdir()
        (out / "taken" / "x").write_text("x")
        run.write_text("taken", "a folder is in the way")
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


# ---- nlptransfer cp -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["missing.yaml", "nowhere/x.yaml"])
def test_cp_refuses_a_dangling_symlink(tmp_path, capsys, target):
    link = tmp_path / "mine.yaml"
    link.symlink_to(tmp_path / target)
    err = _one_line_error(capsys, ["cp", "sentiment/minilm_lora", str(link)], main=cli.cli)
    assert "symlink" in err and str(link) in err
    assert link.is_symlink() and not (tmp_path / target).exists() and not (tmp_path / "nowhere").exists()


def test_cp_refuses_a_dangling_symlink_as_folder(tmp_path, capsys):
    link = tmp_path / "configs"
    link.symlink_to(tmp_path / "nodir", target_is_directory=True)
    err = _one_line_error(capsys, ["cp", "sentiment/minilm_lora", f"{link}/"], main=cli.cli)
    assert "symlink" in err and not (tmp_path / "nodir").exists()


# ---- a model input inside the output_dir --------------------------------------------------------


def test_a_model_input_in_the_output_dir_is_refused(model_dir, tmp_path, monkeypatch):
    """--overwrite_output_dir removes a previous run's files: a run's model input among them is refused."""
    from nlptransfer.errors import ConfigError
    from nlptransfer.run_dirs import check_input_outside_output

    out = tmp_path / "out"
    previous_run(out, model_dir, "teacher")
    for source, where in ((out, "is --output_dir"), (out / "teacher", "is inside --output_dir")):
        with pytest.raises(ConfigError, match=where) as err:
            check_input_outside_output(str(source), str(out), "--teacher")
        assert "--teacher" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="is inside"):  # relative paths, resolved
        check_input_outside_output("out/teacher", "./out", "--teacher")
    check_input_outside_output(str(model_dir), str(out), "--teacher")  # elsewhere
    check_input_outside_output(str(out), str(out / "sub"), "--teacher")  # the output inside the input
    check_input_outside_output("org/hub-model", str(tmp_path), "--teacher")  # no such path: a Hub id
    check_input_outside_output(None, str(out), "--teacher")
    with pytest.raises(ConfigError, match="cannot expand ~nlptransfer-no-such-user"):
        check_input_outside_output("~nlptransfer-no-such-user/m", str(out), "--teacher")
