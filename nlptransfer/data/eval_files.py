"""Test sets of the classification recipes: the training source's test split, `--eval_datasets` (each
source's test split) and `--eval_files` (every row of each file), with the run's column mapping.

An entry names a source (embedded name, local file or folder, Hub id), optionally followed by `:` and
comma-separated options that hold for that entry only:

    site_b.csv                             columns as below; --eval_files: every row
    site_b.csv:text=body,label=stars       this file's own text and label columns
    site_b.csv:split=test                  only its test split (carved as --dataset's would be)
    vader-tweets:split=all                 every row (--eval_datasets default: the test split)
    tags.csv:label=a,b,c                   0/1 label columns (a value may hold commas)

Columns: the entry's `text=` / `label=`; else `--text_column` / `--label_column` when the source has those
columns; else `text` / `label` (so an embedded set such as vader-tweets needs no option). Labels are
mapped by name onto the training labels; a label never seen in training fails in one line naming it.
`EvalSet.rows` says which rows were scored ("whole file, 1,000 rows", "test split, 200 of 1,000 rows").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datasets import Dataset, DatasetDict

from nlptransfer.data.labels import check_eval_labels
from nlptransfer.data.load import load_source, load_whole, source_columns
from nlptransfer.data.multilabel import multi_hot_columns
from nlptransfer.data.splits import subsample
from nlptransfer.errors import ConfigError

if TYPE_CHECKING:
    from nlptransfer.config import DataArguments

OPTIONS = ("text", "label", "split")
SPLITS = {"all": True, "whole": True, "test": False}


@dataclass(frozen=True)
class EvalEntry:
    """One parsed `--eval_datasets` / `--eval_files` entry; None columns: decided by `pick_column`."""

    source: str
    text_column: str | None = None
    label_column: str | None = None
    whole: bool = True


@dataclass(frozen=True)
class EvalSet:
    """A labelled test set, labels in the training order: `whole` (every row of the source) or its test split;
    `total` rows in the source."""

    name: str
    data: Dataset
    whole: bool
    total: int

    @property
    def rows(self) -> str:
        """Which rows were scored, for tables: "whole file, 1,000 rows" or "test split, 200 of 1,000 rows"."""
        n = len(self.data)
        of = "" if n == self.total else f" of {self.total:,}"
        return f"{'whole file' if self.whole else 'test split'}, {n:,}{of} rows"


def parse_eval_entry(entry: str, *, whole: bool, flag: str) -> EvalEntry:
    """`source[:key=value,...]` (keys: text, label, split=all|test) as an `EvalEntry`; `whole` is the flag's
    default for `split`. One-line ConfigError for an unknown key or split, or an empty source."""
    source, sep, tail = str(entry).rpartition(":")
    keys = [part.split("=", 1)[0].strip() for part in tail.split(",") if "=" in part]
    if not sep or not keys or "=" not in tail.split(",")[0]:  # no options: `:` belongs to the source
        source, tail = str(entry), ""
    options: dict[str, str] = {}
    key = None
    for part in tail.split(",") if tail else []:
        if "=" in part:
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in OPTIONS:
                raise ConfigError(
                    f"{flag} entry {entry!r}: unknown option {key!r}; use text=COLUMN, label=COLUMN, "
                    "split=all|test, e.g. reviews.csv:text=body,label=stars"
                )
            options[key] = value
        elif key is not None:  # `label=a,b,c`: 0/1 label columns
            options[key] += "," + part.strip()
    split = options.get("split", "all" if whole else "test").lower()
    if split not in SPLITS:
        raise ConfigError(f"{flag} entry {entry!r}: split={split!r}; use split=all or split=test")
    if not source.strip():
        raise ConfigError(f"{flag} has an empty entry {entry!r}; name a file, folder or dataset")
    for name in ("text", "label"):
        if name in options and not options[name]:
            raise ConfigError(f"{flag} entry {entry!r}: {name}= needs a column name")
    return EvalEntry(source.strip(), options.get("text"), options.get("label"), SPLITS[split])


def pick_column(columns: Sequence[str], given: str, default: str) -> str:
    """The run's column `given` if the source has it (every one of a `a,b,c` 0/1 list), else `default` if
    it has that, else `given` (loading then fails naming it and the columns found)."""
    for candidate in (given, default):
        if all(c in columns for c in (multi_hot_columns(candidate) or [candidate])):
            return candidate
    return given


def load_eval_set(
    entry: EvalEntry,
    train: Dataset | None,
    *,
    text_column: str = "text",
    label_column: str = "label",
    normalize_labels: bool = False,
    seed: int = 42,
) -> EvalSet:
    """Load one entry (columns as the module docstring says); labels aligned to `train`'s when given."""
    text, label = entry.text_column, entry.label_column
    if text is None or label is None:
        columns = source_columns(entry.source)
        text = text or pick_column(columns, text_column, "text")
        label = label or pick_column(columns, label_column, "label")
    kwargs = {"text_column": text, "label_column": label, "normalize_labels": normalize_labels}
    if entry.whole:
        data = load_whole(entry.source, **kwargs)
        total = len(data)
    else:
        splits = load_source(entry.source, seed=seed, **kwargs)
        data, total = splits["test"], sum(len(s) for s in splits.values())
    if train is not None:
        data = check_eval_labels(train, data, entry.source)  # re-encoded to the training label order
    return EvalSet(entry.source, data, entry.whole, total)


def load_test_sets(data_args: DataArguments, source: DatasetDict) -> dict[str, EvalSet]:
    """Every test set of a run, by name: `--dataset`'s test split (`source["test"]`, from `load_source`)
    first, then each `--eval_datasets` entry (test split unless `split=all`), then each `--eval_files` entry
    (every row unless `split=test`), read with the run's `--text_column`/`--label_column` (module docstring).
    An entry naming `--dataset` is skipped for its test split and refused whole (its rows were trained on);
    one listed twice is refused."""
    dataset = data_args.dataset
    total = sum(len(s) for s in source.values())
    sets = {dataset: EvalSet(dataset, source["test"], False, total)}
    entries = [(e, False, "--eval_datasets") for e in _entries(data_args.eval_datasets)]
    entries += [(e, True, "--eval_files") for e in _entries(data_args.eval_files)]
    for raw, whole, flag in entries:
        entry = parse_eval_entry(raw, whole=whole, flag=flag)
        if entry.source == dataset and not entry.whole:
            continue  # the in-domain test split is already the first test set
        if entry.source == dataset:
            raise ConfigError(
                f"{flag} {raw!r} is the training --dataset: every row of it includes the rows trained on; "
                "drop it (its test split is always scored) or pass another file"
            )
        if entry.source in sets:
            raise ConfigError(f"{entry.source!r} is listed twice in --eval_datasets/--eval_files; keep one")
        sets[entry.source] = load_eval_set(
            entry,
            source["train"],
            text_column=data_args.text_column,
            label_column=data_args.label_column,
            normalize_labels=data_args.normalize_labels,
            seed=data_args.split_seed,
        )
    return sets


def cap_test_sets(sets: dict[str, EvalSet], n: int | None, seed: int, stratify_by: str) -> dict[str, EvalSet]:
    """Each set cut to at most `n` rows by THE seeded subsample (`--max_eval_samples`); `rows` tells."""
    return {k: dataclasses.replace(s, data=subsample(s.data, n, seed, stratify_by)) for k, s in sets.items()}


def _entries(values: Sequence[str]) -> list[str]:
    """The entries of a list flag; `none` alone means none."""
    values = [str(v) for v in values]
    return [] if [v.strip().lower() for v in values] == ["none"] else values
