"""Self-training on an unlabelled target domain: teachers, confident class-balanced pseudo-labels, options.

`python -m nlptransfer.recipes.domain_adaptation --method self_training` (the loop is
`adaptation.self_train`): a teacher labels the unlabelled target texts, the confident pseudo-labels of
each class (`select_pseudo_labels`: `--pseudo_threshold` and/or `--pseudo_top_k`, the same number per
class, or with `--pseudo_balance proportional` the teacher's own class proportions) join the labelled
source, and the model retrains from its pretrained weights; the retrained model labels the target again for
the next of `--self_training_rounds` rounds. `--align dann|coral|mmd` trains
every round with that alignment as well (the unlabelled target rows in every batch).

Teachers (`--teacher`), asked only for probabilities of the target texts, never for their labels:
- the source-trained model (the default, `--teacher source`);
- any trained classifier run directory (`PredictorTeacher`, loaded with `predictor.load_predictor`); its
  labels must be the source's (in any order);
- `lexicon` (`LexiconTeacher`): the VADER rule-based scorer (Hutto & Gilbert 2014) of the embedded
  `vaderSentiment` package (the pinned sdist, asset `vader-lexicon`): the package's own
  `SentimentIntensityAnalyzer` with its lexicon files, and its documented thresholds: compound >= 0.05
  positive, <= -0.05 negative, else neutral. Only for sentiment label sets (negative/neutral/positive or
  negative/positive).

    from nlptransfer.self_training import LexiconTeacher, select_pseudo_labels
    teacher = LexiconTeacher(["negative", "neutral", "positive"])
    rows, labels = select_pseudo_labels(teacher.probabilities(texts), threshold=0.9)
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nlptransfer import assets
from nlptransfer.errors import ConfigError, DataError, ModelError
from nlptransfer.inference import probabilities

logger = logging.getLogger("nlptransfer")

SELF_TRAINING = "self_training"
#: The alignment each self-training round may train with (`--align`).
ALIGNS = ("none", "dann", "coral", "mmd")
#: How `select_pseudo_labels` shares the pseudo-labels between classes (`--pseudo_balance`).
BALANCES = ("equal", "proportional")
SOURCE_TEACHER = "source"
LEXICON = "lexicon"
#: vaderSentiment's documented cut-offs on the compound score (README, "About the Scoring").
LEXICON_THRESHOLD = 0.05
LEXICON_LABELS = ({"negative", "neutral", "positive"}, {"negative", "positive"})


def check_options(
    threshold: float | None,
    top_k: int | None,
    rounds: int,
    align: str,
    balance: str = "equal",
    *,
    needs_rule: bool = True,
) -> None:
    """One ConfigError line per bad self-training option; `needs_rule=False` (self_training not run) only
    checks the ranges of the options given, not that a threshold or top-k is given."""
    if needs_rule and threshold is None and top_k is None:
        raise ConfigError(
            "self_training needs --pseudo_threshold (e.g. 0.9) or --pseudo_top_k (e.g. 200) to pick "
            "confident pseudo-labels"
        )
    if threshold is not None and not 0 < threshold <= 1:
        raise ConfigError(
            f"pseudo_threshold={threshold} is outside (0, 1]; it is a teacher probability, e.g. 0.9"
        )
    if top_k is not None and top_k < 1:
        raise ConfigError(f"pseudo_top_k={top_k} must be >= 1 (pseudo-labels per class, e.g. 200)")
    if rounds < 1:
        raise ConfigError(
            f"self_training_rounds={rounds} must be >= 1 (each round pseudo-labels and retrains)"
        )
    if align not in ALIGNS:
        raise ConfigError(f"unknown align {align!r}; choose one of {', '.join(ALIGNS)}")
    if balance not in BALANCES:
        raise ConfigError(f"unknown pseudo_balance {balance!r}; choose one of {', '.join(BALANCES)}")


def select_pseudo_labels(
    probs: np.ndarray, *, threshold: float | None = None, top_k: int | None = None, balance: str = "equal"
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): confident pseudo-labels from teacher probabilities [n, k].

    A row is a candidate of its most probable class when that probability is >= `threshold` (any, when
    None) and above every other class's: a row whose highest probability is tied with another class's is
    never a candidate (a tie is no label, e.g. the lexicon's uniform rows in the binary neutral band, even
    at threshold 0.5). Each class then contributes its most confident candidates:
    - `balance="equal"` (class-balanced): the same number for every class that has any, the smallest
      candidate count, at most `top_k`;
    - `balance="proportional"`: the teacher's own class proportions among the candidates: every
      candidate, or with `top_k` the same fraction of every class so that the total is at most
      `top_k` x (classes with candidates). For a teacher that is better than the source model on the
      target (a lexicon on tweets), equal counts throw most of its labels away and skew the class prior.
    Rows come back in ascending order."""
    if balance not in BALANCES:
        raise ConfigError(f"unknown pseudo_balance {balance!r}; choose one of {', '.join(BALANCES)}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise DataError(f"teacher probabilities must be [n, classes >= 2], got shape {probs.shape}")
    pred, conf = probs.argmax(1), probs.max(1)
    ok = conf > np.sort(probs, axis=1)[:, -2]  # a tie for the top is no label
    if threshold is not None:
        ok &= conf >= threshold
    per_class = {}
    for c in range(probs.shape[1]):
        rows = np.flatnonzero((pred == c) & ok)
        per_class[c] = rows[np.argsort(-conf[rows], kind="stable")]
    counts = [len(r) for r in per_class.values() if len(r)]
    if not counts:
        logger.warning("no target text passed the pseudo-label threshold %s: nothing added", threshold)
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    missing = [c for c, r in per_class.items() if not len(r)]
    if missing:
        logger.warning("pseudo-labels: no confident target text for class id(s) %s", missing)
    if balance == "equal":
        take = min(counts) if top_k is None else min(min(counts), top_k)
        takes = dict.fromkeys(per_class, take)
    else:
        fraction = 1.0 if top_k is None else min(1.0, top_k * len(counts) / sum(counts))
        takes = {c: int(np.floor(fraction * len(r))) for c, r in per_class.items()}
    rows = np.sort(np.concatenate([r[: takes[c]] for c, r in per_class.items()]))
    return rows, pred[rows]


# ----------------------------------------------------------------------------------------------
# teachers


class PredictorTeacher:
    """A trained classifier run directory (`predictor.load_predictor`) as a teacher."""

    def __init__(self, path: str, label_names: Sequence[str], batch_size: int = 64):
        from nlptransfer.predictor import load_predictor

        self.name = str(path)
        if not Path(path).is_dir():
            raise ConfigError(
                f"--teacher {path!r} is neither {SOURCE_TEACHER!r}, {LEXICON!r} nor a directory; pass a "
                "trained classifier's run directory"
            )
        try:
            self.predictor = load_predictor(path)
        except ModelError as err:
            raise ModelError(f"--teacher: {err}") from None
        self.batch_size = batch_size
        theirs = list(self.predictor.labels)
        if self.predictor.multilabel or set(theirs) != set(label_names):
            raise DataError(
                f"teacher {path} predicts labels {theirs}"
                f"{' (multi-label)' if self.predictor.multilabel else ''} but the source has "
                f"{list(label_names)}; pass a teacher trained on the same labels"
            )
        self.order = [theirs.index(n) for n in label_names]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        logits = np.asarray(self.predictor.logits(list(texts), self.batch_size))
        return probabilities(logits, False)[:, self.order]


@functools.lru_cache(maxsize=1)
def vader_analyzer():
    """The embedded vaderSentiment package's own `SentimentIntensityAnalyzer` (its module and lexicon
    files from the pinned sdist, asset `vader-lexicon`; the module reads the lexicons beside itself)."""
    folder = assets.fetch("vader-lexicon")
    spec = importlib.util.spec_from_file_location("nlptransfer_vader_sentiment", folder / "vaderSentiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SentimentIntensityAnalyzer()


def check_lexicon_labels(label_names: Sequence[str]) -> None:
    if {n.lower() for n in label_names} not in LEXICON_LABELS or len(set(label_names)) != len(label_names):
        raise ConfigError(
            f"--teacher lexicon scores sentiment, but the labels are {list(label_names)}; it needs "
            "negative/neutral/positive or negative/positive (pass --teacher <model dir> instead)"
        )


class LexiconTeacher:
    """VADER's rule-based scorer as a teacher (see the module docstring).

    Probabilities over k labels: the lexicon's class j of the compound score c (its confidence conf = |c|
    for positive/negative, 1 - |c| for neutral) gets p_j = 1/k + (1 - 1/k) * conf and every other class
    (1 - conf) / k: rows sum to 1, the argmax is always j, and p_j grows with conf. With two labels the
    neutral band gets 1/k each (the lexicon abstains: a tie, never a pseudo-label). With three labels
    p_j >= T means |c| >= (T - 1/3) * 1.5 for positive/negative (T = 0.67 keeps |c| >= ~0.5); a neutral
    text (|c| < 0.05) gets p > 0.96."""

    name = LEXICON

    def __init__(self, label_names: Sequence[str]):
        check_lexicon_labels(label_names)
        self.labels = [n.lower() for n in label_names]
        self.analyzer = vader_analyzer()

    def compound(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        c = self.compound(texts)
        k = len(self.labels)
        out = np.zeros((len(c), k))
        pos, neg = self.labels.index("positive"), self.labels.index("negative")
        for i, value in enumerate(c):
            if value >= LEXICON_THRESHOLD:
                j, conf = pos, abs(value)
            elif value <= -LEXICON_THRESHOLD:
                j, conf = neg, abs(value)
            elif "neutral" in self.labels:
                j, conf = self.labels.index("neutral"), 1.0 - abs(value)
            else:
                out[i] = 1.0 / k
                continue
            out[i] = (1.0 - conf) / k
            out[i, j] = 1.0 / k + (1.0 - 1.0 / k) * conf
        return out


def load_teacher(teacher: str | None, label_names: Sequence[str], batch_size: int = 64):
    """None for the source-trained model, a `LexiconTeacher` for "lexicon", else a `PredictorTeacher`."""
    if teacher in (None, "", SOURCE_TEACHER):
        return None
    if teacher == LEXICON:
        return LexiconTeacher(label_names)
    return PredictorTeacher(teacher, label_names, batch_size)
