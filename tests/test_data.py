"""load_source: every source type, label encoding, seeded splits, and one-line DataErrors with fixes."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from nlptransfer import data
from nlptransfer.data import check_eval_labels, load_source, read_vader, vader_label
from nlptransfer.errors import ConfigError, DataError

ROWS = [{"id": i, "text": f"text number {i}", "label": "pos" if i % 3 else "neg"} for i in range(30)]


def _write(path: Path, rows: list[dict]) -> Path:
    """Write rows as csv/tsv/json/jsonl/parquet by the file extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix
    if ext in (".csv", ".tsv"):
        sep = "," if ext == ".csv" else "\t"
        cols = list(rows[0])
        lines = [sep.join(cols)] + [sep.join(str(r[c]) for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif ext == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif ext == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif ext == ".parquet":
        Dataset.from_list(rows).to_parquet(str(path))
    else:
        raise AssertionError(ext)
    return path


def _error(source: object, **kwargs: object) -> str:
    with pytest.raises(DataError) as info:
        load_source(str(source), **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ----------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_file_round_trip(tmp_path: Path, ext: str) -> None:
    path = _write(tmp_path / f"data{ext}", ROWS)
    before = path.read_bytes()
    dd = load_source(str(path))
    assert list(dd) == ["train", "validation", "test"]
    assert sum(len(d) for d in dd.values()) == 30
    assert len(dd["test"]) == 6  # local files: 20% test by default
    assert dd["train"].features["label"] == ClassLabel(names=["neg", "pos"])
    assert "id" in dd["train"].column_names  # other columns kept
    texts = {t for d in dd.values() for t in d["text"]}
    assert texts == {r["text"] for r in ROWS}
    assert path.read_bytes() == before  # user file untouched


def test_tsv_text_with_commas_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    lines = ["text\tlabel"] + [f"a, b and 'c' number {i}\t{'x' if i % 2 else 'y'}" for i in range(10)]
    path.write_text("\n".join(lines) + "\n")
    dd = load_source(str(path), test_fraction=0.2, validation_fraction=0.25)
    assert {t for d in dd.values() for t in d["text"]} == {ln.split("\t")[0] for ln in lines[1:]}


def test_txt_unlabelled(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("first line\n\nsecond line\r\nthird\nfourth\n", encoding="utf-8")
    dd = load_source(str(path), label_column=None, test_fraction=0.25, validation_fraction=0.34)
    assert dd["train"].column_names == ["text"]
    assert sorted(t for d in dd.values() for t in d["text"]) == [
        "first line",
        "fourth",
        "second line",
        "third",
    ]


def test_txt_with_label_column_says_how(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("a\nb\n")
    assert "--label_column none" in _error(path)


def test_folder_with_train_and_test(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "train.csv", ROWS[:20])
    _write(tmp_path / "d" / "test.csv", ROWS[20:])
    (tmp_path / "d" / "README.md").write_text("ignored")
    dd = load_source(str(tmp_path / "d"))
    assert len(dd["test"]) == 10
    assert len(dd["train"]) + len(dd["validation"]) == 20
    assert len(dd["validation"]) == 2


def test_folder_dev_alias_and_carved_test(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "train.jsonl", ROWS[:24])
    _write(tmp_path / "d" / "dev.jsonl", ROWS[24:])
    dd = load_source(str(tmp_path / "d"), test_fraction=0.25)
    assert len(dd["validation"]) == 6 and len(dd["test"]) == 6 and len(dd["train"]) == 18


def test_folder_without_split_names_is_train(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "part1.parquet", ROWS[:15])
    _write(tmp_path / "d" / "part2.parquet", ROWS[15:])
    dd = load_source(str(tmp_path / "d"))
    assert sum(len(d) for d in dd.values()) == 30


def test_folder_of_txt_unlabelled(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.txt").write_text("\n".join(f"line {i}" for i in range(10)))
    (tmp_path / "d" / "validation.txt").write_text("v1\nv2\n")
    (tmp_path / "d" / "test.txt").write_text("t1\n")
    dd = load_source(str(tmp_path / "d"), label_column=None)
    assert [len(dd[s]) for s in ("train", "validation", "test")] == [10, 2, 1]


def test_custom_columns_renamed(tmp_path: Path) -> None:
    rows = [{"review": f"r{i}", "sentiment": i % 2, "text": "old"} for i in range(10)]
    path = _write(tmp_path / "d.jsonl", rows)
    dd = load_source(str(path), text_column="review", label_column="sentiment")
    assert {"text", "label", "text_orig"} <= set(dd["train"].column_names)
    assert dd["train"][0]["text"].startswith("r")


# ----------------------------------------------------------------------------------------------
# labels


def test_int_labels_keep_numeric_order(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": [10, 2, 1][i % 3]} for i in range(30)]
    dd = load_source(str(_write(tmp_path / "d.csv", rows)))
    names = dd["train"].features["label"].names
    assert names == ["1", "2", "10"]
    for split in dd.values():
        for row in split:
            raw = rows[int(row["text"][1:])]["label"]
            assert names[row["label"]] == str(raw)


def test_string_labels_sorted_and_label_names_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ROWS)
    assert load_source(str(path))["train"].features["label"].names == ["neg", "pos"]
    dd = load_source(str(path), label_names=["pos", "neg"])
    assert dd["train"].features["label"].names == ["pos", "neg"]
    for split in dd.values():
        for row in split:
            assert ("pos", "neg")[row["label"]] == ROWS[row["id"]]["label"]


def _case_variants(tmp_path: Path) -> Path:
    labels = ["Positive", "positive ", "POSITIVE", "negative", " Negative"]
    rows = [{"text": f"text number {i}", "label": labels[i % len(labels)]} for i in range(60)]
    return _write(tmp_path / "cases.jsonl", rows)


def test_labels_differing_by_case_or_whitespace_warn(tmp_path: Path, caplog) -> None:
    """Issue 15 #10: 'Positive' and 'positive ' silently became separate classes."""
    caplog.set_level(logging.WARNING, logger="nlptransfer")
    dd = load_source(str(_case_variants(tmp_path)))
    assert len(dd["train"].features["label"].names) == 5  # kept apart, as asked
    lines = [r.getMessage() for r in caplog.records if "differ only by case" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "' Negative', 'negative'" in lines[0] and "'POSITIVE', 'Positive', 'positive '" in lines[0]
    assert "--normalize_labels true" in lines[0]


def test_normalize_labels_merges_them(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="nlptransfer")
    dd = load_source(str(_case_variants(tmp_path)), normalize_labels=True)
    assert dd["train"].features["label"].names == ["negative", "positive"]
    assert "differ only by case" not in caplog.text
    total = sum(len(split) for split in dd.values())
    assert total == 60


def test_label_names_for_int_ids(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(20)]
    dd = load_source(str(_write(tmp_path / "d.csv", rows)), label_names=["negative", "positive"])
    assert dd["train"].features["label"].names == ["negative", "positive"]
    assert all(row["label"] == int(row["text"][1:]) % 2 for row in dd["test"])


def test_label_names_unknown_label(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path / "d.csv", ROWS), label_names=["pos", "other"])
    assert "'neg'" in msg and "label_names" in msg


def test_existing_classlabel_is_kept(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]})
    ds = ds.cast_column("label", ClassLabel(names=["zeta", "alpha"]))
    path = tmp_path / "d.parquet"
    ds.to_parquet(str(path))
    dd = load_source(str(path))
    assert dd["train"].features["label"].names == ["zeta", "alpha"]  # not re-sorted


def test_carved_splits_stratified_and_seeded(tmp_path: Path) -> None:
    rows = [{"id": i, "text": f"t{i}", "label": "a" if i < 30 else "b"} for i in range(40)]
    path = _write(tmp_path / "d.csv", rows)
    one = load_source(str(path), seed=1, validation_fraction=0.2, test_fraction=0.5)
    again = load_source(str(path), seed=1, validation_fraction=0.2, test_fraction=0.5)
    other = load_source(str(path), seed=2, validation_fraction=0.2, test_fraction=0.5)
    assert one["test"]["id"] == again["test"]["id"] and one["train"]["id"] == again["train"]["id"]
    assert one["test"]["id"] != other["test"]["id"]
    assert Counter(one["test"]["label"]) == {0: 15, 1: 5}
    assert Counter(one["validation"]["label"]) == {0: 3, 1: 1}


def test_check_eval_labels_realigns_and_rejects(tmp_path: Path) -> None:
    train = Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 2]}).cast_column(
        "label", ClassLabel(names=["negative", "neutral", "positive"])
    )
    other = Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]}).cast_column(
        "label", ClassLabel(names=["negative", "positive"])
    )
    aligned = check_eval_labels(train, other, "cross-domain")
    assert aligned.features["label"] == train.features["label"]
    assert list(aligned["label"]) == [0, 2]
    bad = Dataset.from_dict({"text": ["x"], "label": [0]}).cast_column("label", ClassLabel(names=["mixed"]))
    with pytest.raises(DataError, match="never seen in train.*merge"):
        check_eval_labels(train, bad, "cross-domain")


# ----------------------------------------------------------------------------------------------
# errors


def test_unknown_embedded_name_suggests() -> None:
    msg = _error("vader-tweet")
    assert "did you mean 'vader-tweets'" in msg and "Hub id" in msg and ".parquet" in msg


def test_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Couldn't reach 'imdb' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    msg = _error("imdb")
    assert "Hub is unreachable" in msg and "vader-tweets" in msg and "local file path" in msg


def test_hub_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets.exceptions import DatasetNotFoundError

    def missing(*args: object, **kwargs: object) -> None:
        raise DatasetNotFoundError("Dataset 'someone/nothing' doesn't exist on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", missing)
    assert "nor a dataset on the Hub" in _error("someone/nothing")


@pytest.mark.parametrize("source", ["data/missing.csv", "./nope", "/no/such/dir/", "a/b/c"])
def test_missing_path(source: str) -> None:
    assert "does not exist; check the path" in _error(source)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    path.write_bytes(b"PK")
    msg = _error(path)
    assert "unsupported extension '.xlsx'" in msg and ".csv/.tsv" in msg


def test_missing_text_column(tmp_path: Path) -> None:
    rows = [{"review": f"r{i}", "label": i % 2} for i in range(10)]
    msg = _error(_write(tmp_path / "d.csv", rows))
    assert "no column 'text'" in msg and "review, label" in msg and "--text_column" in msg


def test_missing_label_column_suggests_nearest(tmp_path: Path) -> None:
    rows = [{"text": f"r{i}", "labels": i % 2} for i in range(10)]
    msg = _error(_write(tmp_path / "d.csv", rows))
    assert "--label_column" in msg and "did you mean 'labels'" in msg


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    assert "is empty" in _error(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text,label\n")
    assert "has no rows" in _error(tmp_path / "header.csv")


def test_empty_split_in_folder(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "train.csv", ROWS)
    (tmp_path / "d" / "test.csv").write_text("id,text,label\n")
    msg = _error(tmp_path / "d")
    assert "test.csv has no rows" in msg


def test_too_small_to_carve(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path / "d.jsonl", ROWS[:1]))
    assert "too few rows" in msg and "provide a test file" in msg


def test_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    content = "text,label\ncaf\u00e9,a\n".encode("latin-1")
    path.write_bytes(content)
    msg = _error(path)
    assert str(path) in msg and f"offset {content.index(0xE9)}" in msg and "re-save the file as UTF-8" in msg
    assert path.read_bytes() == content


def test_non_utf8_offset_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(b"a" * 9 + "\u00e9".encode() + b"b" * 5 + b"\xff")
    with pytest.raises(DataError, match="offset 16"):
        data.check_utf8(path, chunk_size=10)  # the 2-byte char straddles a chunk boundary


def test_unseen_labels_in_test(tmp_path: Path) -> None:
    _write(tmp_path / "d" / "train.csv", ROWS)
    _write(
        tmp_path / "d" / "test.csv",
        [{"id": 0, "text": "x", "label": "mixed"}, {"id": 1, "text": "y", "label": "neg"}],
    )
    msg = _error(tmp_path / "d")
    assert "['mixed']" in msg and "merge" in msg


@pytest.mark.parametrize("missing", ["", "null"])
def test_missing_label_values(tmp_path: Path, missing: str) -> None:
    path = tmp_path / ("d.csv" if missing == "" else "d.jsonl")
    if missing == "":
        path.write_text("text,label\na,1\nb,\nc,0\n")
    else:
        path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n')
    msg = _error(path)
    assert "1 rows have no label (first at row 1)" in msg and "fill or drop" in msg


def test_float_labels_rejected(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,0.5\nb,1.5\n")
    assert "regression" in _error(path)


def test_bad_fraction() -> None:
    with pytest.raises(ConfigError, match="between 0 and 1"):
        load_source("vader-tweets", test_fraction=1.0)


# ----------------------------------------------------------------------------------------------
# VADER parser (fast, on a tiny file in the real format) and the real corpus (slow)


def test_read_vader_format(tmp_path: Path) -> None:
    path = tmp_path / "x_GroundTruth.txt"
    path.write_bytes(
        b"1\t2.5\tGreat &amp; fun\r\n\r\n2\t-0.2\ttab\tinside \r\n3\t0.2000001\tok\r\n4\t-3\tbad"
    )
    rows = read_vader(path)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[1]["text"] == "tab\tinside" and rows[0]["text"] == "Great &amp; fun"
    assert [vader_label(r["score"]) for r in rows] == [2, 1, 2, 0]
    assert [vader_label(r["score"], binary=True) for r in rows] == [1, None, 1, 0]
    path.write_text("1\tnot-a-number\ttext\n")
    with pytest.raises(DataError, match=r":1 is not .*fetch vader --force"):
        read_vader(path)


def test_neutral_band_is_inclusive() -> None:
    assert vader_label(0.2) == vader_label(-0.2) == 1
    assert vader_label(0.21) == 2 and vader_label(-0.21) == 0


EXPECTED_3CLASS = {
    "vader-tweets": (1195, 359, 2646),
    "vader-movies": (5245, 203, 5157),
    "vader-amazon": (1336, 467, 1905),
    "vader-nyt": (2260, 1289, 1641),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED_3CLASS))
def test_real_vader_counts_and_splits(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NLPTRANSFER_CACHE", raising=False)
    dd = load_source(name)
    total = sum(len(d) for d in dd.values())
    counts = Counter()
    for d in dd.values():
        counts.update(d["label"])
    assert tuple(counts[i] for i in range(3)) == EXPECTED_3CLASS[name]
    assert dd["train"].features["label"].names == ["negative", "neutral", "positive"]
    assert set(dd["train"].column_names) == {"id", "text", "score", "label"}
    assert abs(len(dd["test"]) - total / 2) <= 0.5  # test = a random half
    rest = total - len(dd["test"])
    assert len(dd["validation"]) == -(-rest // 10)  # 10% of the training half (rounded up)
    assert len(dd["train"]) == rest - len(dd["validation"])
    ids = [i for d in dd.values() for i in d["id"]]
    assert len(set(ids)) == total  # disjoint splits
    assert all(-4 <= s <= 4 for s in dd["test"]["score"])

    binary = load_source(f"{name}-binary")
    counts2 = Counter()
    for d in binary.values():
        counts2.update(d["label"])
    neg, _, pos = EXPECTED_3CLASS[name]
    assert (counts2[0], counts2[1]) == (neg, pos)
    assert binary["test"].features["label"].names == ["negative", "positive"]


# ----------------------------------------------------------------------------------------------
# multi-label targets

ML_ROWS = [
    {"id": i, "text": f"doc {i}", "tags": [["b", "a"], ["b"], ["c", "a"], []][i % 4]} for i in range(40)
]


def _all_rows(dd) -> dict[int, list[str]]:
    names = data.label_names(dd)
    return {row["id"]: sorted(names[j] for j in row["labels"]) for split in dd.values() for row in split}


def test_multilabel_list_column_jsonl(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", ML_ROWS)
    dd = load_source(str(path), label_column="tags")
    assert data.is_multilabel(dd) and data.is_multilabel(dd["test"])
    assert data.label_names(dd) == ["a", "b", "c"]  # sorted
    assert dd["train"].features["labels"] == datasets.List(ClassLabel(names=["a", "b", "c"]))
    assert {"id", "text", "labels"} == set(dd["train"].column_names)
    assert _all_rows(dd) == {r["id"]: sorted(r["tags"]) for r in ML_ROWS}  # [] kept as "no class"
    assert [len(dd[s]) for s in ("train", "validation", "test")] == [28, 4, 8]  # 20% test, 10% validation
    again = load_source(str(path), label_column="tags")
    assert again["test"]["id"] == dd["test"]["id"]  # seeded (random: lists cannot be stratified)


def test_multilabel_int_lists_and_labels_column(tmp_path: Path) -> None:
    rows = [{"id": i, "text": f"doc {i}", "labels": [[10, 2], [1], [2]][i % 3]} for i in range(30)]
    dd = load_source(str(_write(tmp_path / "d.parquet", rows)))  # default `label` missing -> list `labels`
    assert data.label_names(dd) == ["1", "2", "10"]  # numeric order, decimal names
    assert _all_rows(dd) == {r["id"]: sorted(str(v) for v in r["labels"]) for r in rows}


def test_multilabel_csv_semicolon_lists(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    cells = ["a;b", "b", " c ; a ", ";"]
    path.write_text("id,text,label\n" + "".join(f"{i},doc {i},{cells[i % 4]}\n" for i in range(40)))
    dd = load_source(str(path))
    assert data.label_names(dd) == ["a", "b", "c"]
    expected = [["a", "b"], ["b"], ["a", "c"], []]
    assert _all_rows(dd) == {i: expected[i % 4] for i in range(40)}


def test_multilabel_zero_one_columns_csv(tmp_path: Path) -> None:
    rows = [
        {"id": i, "text": f"doc {i}", "sports": i % 2, "politics": (i // 2) % 2, "tech": int(i % 3 == 0)}
        for i in range(40)
    ]
    dd = load_source(str(_write(tmp_path / "d.csv", rows)), label_column="sports, politics,tech")
    assert data.label_names(dd) == ["sports", "politics", "tech"]  # the given column order
    assert set(dd["train"].column_names) == {"id", "text", "labels"}  # 0/1 columns replaced
    cols = ["sports", "politics", "tech"]
    assert _all_rows(dd) == {r["id"]: sorted(c for c in cols if r[c]) for r in rows}


def test_multilabel_check_eval_labels_realigns() -> None:
    feature = datasets.List(ClassLabel(names=["a", "b", "c"]))
    train = Dataset.from_dict(
        {"text": ["x", "y"], "labels": [[0, 1], [2]]},
        features=Features({"text": Value("string"), "labels": feature}),
    )
    other = Dataset.from_dict(
        {"text": ["z"], "labels": [[0, 1]]},
        features=Features({"text": Value("string"), "labels": datasets.List(ClassLabel(names=["c", "a"]))}),
    )
    aligned = check_eval_labels(train, other, "other")
    assert aligned.features["labels"] == feature and aligned["labels"] == [[0, 2]]
    unseen = Dataset.from_dict(
        {"text": ["z"], "labels": [[0]]},
        features=Features({"text": Value("string"), "labels": datasets.List(ClassLabel(names=["d"]))}),
    )
    with pytest.raises(DataError, match=r"never seen in train: \['d'\]"):
        check_eval_labels(train, unseen, "other")
    single = Dataset.from_dict({"text": ["x"], "label": [0]}).cast_column("label", ClassLabel(names=["a"]))
    with pytest.raises(DataError, match="same kind of target"):
        check_eval_labels(train, single, "other")


def test_label_helpers_single_label(tmp_path: Path) -> None:
    dd = load_source(str(_write(tmp_path / "d.csv", ROWS)))
    assert not data.is_multilabel(dd) and data.label_names(dd) == ["neg", "pos"]
    with pytest.raises(DataError, match="no ClassLabel"):
        data.label_names(Dataset.from_dict({"text": ["a"]}))


# ----------------------------------------------------------------------------------------------
# bad labels and texts


def test_single_class_rejected(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": "pos"} for i in range(10)]
    msg = _error(_write(tmp_path / "d.csv", rows))
    assert "1 class ('pos')" in msg and "needs at least 2 classes" in msg and "--label_column" in msg
    rows = [{"text": f"t{i}", "label": ["a"] if i % 2 else []} for i in range(10)]
    assert "needs at least 2 classes" in _error(_write(tmp_path / "m.jsonl", rows))


def test_multilabel_mixed_lists_and_strings(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": ["a", "b"] if i % 2 else "a"} for i in range(10)]
    msg = _error(_write(tmp_path / "d.jsonl", rows))
    assert "mixes lists and single values (row 0: 'a')" in msg and 'a list such as ["a", "b"]' in msg


def test_multilabel_mixed_ints_and_strings(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": ["a"] if i % 2 else [1, 2]} for i in range(10)]
    msg = _error(_write(tmp_path / "d.jsonl", rows))
    assert "mix numbers" in msg and "strings" in msg and "use one type" in msg


def test_single_label_mixed_ints_and_strings(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": "a" if i % 2 else 1} for i in range(10)]
    msg = _error(_write(tmp_path / "d.jsonl", rows))
    assert "mixes value types" in msg and "use one type" in msg


def test_zero_one_columns_bad_values(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "a": i % 3, "b": 1} for i in range(10)]
    path = _write(tmp_path / "d.csv", rows)
    assert "column 'a' holds 2 at row 2, not 0/1" in _error(path, label_column="a,b")
    assert "no column 'c' of --label_column" in _error(path, label_column="a,c")
    assert "two or more distinct 0/1 columns" in _error(path, label_column="a,")


def test_empty_texts_dropped_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        {"id": i, "text": " \t " if i % 5 == 0 else ("" if i % 7 == 0 else f"t{i}"), "label": "ab"[i % 2]}
        for i in range(40)
    ]
    path = _write(tmp_path / "d.jsonl", rows)
    dd = load_source(str(path))
    kept = {r["id"] for r in rows if r["text"].strip()}
    assert {i for d in dd.values() for i in d["id"]} == kept
    assert f"dropped {40 - len(kept)} of 40 rows whose text is empty" in caplog.text


def test_empty_texts_per_split_and_all_empty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_text(
        "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(10))
    )
    (tmp_path / "d" / "test.csv").write_text("text,label\n,a\nx,b\n  ,b\n")  # empty cell and spaces
    dd = load_source(str(tmp_path / "d"))
    assert dd["test"]["text"] == ["x"]
    assert "(test): dropped 2 of 3 rows" in caplog.text
    (tmp_path / "d" / "test.csv").write_text("text,label\n ,a\n  ,b\n")
    msg = _error(tmp_path / "d")
    assert "(test): all 2 texts are empty" in msg and "--text_column" in msg


def test_multilabel_unseen_in_test(tmp_path: Path) -> None:
    _write(
        tmp_path / "d" / "train.jsonl", [{"text": f"t{i}", "label": [["a"], ["b"]][i % 2]} for i in range(10)]
    )
    _write(tmp_path / "d" / "test.jsonl", [{"text": "x", "label": ["a", "z"]}, {"text": "y", "label": ["b"]}])
    msg = _error(tmp_path / "d")
    assert "test has labels never seen in train: ['z']" in msg and "merge" in msg


def test_zero_one_column_unseen_in_test(tmp_path: Path) -> None:
    _write(
        tmp_path / "d" / "train.csv",
        [{"text": f"t{i}", "a": i % 2, "b": 1 - i % 2, "c": 0} for i in range(10)],
    )
    _write(tmp_path / "d" / "test.csv", [{"text": "x", "a": 1, "b": 0, "c": 1}])
    assert "test has labels never seen in train: ['c']" in _error(tmp_path / "d", label_column="a,b,c")
