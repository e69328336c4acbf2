"""Run output directories: one `RunWriter` writes every file of a run, atomically, main process only.

    with RunWriter.from_training_args(training_args, "sentiment") as run:
        trainer.train()
        run.save_pretrained(model)                  # records exactly the files save_pretrained wrote
        run.write_json("metrics.json", metrics)
    # run.json: status "complete" and the sorted list of files this run wrote (a crash: "failed" + reason)

A run directory holds `run.json`: which recipe wrote it, whether the run finished (`running`, `complete`,
`failed`) and the files it wrote. A directory that holds anything else is refused unless
`--overwrite_output_dir`, and even then only when every file in it is listed in the run.json of a previous
run (anything else there is the user's: refused, naming the files). Overwriting removes the previous run's
listed files at the start (never any other file), so no stale file of the old run (a top-level
`adapter_config.json` of a LoRA run) survives beside the new one, and a crash leaves only the new run's
files. Under `accelerate launch` every process checks the directory, only the main one writes, the others
wait at barriers. "Main" is the GLOBAL main process (process 0 on machine 0, accelerate's
`is_main_process`), not each machine's first process: the Trainer saves checkpoints on the same process
(`TrainingArguments.should_save` with its default `save_on_each_node=False`, which `RunArguments` enforces),
so on a cluster the output directory gets one writer, and must be on a filesystem every machine sees for
`--resume` and `--load_best_model_at_end` (every process reads the checkpoints; each also writes its own
`rng_state_<rank>.pth` into them). Every path a run writes must stay inside its output directory.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from nlptransfer.errors import OutputDirError, typed_first_line
from nlptransfer.run_dirs import (
    MARKER,
    check_output_dir,
    in_checkpoint,
    last_checkpoint,
    read_marker,
    remove_files,
    remove_previous_run,
)
from nlptransfer.run_dirs import run_status as run_status  # re-exported: `from nlptransfer.runs import ...`
from nlptransfer.tracking import TRACKING_DIRS, flush_tracking, prepare_tracking

logger = logging.getLogger("nlptransfer")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask (the only portable way is to set and restore it)


# ----------------------------------------------------------------------------------------------
# atomic writes


def write_bytes_atomic(path: str | Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write to a temp file in the same directory, then rename: readers never see a truncated file.

    `overwrite=False` never replaces an existing file, even one created meanwhile (OutputDirError).
    """
    path = Path(path)
    try:
        return _write_bytes_atomic(path, data, overwrite)
    except OutputDirError:
        raise
    except OSError as err:
        raise OutputDirError(
            f"cannot write {path}: {err.strerror or err}; check that its folder exists, is a folder and is "
            "writable (and the disk is not full), or choose another output path"
        ) from err


def _write_bytes_atomic(path: Path, data: bytes, overwrite: bool) -> Path:
    if path.is_symlink() and not path.exists():
        raise OutputDirError(
            f"{path} is a symlink to the missing {os.readlink(path)!r}; nothing is written through a "
            "dangling symlink: remove it or choose another path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic and fails if `path` exists: never clobbers
            except FileExistsError:
                raise OutputDirError(f"{path} already exists; nothing was overwritten") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | Path, text: str, *, overwrite: bool = True) -> Path:
    """`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"), overwrite=overwrite)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    return write_text_atomic(path, json_text(data))


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def yaml_text(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ----------------------------------------------------------------------------------------------
# processes


def _partial_state():
    from accelerate import PartialState  # imported here: `nlptransfer cp/list` need no torch

    return PartialState()


def is_main_process() -> bool:
    """True on the process that writes files: the global main process (process 0 of all machines), never
    another machine's first process; always true without `accelerate launch`/torchrun."""
    return _partial_state().is_main_process


def wait_for_everyone() -> None:
    """Barrier across `accelerate launch` processes; a no-op in a single process."""
    _partial_state().wait_for_everyone()


# ----------------------------------------------------------------------------------------------
# run directories


class RunWriter:
    """Writes the files of one output directory and records each one; only the main process writes.

    `RunWriter(folder)` writes into any folder (no run.json); `RunWriter.start(...)` /
    `RunWriter.from_training_args(...)` begin a run (run.json "running"); `finish()` marks it complete
    with `files` = exactly the files written through this writer (plus the Trainer's checkpoints and
    logs of this run); `fail(reason)` marks it failed. As a context manager it finishes on success and
    fails on any exception, so a crash never leaves "running" behind (only a killed process does).

    On the other processes of `accelerate launch` every write is a no-op that returns [] / None.
    """

    def __init__(self, output_dir: str | Path):
        self.output_dir = Path(output_dir)
        state = _partial_state()
        self.is_main = state.is_main_process
        self.num_processes = state.num_processes
        self._files: dict[str, None] = {}  # relative posix paths, in write order (an ordered set)
        self.started: float | None = None  # the run's start (run.json), None for a plain folder writer
        self.resumed = False
        self.done = False
        self._before: dict[str, tuple[int, int]] = {}  # the Trainer's files already there at the start
        self.keep_checkpoints = True  # False: finish() removes this run's checkpoint-*/ files

    # ------------------------------------------------------------------ starting a run

    @classmethod
    def start(
        cls,
        output_dir: str | Path,
        recipe: str,
        *,
        overwrite: bool = False,
        resume: bool = False,
        keep_checkpoints: bool = True,
    ):
        """A new run in `output_dir` (or the continuation of an unfinished one with `resume`).

        `keep_checkpoints=False`: when the run completes, the checkpoint-*/ files it wrote (weights plus
        optimizer state, often several times the model's size) are removed; a failed run keeps them (resume).

        Every process checks the untouched directory (so all fail alike); then the main one creates it and
        writes run.json (status "running") while the others wait.
        """
        run = cls(output_dir)
        run.keep_checkpoints = keep_checkpoints
        run.resumed = check_output_dir(run.output_dir, overwrite, resume)
        wait_for_everyone()  # every process has checked the directory before the main one writes into it
        previous = read_marker(run.output_dir) if run.resumed else {}
        run.started = previous.get("started") or time.time()
        if run.is_main:
            try:
                if overwrite and not run.resumed and run.output_dir.is_dir():
                    removed = remove_previous_run(run.output_dir)
                    if removed:
                        logger.info(
                            "removed %d file(s) of the previous run in %s", len(removed), run.output_dir
                        )
                run.output_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputDirError(
                    f"cannot prepare output_dir {str(run.output_dir)!r}: {err.strerror or err}; fix its "
                    "permissions or choose another --output_dir"
                ) from err
            if run.resumed:  # the interrupted run's files are this run's: listed at the end too
                listed = previous.get("files") if isinstance(previous.get("files"), list) else []
                run._files = dict.fromkeys(
                    f for f in listed if isinstance(f, str) and f != MARKER and (run.output_dir / f).is_file()
                )
            record = {"recipe": recipe, "status": "running", "started": run.started, "files": run.files}
            if run.resumed:
                record["resumed"] = time.time()
            write_json_atomic(run.output_dir / MARKER, record)
        wait_for_everyone()
        if not run.resumed:  # a resumed run's checkpoints are its own (an overwritten run's are gone)
            run._before = run._trainer_files()
        return run

    @classmethod
    def from_training_args(cls, training_args, recipe: str):
        """`start` from the training arguments (`output_dir`, `overwrite_output_dir`, `resume`); a resumed
        run points the Trainer at the last complete checkpoint (`training_args.resume_from_checkpoint`)."""
        run = cls.start(
            training_args.output_dir,
            recipe,
            overwrite=training_args.overwrite_output_dir,
            resume=training_args.resume,
            keep_checkpoints=getattr(training_args, "keep_checkpoints", False),
        )
        prepare_tracking(training_args)  # --report_to mlflow/trackio: their files go into the run
        if run.resumed and (checkpoint := last_checkpoint(run.output_dir)) is not None:
            logger.info("resuming the interrupted run from %s", checkpoint)
            training_args.resume_from_checkpoint = str(checkpoint)
        return run

    # ------------------------------------------------------------------ paths

    def path(self, relpath: str | Path = "") -> Path:
        """`output_dir / relpath`, refused (OutputDirError) unless it stays inside output_dir."""
        rel = Path(relpath)
        root = self.output_dir.resolve()
        target = (root / rel).resolve()
        if rel.is_absolute() or (target != root and not target.is_relative_to(root)):
            raise OutputDirError(
                f"{str(relpath)!r} is outside output_dir {str(self.output_dir)!r}; a run writes only inside "
                "its output directory (give a path relative to it, without '..')"
            )
        return target

    def _file(self, relpath: str | Path) -> Path:
        target = self.path(relpath)
        if target == self.path(MARKER) or target == self.path():
            raise OutputDirError(f"{str(relpath)!r} is not a file name a run may write; pick another name")
        return target

    def _record(self, target: Path) -> str:
        rel = target.relative_to(self.output_dir.resolve()).as_posix()
        self._files[rel] = None
        return rel

    @property
    def files(self) -> list[str]:
        """The files recorded so far, relative to output_dir, sorted."""
        return sorted(self._files)

    # ------------------------------------------------------------------ writing

    def _flush(self) -> None:
        """Keep run.json's file list current while the run goes, so that a run killed outright (SIGKILL,
        power loss: no `fail`) still names its files and `--overwrite_output_dir` may replace them."""
        if self.is_main and self.started is not None and not self.done:
            record = read_marker(self.output_dir)
            if record.get("status") == "running":
                record["files"] = self.files
                write_json_atomic(self.output_dir / MARKER, record)

    def write_bytes(self, relpath: str | Path, data: bytes) -> Path | None:
        target = self._file(relpath)
        if not self.is_main:
            return None
        write_bytes_atomic(target, data)
        self._record(target)
        self._flush()
        return target

    def write_text(self, relpath: str | Path, text: str) -> Path | None:
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_json(self, relpath: str | Path, data: Any) -> Path | None:
        return self.write_text(relpath, json_text(data))

    def write_yaml(self, relpath: str | Path, data: Any) -> Path | None:
        return self.write_text(relpath, yaml_text(data))

    def write_with(self, write: Callable[[Path], object], relpath: str | Path = "") -> list[str]:
        """Call `write(folder)` on an empty staging folder, then move every file it wrote to `relpath`
        (a folder inside output_dir) and record it. Returns the files written, relative to output_dir."""
        dest = self.path(relpath)
        if dest == self.path(MARKER):
            raise OutputDirError(f"{str(relpath)!r} is not a folder name a run may write; pick another name")
        if not self.is_main:
            return []
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        with tempfile.TemporaryDirectory(dir=dest, prefix=".staging-") as tmp:
            staging = Path(tmp)
            write(staging)
            for src in sorted(p for p in staging.rglob("*") if p.is_file() and not p.is_symlink()):
                target = self._file(Path(relpath) / src.relative_to(staging))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)
                written.append(self._record(target))
        self._flush()
        return written

    def save_pretrained(self, obj, relpath: str | Path = "", **kwargs) -> list[str]:
        """`obj.save_pretrained(output_dir / relpath, **kwargs)` (a model, tokenizer, config, peft model...);
        records exactly the files that call wrote."""
        return self.write_with(lambda folder: obj.save_pretrained(folder, **kwargs), relpath)

    def record(self, relpaths: Iterable[str | Path]) -> list[str]:
        """Record files written by others (a folder: every file under it); missing paths are skipped."""
        marker = self.path(MARKER)
        targets = [self.path(relpath) for relpath in relpaths]
        if marker in targets:
            raise OutputDirError(f"{MARKER} is the run's own record, not one of its files")
        if not self.is_main:
            return []
        recorded = []
        for target in targets:
            if target.is_dir():
                recorded += [
                    self._record(p) for p in sorted(target.rglob("*")) if p.is_file() and p != marker
                ]
            elif target.is_file():
                recorded.append(self._record(target))
            else:
                logger.warning("not recording %s: no such file in %s", target, self.output_dir)
        self._flush()
        return recorded

    def _trainer_files(self) -> dict[str, tuple[int, int]]:
        """Files in the Trainer's folders of output_dir: `checkpoint-*` (at any depth) and the tracking logs
        of --report_to (`runs/` TensorBoard, `mlruns/` MLflow, `trackio/`) -> (mtime_ns, size)."""
        root = self.output_dir.resolve()
        if not root.is_dir():
            return {}
        tracking = [root / name for name in TRACKING_DIRS.values()]
        folders = [p for p in root.rglob("checkpoint-*") if p.is_dir()] + tracking
        found = {}
        for folder in folders:
            for f in folder.rglob("*") if folder.is_dir() else []:
                if f.is_file():
                    stat = f.stat()
                    found[f.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
        return found

    def record_trainer_files(self) -> list[str]:
        """Record what the Trainer wrote into output_dir during this run (or the run it resumes): its
        checkpoints and tracking logs. The Trainer reports no file names: a file counts when it was not
        there, or was rewritten, since the run started; an earlier run's untouched files do not."""
        if not self.is_main or self.started is None:
            return []
        before = self._before
        changed = [f for f, stamp in self._trainer_files().items() if before.get(f) != stamp]
        return self.record(sorted(changed))

    # ------------------------------------------------------------------ ending a run

    def finish(self, **extra) -> None:
        """Mark the run complete: `files` (sorted, relative to output_dir), `num_processes` and `extra`."""
        self.done = True
        if not self.is_main or self.started is None:  # not a run (a plain folder writer): no run.json
            return
        flush_tracking()  # --report_to mlflow: its last metrics are written before they are listed
        self.record_trainer_files()
        if not self.keep_checkpoints:
            self._remove_checkpoints()
        files = [f for f in self.files if (self.output_dir / f).is_file()]  # a rotated checkpoint is gone
        record = {k: v for k, v in read_marker(self.output_dir).items() if k not in ("reason", "failed")}
        record.update(status="complete", finished=time.time(), files=files, num_processes=self.num_processes)
        record.update(extra)
        write_json_atomic(self.output_dir / MARKER, record)

    def _remove_checkpoints(self) -> None:
        """Remove the checkpoint-*/ files this run wrote (never another run's or the user's)."""
        removed = remove_files(self.output_dir, [f for f in self.files if in_checkpoint(f)])
        for rel in removed:
            self._files.pop(rel, None)
        if removed:
            logger.info(
                "removed the run's checkpoints (%d files; pass --keep_checkpoints true to keep them)",
                len(removed),
            )

    def fail(self, reason: str) -> None:
        """Mark the run failed with `reason` (one line); never raises, so the original error shows."""
        self.done = True
        if not self.is_main or self.started is None:
            return
        try:
            record = read_marker(self.output_dir)
            reason = " ".join(str(reason).split())[:500]
            record.update(status="failed", failed=time.time(), reason=reason, files=self.files)
            write_json_atomic(self.output_dir / MARKER, record)
        except OSError as err:
            logger.warning("could not mark %s failed: %s", self.output_dir, err)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            if not self.done:
                self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.fail("interrupted (KeyboardInterrupt)")
        else:
            self.fail(typed_first_line(exc))
        return False
