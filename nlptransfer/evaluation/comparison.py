"""Did transfer help? Compare pretrained transfer strategies with target-only baselines, fairly.

One comparison trains and scores, on the same splits:

1. a classical no-transfer baseline, TF-IDF + logistic regression (`tfidf_logreg`, scikit-learn);
2. the same architecture from random initialisation (no pretrained weights; the recipe's callback);
3. the pretrained model with each requested transfer strategy (frozen, lora, full, ...).

Each method is a callback `fn(seed, train_indices) -> metrics` (the dict of
`nlptransfer.evaluation.metrics.classification_metrics` on the test split), so this module does not know how neural
models are trained. For every train size and seed, every method gets the SAME training subset
(`nlptransfer.data.splits.subsample_indices`: stratified, seeded), and the seeds pair the runs.

    >>> methods = {
    ...     "tfidf_logreg": tfidf_logreg_method(train_texts, train_labels, test_texts, test_labels, names),
    ...     "scratch": train_scratch, "frozen": train_frozen, "lora": train_lora,
    ... }
    >>> result = run_comparison(methods, seeds=[42, 43, 44], train_sizes=parse_train_sizes("50,200,all"),
    ...                         n_train=len(train_labels), train_labels=train_labels)
    >>> print(format_summary(result))
    >>> files = write_comparison(result, output_dir)   # names relative to output_dir, for finish_output_dir

Noise rule (`NOISE_RULE`): a transfer method is compared with the best target-only baseline (highest mean
at that train size) by a two-sided paired t-test over the seeds (pairs share seed and training subset);
p < 0.05 is "beyond noise". With one seed there is no noise estimate and no verdict is claimed.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from nlptransfer.data.splits import subsample_indices
from nlptransfer.errors import ConfigError, DataError
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_bytes_atomic, write_text_atomic

__all__ = [
    "ALPHA",
    "DEFAULT_BASELINES",
    "NOISE_RULE",
    "ComparisonResult",
    "MethodFn",
    "Verdict",
    "format_summary",
    "parse_train_sizes",
    "run_comparison",
    "tfidf_logreg",
    "tfidf_logreg_method",
    "write_comparison",
]

logger = logging.getLogger("nlptransfer")

# fn(seed, train_indices) -> test metrics (classification_metrics' dict).
MethodFn = Callable[[int, list[int]], dict[str, float]]

# Target-only methods (no pretrained knowledge) when run_comparison is not told which ones are baselines.
DEFAULT_BASELINES = ("tfidf_logreg", "scratch")
ALPHA = 0.05
NOISE_RULE = (
    "each transfer method is compared with the best target-only baseline (highest mean at that train size) "
    f"by a two-sided paired t-test over the seeds (runs with the same seed share the training subset); "
    f"p < {ALPHA:g} counts as beyond noise. With 1 seed there is no noise estimate."
)
# Shown in tables and summaries next to the selected metric.
EXTRA_METRICS = ("f1_micro", "accuracy")
_METRIC_LABELS = {
    "f1_macro": "macro-F1",
    "f1_micro": "micro-F1",
    "accuracy": "accuracy",
    "f1_samples": "samples-F1",
}


def _label(metric: str) -> str:
    return _METRIC_LABELS.get(metric, metric)


# ------------------------------------------------------------------------------------ the baseline


def tfidf_logreg(
    train_texts: Sequence[str],
    train_labels: Any,
    test_texts: Sequence[str],
    *,
    seed: int,
    multilabel: bool = False,
    label_count: int,
    class_weight: str | None = None,
) -> np.ndarray:
    """TF-IDF (word 1-2 grams, sublinear tf) + logistic regression; returns predictions for `test_texts`.

    Single-label: `train_labels` are class ids in 0..label_count-1; returns a 1-D array of ids (classes
    absent from the training subset are never predicted). Multilabel: a (n, label_count) 0/1 matrix; one
    logistic regression per label (one-vs-rest), returns a 0/1 matrix of the same width. `class_weight`:
    None or "balanced" (pass "balanced" when the neural methods use a class-weighted loss).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

    if class_weight not in (None, "balanced"):
        raise ConfigError(f"class_weight={class_weight!r} is not supported; use None or 'balanced'")
    if label_count < 1:
        raise ConfigError(f"label_count={label_count} must be the number of label names (at least 1)")
    labels = np.asarray(train_labels)
    if len(labels) != len(train_texts):
        raise DataError(f"{len(train_texts)} training texts but {len(labels)} labels: they must pair up")
    if len(train_texts) == 0 or len(test_texts) == 0:
        raise DataError("tfidf_logreg needs at least one training and one test text; got an empty split")

    logreg = LogisticRegression(max_iter=1000, class_weight=class_weight, random_state=seed)
    if multilabel:
        if labels.ndim != 2 or labels.shape[1] != label_count:
            raise DataError(
                f"multilabel labels must be a 0/1 matrix of shape (n, {label_count}), got {labels.shape}"
            )
        labels = np.rint(labels).astype(np.int64)
        constant = [i for i in range(label_count) if len(np.unique(labels[:, i])) < 2]
        if constant:
            # One-vs-rest then predicts the constant value for that label: expected on small subsets.
            logger.info(
                "tfidf_logreg: label column(s) %s are constant in the %d training examples; "
                "those labels are predicted as that constant",
                constant,
                len(labels),
            )
        classifier: Any = OneVsRestClassifier(logreg)
    else:
        if labels.ndim != 1:
            raise DataError(
                f"single-label labels must be 1-D class ids, got shape {labels.shape}; pass multilabel=True "
                "for a 0/1 label matrix"
            )
        labels = labels.astype(np.int64)
        bad = labels[(labels < 0) | (labels >= label_count)]
        if bad.size:
            raise DataError(
                f"training label id {bad[0]} is outside 0..{label_count - 1} for {label_count} labels"
            )
        present = np.unique(labels)
        if len(present) < 2:
            raise DataError(
                f"the {len(labels)} training examples all have label id {present[0]}: TF-IDF + logistic "
                "regression needs at least 2 classes; use a larger --train_sizes value or check the label column"
            )
        classifier = logreg

    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("logreg", classifier),
        ]
    )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
            pipeline.fit(list(train_texts), labels)
    except ValueError as err:
        if "empty vocabulary" in str(err):
            raise DataError(
                "the training texts contain no words TF-IDF can use (empty vocabulary): check the text column"
            ) from err
        raise
    return np.asarray(pipeline.predict(list(test_texts))).astype(np.int64)


def tfidf_logreg_method(
    train_texts: Sequence[str],
    train_labels: Any,
    test_texts: Sequence[str],
    test_labels: Any,
    label_names: Sequence[str],
    *,
    multilabel: bool = False,
    class_weight: str | None = None,
) -> MethodFn:
    """A `run_comparison` callback: `tfidf_logreg` on the training subset, scored by classification_metrics."""
    from nlptransfer.evaluation.metrics import classification_metrics

    texts = list(train_texts)
    labels = np.asarray(train_labels)

    def fn(seed: int, indices: list[int]) -> dict[str, float]:
        preds = tfidf_logreg(
            [texts[i] for i in indices],
            labels[indices],
            test_texts,
            seed=seed,
            multilabel=multilabel,
            label_count=len(label_names),
            class_weight=class_weight,
        )
        return classification_metrics(preds, test_labels, label_names, multilabel)

    return fn


# ------------------------------------------------------------------------------ training subsets


def parse_train_sizes(text: str | Sequence[str | int | None]) -> list[int | None]:
    """Parse "50,200,1000,all" into [50, 200, 1000, None] (None = all), ascending, "all" last.

    Also takes a list (e.g. from a YAML config). Junk, zero, negative and repeated sizes raise ConfigError.
    """
    example = "pass comma-separated positive integers and/or 'all' to --train_sizes, e.g. 50,200,1000,all"
    parts = text.split(",") if isinstance(text, str) else list(text)
    if not [p for p in parts if str(p).strip()]:
        raise ConfigError(f"--train_sizes is empty; {example}")
    sizes: list[int | None] = []
    for part in parts:
        token = "all" if part is None else str(part).strip()
        if token.lower() == "all":
            size: int | None = None
        elif re.fullmatch(r"[+-]?\d+", token):
            size = int(token)
            if size <= 0:
                raise ConfigError(f"--train_sizes: {size} is not a positive number of examples; {example}")
        else:
            raise ConfigError(f"--train_sizes: {token!r} is not a whole number or 'all'; {example}")
        if size in sizes:
            raise ConfigError(f"--train_sizes lists {token!r} more than once; give each size once")
        sizes.append(size)
    return sorted(sizes, key=lambda s: math.inf if s is None else s)


# -------------------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Verdict:
    """Did `method` beat the best target-only baseline at `train_size`?

    outcome: "helped", "no evidence", "negative", "no noise estimate" (1 seed) or "no baseline".
    difference: mean over seeds of (method - baseline) on the selected metric.
    """

    method: str
    train_size: int
    baseline: str | None
    difference: float | None
    p_value: float | None
    n_seeds: int
    outcome: str
    text: str


@dataclass
class ComparisonResult:
    """Per-run rows (method, kind, train_size, seed, every metric) and what the comparison concluded."""

    rows: list[dict[str, Any]]
    metric: str
    seeds: list[int]
    train_sizes: list[int]  # resolved numbers of examples, ascending
    n_train: int
    baselines: list[str]
    transfer: list[str]
    subsets: dict[tuple[int, int], list[int]] = field(default_factory=dict, repr=False)

    @property
    def methods(self) -> list[str]:
        return self.baselines + self.transfer

    @property
    def metric_names(self) -> list[str]:
        """Every metric key in the rows, in first-seen order."""
        names: list[str] = []
        for row in self.rows:
            names += [k for k in row if k not in _ROW_KEYS and k not in names]
        return names

    @property
    def shown_metrics(self) -> list[str]:
        """The selected metric, then micro-F1 and accuracy when the methods report them."""
        return [self.metric] + [m for m in EXTRA_METRICS if m != self.metric and m in self.metric_names]

    def scores(self, method: str, train_size: int, metric: str | None = None) -> np.ndarray:
        """`metric` (default: the selected one) for each seed, in `seeds` order."""
        metric = metric or self.metric
        by_seed = {
            r["seed"]: r[metric] for r in self.rows if r["method"] == method and r["train_size"] == train_size
        }
        return np.array([by_seed[s] for s in self.seeds if s in by_seed], dtype=float)

    @cached_property
    def summary(self) -> list[dict[str, Any]]:
        """One row per method and train size: n_seeds, <metric>_mean, <metric>_std for every metric."""
        out = []
        for size in self.train_sizes:
            for method in self.methods:
                row: dict[str, Any] = {
                    "method": method,
                    "kind": self.kind(method),
                    "train_size": size,
                    "n_seeds": len(self.scores(method, size)),
                }
                for m in self.metric_names:
                    mean, std = _mean_std(self.scores(method, size, m))
                    row[f"{m}_mean"], row[f"{m}_std"] = mean, std
                out.append(row)
        return out

    @cached_property
    def verdicts(self) -> list[Verdict]:
        return [_verdict(self, method, size) for size in self.train_sizes for method in self.transfer]

    def kind(self, method: str) -> str:
        return "baseline" if method in self.baselines else "transfer"

    def size_label(self, size: int) -> str:
        return f"{size} (all)" if size == self.n_train else str(size)


_ROW_KEYS = ("method", "kind", "train_size", "seed")


def run_comparison(
    methods: Mapping[str, MethodFn],
    seeds: Sequence[int],
    train_sizes: Sequence[int | None],
    n_train: int,
    train_labels: Any = None,
    metric: str = "f1_macro",
    *,
    baselines: Collection[str] | None = None,
) -> ComparisonResult:
    """Run every method on the same training subsets, for every train size and seed.

    methods: name -> `fn(seed, train_indices) -> test metrics` (classification_metrics' dict), run in this
        order (put the cheap tfidf_logreg first: a wrong `metric` then fails in seconds).
    seeds: one run per seed; the seed also draws the training subset, so runs with the same seed are paired.
    train_sizes: numbers of training examples, None = all (see parse_train_sizes).
    n_train, train_labels: the training split's size and labels (labels make subsets stratified).
    metric: the metric verdicts are decided on (a key of the callbacks' dicts).
    baselines: the target-only methods (no pretrained knowledge); default: those of DEFAULT_BASELINES
        ("tfidf_logreg", "scratch") present in `methods`. Every other method is a transfer method.
    """
    if not methods:
        raise ConfigError("run_comparison needs at least one method to run")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("--seeds is empty: give at least one seed (3 or more for a noise estimate)")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(
            f"seeds {seeds} repeat a seed: repeated runs would not be independent; give distinct seeds"
        )
    if baselines is None:
        baselines = [m for m in methods if m in DEFAULT_BASELINES]
    unknown = [b for b in baselines if b not in methods]
    if unknown:
        raise ConfigError(f"baseline(s) {unknown} are not among the methods {list(methods)}")
    if not train_sizes:
        raise ConfigError("no train sizes given; pass e.g. --train_sizes all")

    resolved: list[int] = []
    for size in train_sizes:
        n = n_train if size is None else int(size)
        if n > n_train or n <= 0:
            subsample_indices(n_train, n, 0)  # raises the one-line error
        if n in resolved:
            logger.warning(
                "train size %d appears twice (the training split has %d examples, so 'all' = %d); running it once",
                n,
                n_train,
                n_train,
            )
            continue
        resolved.append(n)
    resolved.sort()

    result = ComparisonResult(
        rows=[],
        metric=metric,
        seeds=seeds,
        train_sizes=resolved,
        n_train=n_train,
        baselines=[m for m in methods if m in baselines],
        transfer=[m for m in methods if m not in baselines],
    )
    # All subsets up front: the same list goes to every method (fairness), and bad sizes fail before training.
    for size in resolved:
        for seed in seeds:
            result.subsets[(size, seed)] = subsample_indices(n_train, size, seed, train_labels)

    total, done = len(resolved) * len(seeds) * len(methods), 0
    for size in resolved:
        for seed in seeds:
            indices = result.subsets[(size, seed)]
            for name, fn in methods.items():
                start = time.perf_counter()
                scores = dict(fn(seed, list(indices)))
                done += 1
                if metric not in scores:
                    raise ConfigError(
                        f"metric {metric!r} is not among the scores of method {name!r} "
                        f"({', '.join(scores) or 'none'}); choose one of those"
                    )
                result.rows.append(
                    {"method": name, "kind": result.kind(name), "train_size": size, "seed": seed}
                    | {k: float(v) for k, v in scores.items()}
                )
                logger.info(
                    "compare [%d/%d] %s, %d examples, seed %d: %s=%.4f (%.1f s)",
                    done,
                    total,
                    name,
                    size,
                    seed,
                    metric,
                    scores[metric],
                    time.perf_counter() - start,
                )
    return result


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    if len(values) == 0:
        return math.nan, math.nan
    # Sample std (ddof=1); a single seed has no spread to estimate, reported as 0.
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def _paired_p_value(diffs: np.ndarray) -> float:
    """Two-sided paired t-test of mean(diffs) == 0 (needs >= 2 pairs)."""
    from scipy import stats

    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    if sd == 0.0:  # identical differences: no spread, so any non-zero difference is systematic
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(len(diffs)))
    return float(2 * stats.t.sf(abs(t), df=len(diffs) - 1))


def _verdict(result: ComparisonResult, method: str, size: int) -> Verdict:
    label = _label(result.metric)
    if not result.baselines:
        text = f"{method}: no target-only baseline was run, so transfer cannot be judged"
        return Verdict(method, size, None, None, None, 0, "no baseline", text)
    baseline = max(result.baselines, key=lambda b: _mean_std(result.scores(b, size))[0])
    ours, theirs = result.scores(method, size), result.scores(baseline, size)
    diffs = ours - theirs
    n, diff = len(diffs), float(diffs.mean())
    if n < 2:
        text = (
            f"{method}: {diff:+.3f} {label} vs {baseline} (1 seed: no noise estimate; "
            "run 3 or more seeds to tell transfer from noise)"
        )
        return Verdict(method, size, baseline, diff, None, n, "no noise estimate", text)
    p = _paired_p_value(diffs)
    evidence = f"paired t-test {'p<0.001' if p < 0.001 else f'p={p:.3f}'}, {n} seeds"
    if p < ALPHA and diff > 0:
        outcome, text = (
            "helped",
            f"{method}: {diff:+.3f} {label} over {baseline} ({evidence}): beyond noise, transfer helped",
        )
    elif p < ALPHA:
        outcome, text = (
            "negative",
            f"{method}: {diff:+.3f} {label} vs {baseline} ({evidence}): below the baseline beyond noise, "
            "NEGATIVE transfer",
        )
    else:
        outcome, text = (
            "no evidence",
            f"{method}: {diff:+.3f} {label} vs {baseline} ({evidence}): within noise, "
            "NO evidence that transfer helped",
        )
    return Verdict(method, size, baseline, diff, p, n, outcome, text)


# ------------------------------------------------------------------------------------ reporting


def _table_rows(result: ComparisonResult) -> list[dict[str, str]]:
    rows = []
    for s in result.summary:
        row = {
            "method": s["method"],
            "kind": s["kind"],
            "train size": result.size_label(s["train_size"]),
            "seeds": str(s["n_seeds"]),
        }
        for m in result.shown_metrics:
            row[_label(m)] = f"{s[f'{m}_mean']:.4f} ± {s[f'{m}_std']:.4f}"
        rows.append(row)
    return rows


def _table(result: ComparisonResult) -> str:
    columns = ["method", "kind", "train size", "seeds"] + [_label(m) for m in result.shown_metrics]
    return markdown_table(_table_rows(result), columns)


def _seeds_note(result: ComparisonResult) -> str:
    n = len(result.seeds)
    seeds = ", ".join(map(str, result.seeds))
    if n == 1:
        return f"1 seed ({seeds}): no noise estimate"
    return f"mean ± std (sample std) over {n} seeds ({seeds})"


def _bottom_line(result: ComparisonResult, size: int) -> str:
    verdicts = [v for v in result.verdicts if v.train_size == size]
    if not verdicts:
        return "No transfer method was run: nothing to judge."
    at = f"at {result.size_label(size)} training examples"
    helped = [v.method for v in verdicts if v.outcome == "helped"]
    negative = [v.method for v in verdicts if v.outcome == "negative"]
    if all(v.outcome == "no noise estimate" for v in verdicts):
        return f"Bottom line {at}: 1 seed, so no verdict; rerun with 3 or more seeds."
    if all(v.outcome == "no baseline" for v in verdicts):
        return f"Bottom line {at}: no target-only baseline, so no verdict."
    if helped:
        line = f"Bottom line {at}: transfer helped beyond noise with {', '.join(helped)}."
    else:
        line = f"Bottom line {at}: NO transfer strategy beat the best target-only baseline beyond noise."
    if negative:
        line += f" NEGATIVE transfer (worse than the baseline beyond noise): {', '.join(negative)}."
    return line


def _verdict_lines(result: ComparisonResult) -> list[str]:
    lines = []
    for size in reversed(result.train_sizes):
        verdicts = [v for v in result.verdicts if v.train_size == size]
        if not verdicts:
            continue
        lines.append(f"At {result.size_label(size)} training examples:")
        lines += [f"  {v.text}" for v in verdicts]
    return lines


def format_summary(result: ComparisonResult) -> str:
    """The aggregated table, the noise rule, a verdict per transfer method and size, and a bottom line."""
    lines = [
        f"Did transfer help? {_label(result.metric)} on the test split, {_seeds_note(result)}",
        "",
        _table(result),
        "",
        f"Noise rule: {NOISE_RULE}",
        "",
        *_verdict_lines(result),
        "",
        _bottom_line(result, result.train_sizes[-1]),
    ]
    return "\n".join(lines)


def _csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), restval="", extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_comparison(result: ComparisonResult, output_dir: str | Path) -> list[str]:
    """Write the comparison files into `output_dir`; returns their names relative to it.

    comparison.csv: one row per method x train size x seed, every metric.
    comparison_summary.csv: one row per method x train size, mean and std of every metric.
    comparison.md: settings, noise rule, verdicts and the aggregated table.
    comparison.png: bars (mean ± std, seeds as dots) per method at the largest train size.
    With more than one train size: data_efficiency.csv and data_efficiency.png (score vs labelled examples).
    """
    out = Path(output_dir)
    metrics = result.metric_names
    write_text_atomic(out / "comparison.csv", _csv(result.rows, list(_ROW_KEYS) + metrics))
    summary_columns = ["method", "kind", "train_size", "n_seeds"] + [
        f"{m}_{stat}" for m in metrics for stat in ("mean", "std")
    ]
    write_text_atomic(out / "comparison_summary.csv", _csv(result.summary, summary_columns))
    files = ["comparison.csv", "comparison_summary.csv", "comparison.md", "comparison.png"]
    _write_figure(out / "comparison.png", _bar_chart(result))
    if len(result.train_sizes) > 1:
        m = result.metric
        curve = [
            {
                "method": s["method"],
                "kind": s["kind"],
                "train_size": s["train_size"],
                "n_seeds": s["n_seeds"],
                f"{m}_mean": s[f"{m}_mean"],
                f"{m}_std": s[f"{m}_std"],
            }
            for s in sorted(
                result.summary, key=lambda s: (result.methods.index(s["method"]), s["train_size"])
            )
        ]
        write_text_atomic(
            out / "data_efficiency.csv",
            _csv(curve, ["method", "kind", "train_size", "n_seeds", f"{m}_mean", f"{m}_std"]),
        )
        _write_figure(out / "data_efficiency.png", _curve_chart(result))
        files += ["data_efficiency.csv", "data_efficiency.png"]
    write_text_atomic(out / "comparison.md", _markdown(result, files))
    return files


def _markdown(result: ComparisonResult, files: list[str]) -> str:
    sizes = ", ".join(result.size_label(s) for s in result.train_sizes)
    lines = [
        "# Did transfer help?",
        "",
        f"- Metric for verdicts: {_label(result.metric)} (`{result.metric}`) on the test split",
        f"- Seeds: {_seeds_note(result)}",
        f"- Train sizes: {sizes} of {result.n_train} training examples "
        "(stratified, seeded subsets; every method gets the same subset for a given size and seed)",
        f"- Target-only baselines: {', '.join(result.baselines) or 'none'}",
        f"- Transfer methods: {', '.join(result.transfer) or 'none'}",
        f"- Noise rule: {NOISE_RULE}",
        "",
        "## Verdicts",
        "",
        _bottom_line(result, result.train_sizes[-1]),
        "",
    ]
    for size in reversed(result.train_sizes):
        verdicts = [v for v in result.verdicts if v.train_size == size]
        if verdicts:
            lines += [f"At {result.size_label(size)} training examples:", ""]
            lines += [f"- {v.text}" for v in verdicts] + [""]
    lines += ["## Results (mean ± std)", "", _table(result), "", "## Files", ""]
    lines += [f"- `{f}`" for f in files]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ plots

_BASELINE_COLOR = "#8c8c8c"


def _colors(result: ComparisonResult) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colors: dict[str, Any] = {}
    for i, m in enumerate(result.baselines):
        colors[m] = ["#4d4d4d", "#a6a6a6", "#7a7a7a", "#bfbfbf"][i % 4]
    for i, m in enumerate(result.transfer):
        colors[m] = cmap(i % 10)
    return colors


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # An explicit Agg canvas, no pyplot: no global backend switch, no GUI, safe in any process.
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _bar_chart(result: ComparisonResult):
    size = result.train_sizes[-1]
    methods = result.methods
    fig = _new_figure(max(4.0, 1.1 * len(methods) + 2), 4.0)
    ax = fig.add_subplot()
    colors = _colors(result)
    x = np.arange(len(methods))
    for i, m in enumerate(methods):
        scores = result.scores(m, size)
        mean, std = _mean_std(scores)
        ax.bar(
            i,
            mean,
            yerr=std if len(scores) > 1 else None,
            capsize=5,
            color=colors[m],
            hatch="//" if m in result.baselines else None,
            edgecolor="black",
            linewidth=0.6,
        )
        ax.scatter(np.full(len(scores), i), scores, color="black", s=12, zorder=3)
    if result.baselines:
        best = max(_mean_std(result.scores(b, size))[0] for b in result.baselines)
        ax.axhline(best, color="black", linestyle="--", linewidth=0.8, label="best target-only baseline")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(
        x, methods, rotation=20 if len(methods) > 4 else 0, ha="right" if len(methods) > 4 else "center"
    )
    ax.set_ylabel(f"{_label(result.metric)} (test)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{result.size_label(size)} training examples; {_seeds_note(result)}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _curve_chart(result: ComparisonResult):
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    colors = _colors(result)
    sizes = np.array(result.train_sizes, dtype=float)
    for m in result.methods:
        stats = np.array([_mean_std(result.scores(m, s)) for s in result.train_sizes])
        mean, std = stats[:, 0], stats[:, 1]
        style = "--" if m in result.baselines else "-"
        ax.plot(sizes, mean, style, marker="o", color=colors[m], label=m)
        ax.fill_between(sizes, mean - std, mean + std, color=colors[m], alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel(f"{_label(result.metric)} (test)")
    ax.set_title(f"Data efficiency; {_seeds_note(result)}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _write_figure(path: Path, fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())
