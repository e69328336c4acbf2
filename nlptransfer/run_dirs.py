"""Output directories before a run writes into them: which folder may hold a run, what a run.json says.

A run directory holds `run.json` (see `nlptransfer.runs`). `check_output_dir` refuses, in one line, a folder
a run must not write into: a file, a dangling symlink, a parent that is a file, an unwritable folder, a
`run.json` that is not a file, a previous run without `--overwrite_output_dir`, and, even with it, any file
that the previous run.json does not list (the user's own: named in the message). `remove_previous_run`
removes exactly the files a previous run.json lists, never anything else. `check_same_command` keeps
`nlptransfer export` and `evaluate` from replacing a run another command wrote (a trained model).
`check_input_outside_output` refuses a model input that lies in the run's own output_dir (the run would remove or
replace it); `check_output_apart` refuses a command's output that is, holds or lies in one of its inputs (a model
folder, the file it reads). `model_metadata` reads what a run folder says about its model (card, run.json,
metrics) as strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from nlptransfer.errors import ConfigError, DataError, OutputDirError
from nlptransfer.paths import expand_user
from nlptransfer.tracking import TRACKING_DIRS

MARKER = "run.json"
COMPARE_JOBS = "compare_jobs"  # a --compare run's finished jobs (nlptransfer.evaluation.jobs): resumable
_CHECKPOINT = re.compile(r"checkpoint-\d+")


def read_run_file(path: str | Path) -> dict:
    """A mapping a run saved (`metrics.json`, `config.yaml`, `run.json`, ...), {} when the file is absent;
    one DataError line when it is unreadable or not a mapping (a run folder edited or cut short by hand)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise DataError(
            f"{path} is not valid {kind} ({type(err).__name__}); was the run interrupted while writing it? "
            "Rerun it or restore the file"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(
            f"{path} holds a {type(data).__name__}, not the mapping a run writes; rerun or restore it"
        )
    return data


def last_checkpoint(path: str | Path) -> Path | None:
    """The newest complete `checkpoint-<step>` folder in `path`, or None.

    The Trainer writes `trainer_state.json` last, so a checkpoint cut short by a crash (no state file)
    is skipped in favour of the one before it.
    """
    path = Path(path)
    steps = []
    for p in path.glob("checkpoint-*") if path.is_dir() else []:
        suffix = p.name.removeprefix("checkpoint-")
        if p.is_dir() and suffix.isdigit() and (p / "trainer_state.json").is_file():
            steps.append((int(suffix), p))
    return max(steps)[1] if steps else None


def has_checkpoint(path: str | Path) -> bool:
    """Whether `path` holds a complete checkpoint at any depth: a recipe that trains several models keeps
    each one's checkpoints in its own subfolder (translation: `checkpoints-scratch/`, `checkpoints-transfer/`).
    Complete as in `last_checkpoint`: a `checkpoint-<step>` folder with its `trainer_state.json`."""
    path = Path(path)
    return path.is_dir() and any(
        _CHECKPOINT.fullmatch(p.name) and (p / "trainer_state.json").is_file()
        for p in path.rglob("checkpoint-*")
    )


def read_marker(path: str | Path) -> dict:
    """The run.json of the run directory `path`, or {} when there is none (or it is unreadable)."""
    try:
        record = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def run_status(path: str | Path) -> str | None:
    """`status` of the run.json in `path` ("running", "complete" or "failed"), or None when there is none."""
    return read_marker(path).get("status")


def _folder_problem(path: Path) -> str | None:
    """Why a run cannot create or write the folder `path` (one line naming the fix), or None."""
    if path.is_symlink() and not path.exists():
        missing = os.readlink(path)
        return (
            f"output_dir {str(path)!r} is a symlink to the missing {missing!r}; remove it or choose another"
        )
    if path.exists() and not path.is_dir():
        return f"output_dir {str(path)!r} is a file; pass a directory path to --output_dir"
    existing = path
    for parent in path.parents:  # the nearest existing ancestor must be a writable folder
        if parent.is_symlink() and not parent.exists():
            missing = os.readlink(parent)
            return f"{str(parent)!r} (a parent of output_dir) is a symlink to the missing {missing!r}; fix it"
        if parent.exists() or parent == parent.parent:
            if not path.exists():
                existing = parent
            break
    if not existing.is_dir():
        where = f"{str(existing)!r} (a parent of output_dir {str(path)!r})"
        return f"{where} is a file, not a folder; choose another --output_dir"
    if not os.access(existing, os.W_OK | os.X_OK):
        which = f"output_dir {str(path)!r}"
        if existing != path:
            which = f"the folder {str(existing)!r} (a parent of output_dir {str(path)!r})"
        return f"{which} is not writable; fix its permissions or choose another --output_dir"
    marker = path / MARKER
    if (marker.exists() or marker.is_symlink()) and (marker.is_symlink() or not marker.is_file()):
        kind = "a symlink" if marker.is_symlink() else "a folder"
        return f"{str(marker)!r} is {kind}, not a run record; move it away or choose another --output_dir"
    return None


def _entries(path: Path) -> list[str]:
    """Every file under `path` (relative posix paths, sorted), symlinks included but never followed."""
    found = []
    for root, dirs, files in os.walk(path):
        here = Path(root)
        links = [d for d in dirs if (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in links]
        found += [(here / name).relative_to(path).as_posix() for name in files + links]
    return sorted(found)


def _listed_files(path: Path) -> set[str]:
    """The files the run.json in `path` lists (a previous run's own files). For a run that never finished
    (killed outright), also the files the Trainer wrote into its `checkpoint-<step>` folders after the run
    started, and those of its tracking logs (`in_tracking_dir`): the Trainer reports no file names, so
    run.json lists them only at the end."""
    record = read_marker(path)
    files = record.get("files")
    listed = {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()
    started = record.get("started")
    if record.get("status") in ("running", "failed") and isinstance(started, int | float):
        for rel in _entries(path):
            target = path / rel
            ours = in_checkpoint(rel) or in_tracking_dir(rel)  # the Trainer's files: written after the start
            if ours and not target.is_symlink() and target.stat().st_mtime >= started:
                listed.add(rel)
    return listed


def _not_ours(path: Path) -> list[str]:
    """Files in `path` that no run.json there lists: the user's, never replaced or removed."""
    listed = _listed_files(path) | {MARKER}
    return [f for f in _entries(path) if f not in listed]


def remove_previous_run(path: Path) -> list[str]:
    """Remove the files the previous run.json lists (only those, and only inside `path`, never through a
    symlinked folder), then the folders that left empty. Returns what was removed."""
    return remove_files(path, [rel for rel in _listed_files(path) if rel != MARKER])


def in_checkpoint(relpath: str) -> bool:
    """Whether a run's file (relative path) lies inside a Trainer `checkpoint-<step>` folder, at any depth."""
    return any(_CHECKPOINT.fullmatch(part) for part in Path(relpath).parts[:-1])


def in_tracking_dir(relpath: str) -> bool:
    """Whether a run's file (relative path) lies in a folder of `--report_to` logs (tensorboard `runs/`,
    mlflow `mlruns/`, `trackio/`: `nlptransfer.tracking`)."""
    parts = Path(relpath).parts
    return len(parts) > 1 and parts[0] in TRACKING_DIRS.values()


def remove_files(path: Path, relpaths: list[str]) -> list[str]:
    """Remove exactly `relpaths` (files relative to `path`, only inside it, never through a symlinked
    folder), then the folders that left empty. Returns what was removed, sorted."""
    root = path.resolve()
    wanted = set(relpaths)
    removed = []
    for rel in _entries(path):
        if rel not in wanted:
            continue
        target = path / rel
        if not target.parent.resolve().is_relative_to(root):
            continue
        target.unlink()
        removed.append(rel)
        for parent in target.parents:
            if parent.resolve() == root:
                break
            try:
                parent.rmdir()  # only an empty folder
            except OSError:
                break
    return removed


def check_same_command(path: Path, recipe: str, flag: str, overwrite_flag: str) -> None:
    """One OutputDirError line when `path` holds a run (run.json) that another command wrote: a command that
    is not a training recipe (`export`, `evaluate`) replaces only a previous run of its own, so its
    `overwrite_flag` never removes a trained model's files."""
    record = read_marker(path)
    found = record.get("recipe")
    if not record or found == recipe:
        return
    kind = f"a {found} run" if isinstance(found, str) and found else "another command's run"
    raise OutputDirError(
        f"{flag} {str(path)!r} holds {kind} (run.json), not the output of an earlier `nlptransfer {recipe}`; "
        f"{overwrite_flag} replaces only that: choose another {flag}"
    )


def _resumable(path: Path) -> bool:
    """A complete Trainer checkpoint, or finished jobs of an interrupted --compare."""
    return has_checkpoint(path) or any((path / COMPARE_JOBS).glob("*.json"))


def check_input_outside_output(source: str | os.PathLike | None, output_dir, flag: str) -> None:
    """One ConfigError line when the local input `source` (a model folder a previous run wrote, e.g. its
    `teacher/` or `encoder/`) is the output_dir or lies inside it: --overwrite_output_dir removes the previous
    run's files there, the run's own input among them. A Hub id or embedded name (no such local path) passes."""
    if not source or not output_dir:
        return
    path = expand_user(source, what=f"{flag} {str(source)!r}")
    if not path.exists():
        return
    where = {"is": "is", "holds": "is inside"}.get(_relation(Path(output_dir), path))
    if where:
        raise ConfigError(
            f"{flag} {str(source)!r} {where} --output_dir {str(output_dir)!r}: the run would write over its own "
            "input (--overwrite_output_dir removes a previous run's files); choose another --output_dir"
        )


def check_output_apart(
    output: str | os.PathLike | None, source: str | os.PathLike | None, flag: str, what: str
) -> None:
    """One ConfigError line when the output file or folder `output` (given as `flag`) is the local input
    `source` (`what`: "the model folder", "the --input file", ...), lies inside it or holds it: writing there
    would replace or add to the input's files, --overwrite or not (`nlptransfer export`, `evaluate`,
    `predict`). A source that is no local path (an embedded dataset name) passes."""
    if not output or not source:
        return
    path = expand_user(source, what=f"{str(source)!r}")
    if not path.exists():
        return
    where = _relation(expand_user(output, what=f"{flag} {str(output)!r}"), path)
    if where is None:
        return
    raise ConfigError(
        f"{flag} {str(output)!r} {where} {what} {str(source)!r}: writing there would replace or add to its "
        "files; choose a path outside it"
    )


def _relation(output: Path, source: Path) -> str | None:
    """How the output path stands to an input path: "is" it, "lies inside" it, "holds" it, or None (apart)."""
    mine, theirs = output.resolve(), source.resolve()
    if mine == theirs:
        return "is"
    if mine.is_relative_to(theirs):
        return "lies inside"
    return "holds" if theirs.is_relative_to(mine) else None


def check_output_dir(path: Path, overwrite: bool, resume: bool) -> bool:
    """Refuse a directory this run must not write into (OutputDirError); True when resuming into it.

    `resume=True` accepts an unfinished run (run.json status "running" or "failed") that has a complete
    checkpoint: the directory is kept as it is (nothing deleted) and the run continues.
    """
    try:
        return _check_unsafe(path, overwrite, resume)
    except OSError as err:
        raise OutputDirError(
            f"cannot check output_dir {str(path)!r}: {err.strerror or err}; choose another --output_dir"
        ) from err


def _check_unsafe(path: Path, overwrite: bool, resume: bool) -> bool:
    if problem := _folder_problem(path):
        raise OutputDirError(problem)
    existing = list(path.iterdir()) if path.is_dir() else []
    status = run_status(path)
    unfinished = status in ("running", "failed")
    if resume:
        if unfinished and _resumable(path):
            return True
        if status == "complete":
            raise OutputDirError(
                f"output_dir {str(path)!r} holds a finished run, nothing to resume; drop --resume, or choose "
                "a new --output_dir"
            )
        if existing or unfinished:
            raise OutputDirError(
                f"output_dir {str(path)!r} holds no checkpoint-* folder (or finished --compare job) to resume "
                "from; the interrupted run "
                "needs --save_strategy steps (or epoch) to be resumable: drop --resume and pass "
                "--overwrite_output_dir, or choose a new --output_dir"
            )
        return False  # an empty or missing directory: nothing to resume, start afresh
    if existing and not overwrite:
        if unfinished and _resumable(path):
            raise OutputDirError(
                f"output_dir {str(path)!r} already holds an unfinished run with checkpoints; pass --resume "
                "true to continue it, or choose a new --output_dir, or pass --overwrite_output_dir to start "
                "over (only files nlptransfer wrote get replaced)"
            )
        what = "a previous run" if status else f"{len(existing)} file(s) not written by this run"
        raise OutputDirError(
            f"output_dir {str(path)!r} already holds {what}; choose a new --output_dir or pass "
            f"--overwrite_output_dir (only files nlptransfer wrote get replaced)"
        )
    if existing and (foreign := _not_ours(path)):
        whose = (
            "no run.json lists"
            if status
            else "and no run.json (it is not an nlptransfer run directory); their names"
        )
        if status == "running":
            whose += " (a run killed before it finished lists none of its files)"
        shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
        raise OutputDirError(
            f"output_dir {str(path)!r} holds {len(foreign)} file(s) {whose}: {shown}; --overwrite_output_dir "
            "replaces only a previous run's own files: move these away, or choose a new --output_dir"
        )
    return False


def model_metadata(path: Path) -> dict:
    """What a run or export folder says about its model: the model card's front matter and title, run.json
    (without its file list) and the numbers of metrics.json; absent files give nothing."""
    import yaml

    card: dict = {}
    readme = path / "README.md"
    if readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        body = text
        if text.startswith("---\n") and "\n---\n" in text[4:]:
            front, body = text[4:].split("\n---\n", 1)
            try:
                loaded = yaml.safe_load(front)
            except yaml.YAMLError:
                loaded = None
            card = dict(loaded) if isinstance(loaded, dict) else {}
        title = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), None)
        if title:
            card["title"] = title
    run = {k: v for k, v in read_run_file(path / "run.json").items() if k != "files"}
    metrics = {
        k: v
        for k, v in read_run_file(path / "metrics.json").items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return json_safe({"model_card": card, "run": run, "metrics": metrics})


def json_safe(value):
    """`value` as strict JSON can carry it (the responses refuse NaN): a NaN or infinite number -> None, a
    value that is not JSON (a YAML date in the card) -> its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return str(value)
