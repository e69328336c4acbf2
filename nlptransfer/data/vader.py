"""The VADER gold standards (Hutto & Gilbert, ICWSM 2014): parsing, labels and the split protocol.

Each line of `*_GroundTruth.txt` is `id<TAB>mean_rating<TAB>text` (CRLF; the mean rating of 20 raters
on -4..+4, kept as `score`). The paper normalises compound = score / 4 and calls a text neutral when it
lies within +-0.05, *inclusive*: negative when compound < -0.05, neutral when -0.05 <= compound <= 0.05,
positive when compound > 0.05 (a score of exactly +-0.2 is neutral). This reproduces the published
3-class counts (neg/neu/pos): tweets 1195/359/2646, movies 5245/203/5157, amazon 1336/467/1905, nyt
2260/1289/1641; the exclusive band does not. The `-binary` variants drop the neutral band. Texts are
kept as published (HTML entities such as `&amp;` included), only stripped of surrounding whitespace.

Each set comes as one corpus, split by the paper's protocol (`VADER_PROTOCOL`): test is a random half
of the corpus (with an odd size the test half gets the extra row), validation is 10% of the training
half, train is the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value

from nlptransfer.assets import fetch
from nlptransfer.data.splits import SplitProtocol
from nlptransfer.errors import DataError

LABELS_3 = ["negative", "neutral", "positive"]
LABELS_2 = ["negative", "positive"]
#: |score / 4| <= NEUTRAL_BAND is neutral (inclusive, as in the VADER paper).
NEUTRAL_BAND = 0.05
#: Hutto & Gilbert 2014: test half, 10% of the rest.
VADER_PROTOCOL = SplitProtocol(0.5, 0.1)
#: domain -> (file in the `vader` asset, description); `vader-<domain>[-binary]` are embedded datasets.
VADER_DOMAINS = {
    "tweets": ("tweets_GroundTruth.txt", "4,200 tweets"),
    "movies": ("movieReviewSnippets_GroundTruth.txt", "10,605 movie-review snippets"),
    "amazon": ("amazonReviewSnippets_GroundTruth.txt", "3,708 Amazon product-review snippets"),
    "nyt": ("nytEditorialSnippets_GroundTruth.txt", "5,190 NYT editorial snippets"),
}


def vader_label(score: float, binary: bool = False) -> int | None:
    """Class id of a VADER mean rating (see the module docstring); None for neutral when binary."""
    compound = score / 4
    if compound < -NEUTRAL_BAND:
        return 0
    if compound > NEUTRAL_BAND:
        return 1 if binary else 2
    return None if binary else 1


def read_vader(path: str | Path) -> list[dict]:
    """Parse a VADER `*_GroundTruth.txt` file into rows `{id, text, score}`.

    Tolerates CRLF/LF, blank lines and tabs inside the text (only the first two tabs split).
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 at byte {err.start}; the asset looks damaged, run "
            "`python -m nlptransfer.assets fetch vader --force`"
        ) from None
    rows = []
    for lineno, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            score = float(parts[1])
            if len(parts) != 3 or not math.isfinite(score):
                raise ValueError
        except (ValueError, IndexError):
            raise DataError(
                f"{path}:{lineno} is not `id<TAB>score<TAB>text`; the asset looks damaged, run "
                "`python -m nlptransfer.assets fetch vader --force`"
            ) from None
        rows.append({"id": parts[0].strip(), "text": parts[2].strip(), "score": score})
    return rows


def load_vader(filename: str, binary: bool) -> Dataset:
    """One VADER gold-standard file as a Dataset (id, text, score, label)."""
    rows = read_vader(fetch("vader") / filename)
    names = LABELS_2 if binary else LABELS_3
    cols: dict[str, list] = {"id": [], "text": [], "score": [], "label": []}
    for row in rows:
        label = vader_label(row["score"], binary)
        if label is None:
            continue
        for key in ("id", "text", "score"):
            cols[key].append(row[key])
        cols["label"].append(label)
    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "score": Value("float64"),
            "label": ClassLabel(names=names),
        }
    )
    return Dataset.from_dict(cols, features=features)
