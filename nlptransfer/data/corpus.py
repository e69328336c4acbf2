"""The texts of a corpus for continued pretraining: training texts and held-out texts, labels never read.

    train, held_out, labelled = load_corpus("pubmed-pubtype", max_eval=500)
    train, held_out, labelled = load_corpus("task", task_dataset="pubmed-pubtype")   # the same, said explicitly

A corpus with labels (`label_column="auto"` finds a `label` column) is split exactly as the classification
recipes split it (`load_source`: same seed, stratified), so pretraining on its train texts (TAPT) never
sees the task's validation or test texts; the held-out texts are its validation split; the test split is
never used. Without labels the corpus is split the same way, as unlabelled text (DAPT).
`source="task"` (TAPT, `--corpus task`) reads `task_dataset` that way and requires its labels (they define
the split the classifier will see).
"""

from __future__ import annotations

from nlptransfer.data.load import load_source
from nlptransfer.data.splits import subsample_indices
from nlptransfer.errors import ConfigError, DataError


def load_corpus(
    source: str,
    *,
    text_column: str = "text",
    label_column: str = "auto",
    seed: int = 42,
    max_train: int | None = None,
    max_eval: int | None = None,
    task_dataset: str | None = None,
) -> tuple[list[str], list[str], bool]:
    """(train texts, held-out validation texts, labelled?) of `source` (any `load_source` source).

    `label_column`: `auto` (a `label` column if there is one), `none` (unlabelled) or a column name.
    `max_train` / `max_eval`: a seeded random set of that many texts, kept in corpus order.
    `source="task"`: the texts of `task_dataset`, split by its labels (`label` unless `label_column` names one).
    """
    kwargs = {"text_column": text_column, "seed": seed}
    if source.strip().lower() == "task":
        if not task_dataset:
            raise ConfigError("--corpus task needs --task_dataset, e.g. --task_dataset pubmed-pubtype")
        if label_column.lower() == "none":
            raise ConfigError(
                "--corpus task splits the task by its labels, as the classification recipes do; "
                "drop --label_column none (or give the label column's name)"
            )
        column = "label" if label_column.lower() == "auto" else label_column
        splits, labelled = load_source(task_dataset, label_column=column, **kwargs), True
        source = task_dataset
    elif label_column.lower() == "auto":
        try:
            splits, labelled = load_source(source, label_column="label", **kwargs), True
        except DataError as err:
            if "has no column 'label'" not in str(err) and "has no labels" not in str(err):
                raise
            splits, labelled = load_source(source, label_column=None, **kwargs), False
    else:
        column = None if label_column.lower() == "none" else label_column
        splits, labelled = load_source(source, label_column=column, **kwargs), column is not None
    train, held_out = splits["train"], splits["validation"]
    if max_train and max_train < len(train):
        train = train.select(subsample_indices(len(train), max_train, seed))
    if max_eval and max_eval < len(held_out):
        held_out = held_out.select(subsample_indices(len(held_out), max_eval, seed))
    if len(train) == 0:
        raise DataError(f"{source}: no training texts to pretrain on; add texts to its train split")
    return list(train["text"]), list(held_out["text"]), labelled
