"""Unlabelled transfer texts for distillation (`--transfer_texts`): texts only, labels never read.

An entry names a source (embedded name, local file or folder, Hub id), optionally followed by `:` and a split
name or comma-separated options:

    vader-tweets:train            the train half of an embedded (or Hub) dataset
    unlabelled.txt                every line of a text file (a file's default: every row)
    reviews.csv:text=body         every row's `body` column (any other column, a label included, is ignored)
    reviews.csv:split=train       the train split of the file, carved as the run carves its --dataset
    vader-amazon:split=all        every row

Splits are carved with the loader's unlabelled protocol (no stratification: that would read the labels). A
transfer text that is also a text of one of the run's held-out sets (validation, test, --eval_datasets,
--eval_files) is dropped, and `max_transfer_samples` caps the rest with THE seeded subsample.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from nlptransfer.data.load import load_source, load_whole, source_columns
from nlptransfer.data.splits import subsample
from nlptransfer.errors import ConfigError, DataError

logger = logging.getLogger("nlptransfer")

SPLITS = ("train", "validation", "test", "all")
FLAG = "--transfer_texts"


@dataclass(frozen=True)
class TransferEntry:
    """One parsed `--transfer_texts` entry: the source, its text column and which rows (a split or all)."""

    source: str
    text_column: str
    split: str


def parse_transfer_entry(entry: str, text_column: str = "text") -> TransferEntry:
    """`source[:split]` or `source[:text=COL,split=S]` as a `TransferEntry`; a one-line ConfigError for an
    unknown option or split. Default split: `train` for a named dataset, `all` for a local file or folder."""
    raw = str(entry).strip()
    source, sep, tail = raw.rpartition(":")
    options: dict[str, str] = {}
    if sep and tail.strip() in SPLITS:
        options["split"] = tail.strip()
    elif sep and "=" in tail.split(",")[0]:
        for part in tail.split(","):
            key, eq, value = (s.strip() for s in part.partition("="))
            if not eq or key not in ("text", "split") or not value:
                raise ConfigError(
                    f"{FLAG} entry {raw!r}: bad option {part.strip()!r}; use SOURCE:SPLIT or "
                    "SOURCE:text=COLUMN,split=train|validation|test|all (e.g. vader-tweets:train)"
                )
            options[key] = value
    else:  # no options: a `:` belongs to the source
        source = raw
    if not source.strip():
        raise ConfigError(f"{FLAG} has an empty entry {raw!r}; name a file, folder or dataset")
    source = source.strip()
    split = options.get("split", "all" if Path(source).exists() else "train")
    if split not in SPLITS:
        raise ConfigError(f"{FLAG} entry {raw!r}: split={split!r}; use one of {', '.join(SPLITS)}")
    return TransferEntry(source, options.get("text", text_column), split)


def entries(values: Sequence[str] | None) -> list[str]:
    """The entries of the list flag; `none` alone (or nothing) means none."""
    values = [str(v) for v in values or []]
    return [] if [v.strip().lower() for v in values] in ([], ["none"]) else values


def load_transfer_texts(entry: TransferEntry, seed: int = 42) -> list[str]:
    """The texts of one entry, loaded without a label column (no label is read, none needs to exist)."""
    try:
        columns = source_columns(entry.source)  # a missing file or dataset fails here, naming it
    except DataError as err:
        raise DataError(f"{FLAG} {entry.source!r}: {err}") from err
    text = entry.text_column if entry.text_column in columns else "text"
    if text not in columns:
        raise DataError(
            f"{FLAG} {entry.source!r} has no text column {entry.text_column!r} (columns: "
            f"{', '.join(map(str, columns))}); name it with {entry.source}:text=COLUMN"
        )
    if entry.split == "all":
        data = load_whole(entry.source, text_column=text, label_column=None)
    else:
        data = load_source(entry.source, text_column=text, label_column=None, seed=seed)[entry.split]
    return list(data["text"])


def transfer_dataset(
    values: Sequence[str] | None,
    held_out: Iterable[str],
    *,
    text_column: str = "text",
    max_samples: int | None = None,
    seed: int = 42,
) -> Dataset | None:
    """Every entry's texts in one `Dataset` with a single `text` column (None when there are no entries):
    texts of `held_out` (the run's validation and test texts) dropped, then capped at `max_samples`."""
    parsed = [parse_transfer_entry(v, text_column) for v in entries(values)]
    if not parsed:
        return None
    texts = [t for e in parsed for t in load_transfer_texts(e, seed)]
    blocked = set(held_out)
    kept = [t for t in texts if t not in blocked]
    if len(kept) < len(texts):
        logger.info(
            "transfer texts: dropped %d that are held-out (validation/test) texts", len(texts) - len(kept)
        )
    if not kept:
        raise DataError(
            f"{FLAG} {' '.join(entries(values))} holds no text outside the run's validation and test sets; "
            "give other texts (e.g. vader-tweets:train)"
        )
    data = subsample(Dataset.from_dict({"text": kept}), max_samples, seed, label_column=None)
    logger.info(
        "transfer texts: %d (of %d) from %s", len(data), len(kept), ", ".join(e.source for e in parsed)
    )
    return data
