"""Output directories that never lose a user's files, and atomic writes.

A run directory holds `run.json`: which tool wrote it, whether the run finished, and the files it wrote.
A directory that holds anything else is refused unless `--overwrite_output_dir`; even then only files a
previous nlptransfer run wrote are replaced, nothing is deleted.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .errors import OutputDirError

MARKER = "run.json"
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


def prepare_output_dir(path: str | Path, overwrite: bool, recipe: str) -> Path:
    """Create `path` for a new run, or refuse if it holds a previous run or foreign files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output_dir {str(path)!r} is a file; pass a directory path to --output_dir")
    existing = [p for p in path.iterdir()] if path.is_dir() else []
    if existing and not overwrite:
        what = (
            "a previous run"
            if (path / MARKER).exists()
            else f"{len(existing)} file(s) not written by this run"
        )
        raise OutputDirError(
            f"output_dir {str(path)!r} already holds {what}; choose a new --output_dir or pass "
            f"--overwrite_output_dir (only files nlptransfer wrote get replaced)"
        )
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        path / MARKER, {"recipe": recipe, "status": "running", "started": time.time(), "files": []}
    )
    return path


def finish_output_dir(path: str | Path, files: list[str]) -> None:
    """Mark the run complete, listing the files it wrote (relative to the directory)."""
    path = Path(path)
    state = json.loads((path / MARKER).read_text(encoding="utf-8"))
    state.update(status="complete", finished=time.time(), files=sorted(set(files)))
    write_json_atomic(path / MARKER, state)
