"""Safe extraction of selected tar/zip members: no absolute or `..` paths, links, devices or huge files."""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nlptransfer.errors import AssetError

#: Refuse archive members larger than this (the largest real one, bible.db, is 218 MB).
MAX_MEMBER_BYTES = 1 << 30
#: Separates an outer archive member (itself a tar/zip archive) from patterns inside it.
NESTED = "::"


@dataclass(frozen=True)
class _Member:
    name: str
    kind: str  # "file", "dir", "link", "other"
    size: int
    handle: object


def _is_unsafe_name(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        return True
    if len(name) >= 2 and name[1] == ":":  # C:foo
        return True
    return ".." in name.split("/")


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for m in tf.getmembers():
        if m.isfile():
            kind = "file"
        elif m.isdir():
            kind = "dir"
        elif m.issym() or m.islnk():
            kind = "link"
        else:
            kind = "other"
        yield _Member(m.name, kind, m.size, m)


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            kind = "dir"
        elif stat.S_ISLNK(mode):
            kind = "link"
        elif stat.S_IFMT(mode) in (0, stat.S_IFREG):  # 0: made on a system without Unix modes
            kind = "file"
        else:
            kind = "other"
        yield _Member(info.filename, kind, info.file_size, info)


@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[tuple[list[_Member], object]]:
    name = path.name.lower()
    is_zip = name.endswith((".whl", ".zip")) or (
        not name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) and zipfile.is_zipfile(path)
    )
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            yield list(_zip_members(zf)), zf
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            yield list(_tar_members(tf)), tf
    else:
        raise AssetError(f"{path.name} is neither a zip nor a tar archive; delete it and fetch again")


def _open_member(archive: object, member: _Member) -> IO[bytes]:
    if isinstance(archive, zipfile.ZipFile):
        return archive.open(member.handle)  # type: ignore[arg-type]
    f = archive.extractfile(member.handle)  # type: ignore[union-attr]
    if f is None:
        raise AssetError(f"cannot read member {member.name!r}; delete the archive and fetch again")
    return f


def _copy_limited(src: IO[bytes], dest: Path, name: str, limit: int) -> None:
    written = 0
    if dest.exists():
        raise AssetError(
            f"archive member {name!r} would overwrite {dest.name}; delete the archive and fetch again"
        )
    with open(dest, "xb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            written += len(block)
            if written > limit:
                raise AssetError(
                    f"archive member {name!r} is larger than {limit} bytes; refusing to extract it "
                    "(delete the archive and fetch again)"
                )
            out.write(block)


def _plan(members: list[_Member], entries: Sequence[str]) -> tuple[list[tuple[_Member, str]], dict]:
    """Match `entries` against `members`; return (member, relative destination) pairs and nested jobs."""
    bad = [m.name for m in members if _is_unsafe_name(m.name)]
    if bad:
        raise AssetError(
            f"archive has unsafe member path {bad[0]!r} (absolute or '..'); refusing to extract, "
            "delete the archive and fetch again"
        )
    plan: list[tuple[_Member, str]] = []
    nested: dict[str, list[str]] = {}
    for entry in entries:
        outer, sep, inner = entry.partition(NESTED)
        if sep:
            nested.setdefault(outer, []).append(inner)
            continue
        if entry.endswith("/"):
            hits = [
                (m, m.name[len(entry) :]) for m in members if m.name.startswith(entry) and m.kind != "dir"
            ]
            hits = [(m, rel) for m, rel in hits if rel]
        else:
            hits = [(m, posixpath.basename(entry)) for m in members if m.name == entry]
        if not hits:
            raise AssetError(f"archive has no member {entry!r}; delete the archive and fetch again")
        plan.extend(hits)
    for outer in nested:
        if not any(m.name == outer for m in members):
            raise AssetError(f"archive has no member {outer!r}; delete the archive and fetch again")
    return plan, nested


def safe_extract(
    archive_file: Path, dest: Path, entries: Sequence[str], *, max_member_bytes: int = MAX_MEMBER_BYTES
) -> list[Path]:
    """Extract only the members named by `entries` (see `Artifact`) from a zip/tar into `dest`.

    Refuses (AssetError) absolute or `..` member paths anywhere in the archive, and selected members
    that are symlinks, hardlinks, devices or larger than `max_member_bytes`.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    out: list[Path] = []
    with _open_archive(archive_file) as (members, handle):
        plan, nested = _plan(members, entries)
        for member, rel in plan:
            if member.kind != "file":
                raise AssetError(
                    f"archive member {member.name!r} is a {member.kind} (link/device), not a regular file; "
                    "refusing to extract it (delete the archive and fetch again)"
                )
            if member.size > max_member_bytes:
                raise AssetError(
                    f"archive member {member.name!r} is {member.size} bytes, over the {max_member_bytes} "
                    "limit; refusing to extract it (delete the archive and fetch again)"
                )
            target = (dest / rel).resolve()
            if target == root or root not in target.parents:
                raise AssetError(f"archive member {member.name!r} would land outside {dest}; refusing it")
            target.parent.mkdir(parents=True, exist_ok=True)
            with _open_member(handle, member) as src:
                _copy_limited(src, target, member.name, max_member_bytes)
            out.append(target)
        for outer, patterns in nested.items():
            member = next(m for m in members if m.name == outer)
            if member.kind != "file" or member.size > max_member_bytes:
                raise AssetError(f"nested archive {outer!r} is not a regular file of sane size; refusing it")
            with tempfile.TemporaryDirectory(prefix=".nested-", dir=dest) as tmp:
                inner_file = Path(tmp) / posixpath.basename(outer)
                with _open_member(handle, member) as src:
                    _copy_limited(src, inner_file, outer, max_member_bytes)
                with _open_archive(inner_file) as (inner_members, _):
                    names = [m.name for m in inner_members if m.kind != "dir"]
                picked = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
                if not picked:
                    raise AssetError(
                        f"nested archive {outer!r} has no member matching {patterns}; fetch again"
                    )
                out += safe_extract(inner_file, dest, picked, max_member_bytes=max_member_bytes)
    return out
