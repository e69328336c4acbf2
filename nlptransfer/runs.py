"""Output directories that never lose a user's files, and atomic writes.

A run directory holds `run.json`: which tool wrote it, whether the run finished, and the files it wrote.
A directory that holds anything else is refused unless `--overwrite_output_dir`; even then only files a
previous nlptransfer run wrote are replaced, nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from nlptransfer.errors import OutputDirError

MARKER = "run.json"
logger = logging.getLogger("nlptransfer")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask (the only portable way is to set and restore it)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write to a temp file in the same directory, then rename: readers never see a truncated file."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """`write_text_atomic` for bytes (PNG figures, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def is_main_process() -> bool:
    """True on the process that writes files (always true without `accelerate launch`/torchrun)."""
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    """Barrier across `accelerate launch` processes; a no-op in a single process."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


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


def run_status(path: str | Path) -> str | None:
    """`status` of the run.json in `path` ("running" or "complete"), or None when there is none."""
    try:
        return json.loads((Path(path) / MARKER).read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def prepare_output_dir(path: str | Path, overwrite: bool, recipe: str, resume: bool = False) -> Path:
    """Create `path` for a new run, or refuse if it holds a previous run or foreign files.

    `resume=True` accepts an unfinished run (run.json status "running") that has a complete checkpoint:
    the directory is kept as it is (nothing deleted) and the run continues. Under `accelerate launch`
    every process checks the untouched directory (so all fail alike), then only the main one writes.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output_dir {str(path)!r} is a file; pass a directory path to --output_dir")
    existing = [p for p in path.iterdir()] if path.is_dir() else []
    status = run_status(path)
    if resume:
        if status == "running" and last_checkpoint(path) is not None:
            return path  # run.json stays "running" until the resumed run finishes
        if status == "complete":
            raise OutputDirError(
                f"output_dir {str(path)!r} holds a finished run, nothing to resume; drop --resume, or choose "
                "a new --output_dir"
            )
        if existing or status == "running":
            raise OutputDirError(
                f"output_dir {str(path)!r} holds no checkpoint-* folder to resume from; the interrupted run "
                "needs --save_strategy steps (or epoch) to be resumable: drop --resume and pass "
                "--overwrite_output_dir, or choose a new --output_dir"
            )
        # An empty or missing directory: nothing to resume, start afresh.
    elif existing and not overwrite:
        if status == "running" and last_checkpoint(path) is not None:
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
    wait_for_everyone()  # every process has checked the directory before the main one writes into it
    if is_main_process():
        path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            path / MARKER, {"recipe": recipe, "status": "running", "started": time.time(), "files": []}
        )
    wait_for_everyone()
    return path


def start_run(training_args, recipe: str) -> Path:
    """`prepare_output_dir` from the training arguments; with `--resume`, point the Trainer at the last
    complete checkpoint (sets `training_args.resume_from_checkpoint`). Returns the output directory."""
    path = prepare_output_dir(
        training_args.output_dir, training_args.overwrite_output_dir, recipe, resume=training_args.resume
    )
    if training_args.resume and (checkpoint := last_checkpoint(path)) is not None:
        logger.info("resuming the interrupted run from %s", checkpoint)
        training_args.resume_from_checkpoint = str(checkpoint)
    return path


def finish_output_dir(path: str | Path, files: list[str]) -> None:
    """Mark the run complete, listing the files it wrote (relative to the directory) and how many
    processes trained it (`num_processes`, 2 under `accelerate launch --num_processes 2`). Main process only."""
    from accelerate import PartialState

    state = PartialState()
    if not state.is_main_process:
        return
    path = Path(path)
    record = json.loads((path / MARKER).read_text(encoding="utf-8"))
    record.update(
        status="complete", finished=time.time(), files=sorted(set(files)), num_processes=state.num_processes
    )
    write_json_atomic(path / MARKER, record)
