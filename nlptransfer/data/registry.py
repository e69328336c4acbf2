"""Embedded datasets: names that `load_source` loads offline, each with its loader and split protocol.

- `vader-<domain>` / `vader-<domain>-binary`: the VADER gold standards (`nlptransfer.data.vader`);
- `pubmed-pubtype`, `pubmed-mesh`, `pubmed-mesh-<K>` (K >= 2), and the unlabelled corpora
  `pubmed-abstracts` / `pubmed-abstracts-unindexed` (`nlptransfer.data.pubmed`). They use test 20%, then
  validation 10% of the rest, stratified by label for `pubmed-pubtype`, random for the multi-label
  `pubmed-mesh`;
- `bible-<src>-<tgt>` is parallel (translation) data, loaded by `nlptransfer.data.bible.load_parallel`,
  not a classification dataset: `load_source` refuses it with a pointer to the translation recipe.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from datasets import Dataset

import nlptransfer.data.pubmed as pubmed
from nlptransfer.data.files import EXTENSION_LIST
from nlptransfer.data.splits import DEFAULT_PROTOCOL, SplitProtocol
from nlptransfer.data.vader import VADER_DOMAINS, VADER_PROTOCOL, load_vader
from nlptransfer.errors import DataError

PUBMED_PROTOCOL = SplitProtocol(0.2, 0.1)


@dataclass(frozen=True)
class EmbeddedDataset:
    """An embedded dataset: `loader()` returns the whole corpus as one `Dataset` (with `text` and
    a `label` ClassLabel or a `labels` List(ClassLabel)); `load_source` carves its splits."""

    loader: Callable[[], Dataset]
    description: str
    split_protocol: SplitProtocol = DEFAULT_PROTOCOL


# The pubmed loaders are looked up when called (so a test can replace them on the module).
def _pubmed_pubtype() -> Dataset:
    return pubmed.load_pubtype()


def _pubmed_mesh(k: int = 10) -> Dataset:
    return pubmed.load_mesh(k)


def _pubmed_abstracts(unindexed_only: bool) -> Dataset:
    return pubmed.load_abstracts(unindexed_only)


EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {}
for _domain, (_file, _desc) in VADER_DOMAINS.items():
    EMBEDDED_DATASETS[f"vader-{_domain}"] = EmbeddedDataset(
        partial(load_vader, _file, False),
        f"VADER gold standard, {_desc}; negative/neutral/positive",
        VADER_PROTOCOL,
    )
    EMBEDDED_DATASETS[f"vader-{_domain}-binary"] = EmbeddedDataset(
        partial(load_vader, _file, True),
        f"VADER gold standard, {_desc}, neutral band dropped; negative/positive",
        VADER_PROTOCOL,
    )
EMBEDDED_DATASETS["pubmed-pubtype"] = EmbeddedDataset(
    _pubmed_pubtype,
    "PubMed English abstracts, publication type: review/case_report/clinical_trial/other_research",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-mesh"] = EmbeddedDataset(
    _pubmed_mesh,
    "PubMed English abstracts, multi-label: the 10 most frequent MeSH major topics",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-abstracts"] = EmbeddedDataset(
    partial(_pubmed_abstracts, False),
    "PubMed English abstracts (30,456), unlabelled: a biomedical corpus for DAPT / vocabulary mining",
    PUBMED_PROTOCOL,
)
EMBEDDED_DATASETS["pubmed-abstracts-unindexed"] = EmbeddedDataset(
    partial(_pubmed_abstracts, True),
    "PubMed English abstracts not MEDLINE-indexed, unlabelled: none of pubmed-pubtype's texts",
    PUBMED_PROTOCOL,
)
_MESH_K = re.compile(r"pubmed-mesh-(.*)", flags=re.IGNORECASE)


def embedded_dataset(name: str) -> EmbeddedDataset | None:
    """The embedded dataset called `name` (`pubmed-mesh-<K>` for any K >= 2), None if not embedded."""
    if name in EMBEDDED_DATASETS:
        return EMBEDDED_DATASETS[name]
    match = _MESH_K.fullmatch(name)
    if not match:
        return None
    k = match.group(1)
    if not (k.isascii() and k.isdigit()) or int(k) < 2:
        raise DataError(
            f"{name!r}: K in pubmed-mesh-<K> must be a whole number >= 2, got {k!r}; use e.g. pubmed-mesh-10"
        )
    return EmbeddedDataset(
        partial(_pubmed_mesh, int(k)),
        f"PubMed English abstracts, multi-label: the {int(k)} most frequent MeSH major topics",
        PUBMED_PROTOCOL,
    )


def unknown_dataset(source: str, why: str) -> DataError:
    """The error for a name that is no dataset: suggests the nearest embedded name and lists them all."""
    names = ", ".join([*EMBEDDED_DATASETS, "pubmed-mesh-<K>"])
    close = difflib.get_close_matches(source, list(EMBEDDED_DATASETS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(
        f"unknown dataset {source!r}{hint}: {why}; use an embedded name ({names}), "
        f"a local file path ({EXTENSION_LIST}) or folder, or a Hub id when online"
    )


def check_not_embedded_family(source: str) -> None:
    """Refuse a name of an embedded family that is not a classification dataset (before trying the Hub)."""
    if source.lower().startswith(("vader", "pubmed")):
        raise unknown_dataset(source, "no such embedded dataset")
    if source.lower().startswith("bible-"):
        raise DataError(
            f"{source!r} is parallel (translation) data, not a classification dataset; use it with "
            "python -m nlptransfer.recipes.translation_pair --child_dataset " + source
        )
