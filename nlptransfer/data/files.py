"""Reading local files and folders: supported extensions, UTF-8 checks, split names of files in a folder.

A file becomes one `Dataset` (`.txt`: one text per non-blank line, column `text`); a folder's
`train.*`, `validation.*`/`valid.*`/`dev.*` and `test.*` files become those splits, otherwise all its
files of one supported type form the train split. Files are only read, never modified.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict

from nlptransfer.errors import DataError, first_line

#: File stems (and Hub split names) that name a split.
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
}
#: Supported file suffix -> the `datasets` builder that reads it.
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
}
#: "csv/.tsv/..." for error messages.
EXTENSION_LIST = "/".join(EXTENSIONS)


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Raise DataError naming the byte offset of the first invalid UTF-8 sequence in `path`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            final = not chunk
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError as err:
                at = offset - pending + err.start
                raise DataError(
                    f"{path} is not valid UTF-8 (byte 0x{err.object[err.start]:02x} at offset {at}); "
                    "re-save the file as UTF-8"
                ) from None
            if final:
                return
            offset += len(chunk)


def read_file(path: Path) -> Dataset:
    """One supported file as a Dataset (checked to be UTF-8 and non-empty)."""
    ext = path.suffix.lower()
    builder = EXTENSIONS.get(ext)
    if builder is None:
        raise DataError(
            f"{path} has unsupported extension {ext or '(none)'!r}; convert it to one of {EXTENSION_LIST}"
        )
    if builder != "parquet":
        check_utf8(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; add rows (with a header line for .csv/.tsv)")
    kwargs = {"delimiter": "\t"} if ext == ".tsv" else {}
    try:
        ds = datasets.load_dataset(builder, data_files={"train": str(path)}, split="train", **kwargs)
    except Exception as err:  # pandas / pyarrow / json parse errors: one line, no traceback
        reason = first_line(err)
        if "corresponds to no data" in reason:
            raise DataError(f"{path} has no rows; add examples or remove the empty file") from None
        raise DataError(f"could not read {path} as {ext}: {reason}; check that it is valid {ext}") from None
    if builder == "text":
        ds = ds.filter(lambda row: bool(row["text"].strip()))
    return ds


def _read_files(paths: list[Path]) -> Dataset:
    parts = [read_file(p) for p in paths]
    if len(parts) == 1:
        return parts[0]
    try:
        return datasets.concatenate_datasets(parts)
    except Exception as err:
        raise DataError(
            f"files {', '.join(p.name for p in paths)} have different columns or types ({first_line(err)}); "
            "give them the same columns"
        ) from None


def _split_of(path: Path) -> str | None:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    for alias, split in SPLIT_ALIASES.items():
        if re.fullmatch(rf"{alias}([-._ 0-9].*)?", stem, flags=re.IGNORECASE):
            return split
    return None


def read_folder(folder: Path) -> tuple[DatasetDict, set[str]]:
    """The splits of a folder and the file suffixes read."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    supported = [p for p in files if p.suffix.lower() in EXTENSIONS]
    if not supported:
        found = ", ".join(p.name for p in files[:10]) or "nothing"
        raise DataError(
            f"folder {folder} has no {EXTENSION_LIST} files (found: {found}); add train/validation/test files"
        )
    by_split: dict[str, list[Path]] = {}
    for p in supported:
        split = _split_of(p)
        if split:
            by_split.setdefault(split, []).append(p)
    if by_split:
        if "train" not in by_split:
            raise DataError(
                f"folder {folder} has {', '.join(sorted(by_split))} files but no train.* file; "
                "add train.<ext> (validation/test alone cannot be trained on)"
            )
        used = {p.suffix.lower() for paths in by_split.values() for p in paths}
        return DatasetDict({split: _read_files(paths) for split, paths in by_split.items()}), used
    types = sorted({p.suffix.lower() for p in supported})
    if len(types) > 1:
        raise DataError(
            f"folder {folder} mixes {', '.join(types)} files and none is named train.*/test.*; "
            "name them train.<ext>, validation.<ext>, test.<ext> or keep one file type"
        )
    return DatasetDict({"train": _read_files(supported)}), set(types)


def looks_like_path(source: str) -> bool:
    """Whether `source` was meant as a local path (so a missing one is not tried as a Hub id)."""
    if source.startswith(("/", "./", "../", "~", "\\")) or "\\" in source:
        return True
    if any(source.lower().endswith(ext) for ext in EXTENSIONS):
        return True
    return source.count("/") >= 2
