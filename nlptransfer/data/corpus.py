"""The texts of a corpus for continued pretraining: training texts and held-out texts, labels never read.

    train, held_out, labelled = load_corpus("pubmed-pubtype", max_eval=500)

A corpus with labels (`label_column="auto"` finds a `label` column) is split exactly as the classification
recipes split it (`load_source`: same seed, stratified), so pretraining on its train texts (TAPT) never
sees the task's validation or test texts; the held-out texts are its validation split; the test split is
never used. Without labels the corpus is split the same way, as unlabelled text (DAPT).
"""

from __future__ import annotations

from nlptransfer.data.load import load_source
from nlptransfer.data.splits import subsample_indices
from nlptransfer.errors import DataError


def load_corpus(
    source: str,
    *,
    text_column: str = "text",
    label_column: str = "auto",
    seed: int = 42,
    max_train: int | None = None,
    max_eval: int | None = None,
) -> tuple[list[str], list[str], bool]:
    """(train texts, held-out validation texts, labelled?) of `source` (any `load_source` source).

    `label_column`: `auto` (a `label` column if there is one), `none` (unlabelled) or a column name.
    `max_train` / `max_eval`: a seeded random set of that many texts, kept in corpus order.
    """
    kwargs = {"text_column": text_column, "seed": seed}
    if label_column.lower() == "auto":
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
    return list(train["text"]), list(held_out["text"]), labelled
