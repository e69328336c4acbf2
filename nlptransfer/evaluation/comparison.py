"""Did transfer help? Compare pretrained transfer strategies with target-only baselines, fairly.

One comparison trains and scores, on the same splits:

1. a classical no-transfer baseline, TF-IDF + logistic regression (`nlptransfer.evaluation.baselines`);
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

`nlptransfer.reporting` turns the result into text and files (`format_summary`, `write_comparison`).

Noise rule (`NOISE_RULE`): a transfer method is compared with the best target-only baseline (highest mean
at that train size) by a two-sided paired t-test over the seeds (pairs share seed and training subset);
p < 0.05 is "beyond noise". With fewer than 3 seeds (`MIN_SEEDS`) no test is run and no verdict is claimed
(a t-test with 1 degree of freedom decides nothing); a difference that is the same on every seed (zero
variance) is reported as systematic, without a p-value from a degenerate test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from nlptransfer.data.splits import subsample_indices
from nlptransfer.errors import ConfigError
from nlptransfer.evaluation.statistics import mean_std, paired_p_value
from nlptransfer.evaluation.train_sizes import PerClass, checked_train_sizes, parse_train_sizes

__all__ = [
    "ALPHA",
    "DEFAULT_BASELINES",
    "EXTRA_METRICS",
    "NOISE_RULE",
    "ROW_KEYS",
    "PerClass",
    "ComparisonResult",
    "JobStore",
    "MethodFn",
    "Verdict",
    "metric_label",
    "job_key",
    "parse_train_sizes",
    "checked_train_sizes",
    "prepare_comparison",
    "run_comparison",
    "run_jobs",
]

logger = logging.getLogger("nlptransfer")

# fn(seed, train_indices) -> test metrics (classification_metrics' dict).
MethodFn = Callable[[int, list[int]], dict[str, float]]

# Target-only methods (no pretrained knowledge) when run_comparison is not told which ones are baselines.
DEFAULT_BASELINES = ("tfidf_logreg", "scratch")
ALPHA = 0.05
MIN_SEEDS = 3  # fewer paired seeds: no test (2 seeds = a t-test with 1 degree of freedom)
NOISE_RULE = (
    "each transfer method is compared with the best target-only baseline (highest mean at that train size) "
    f"by a two-sided paired t-test over the seeds (runs with the same seed share the training subset); "
    f"p < {ALPHA:g} counts as beyond noise. With fewer than {MIN_SEEDS} seeds no test is run (too few to "
    "tell transfer from noise)."
)
# Shown in tables and summaries next to the selected metric.
EXTRA_METRICS = ("f1_micro", "accuracy")
_METRIC_LABELS = {
    "f1_macro": "macro-F1",
    "f1_micro": "micro-F1",
    "accuracy": "accuracy",
    "f1_samples": "samples-F1",
}


def metric_label(metric: str) -> str:
    """The readable name of a metric key ("f1_macro" -> "macro-F1"); unknown keys as they are."""
    return _METRIC_LABELS.get(metric, metric)


# ------------------------------------------------------------------------------ training subsets


@dataclass(frozen=True)
class Verdict:
    """Did `method` beat the best target-only baseline at `train_size`?

    outcome: "helped", "no evidence", "negative", "no noise estimate" (1 seed), "too few seeds" (2 seeds:
    no test) or "no baseline".
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
    train_sizes: list[int]  # resolved numbers of examples (per class when `per_class`), ascending
    n_train: int
    baselines: list[str]
    transfer: list[str]
    per_class: bool = False  # train sizes count examples per class (--train_sizes 16/class)
    subsets: dict[tuple[int, int], list[int]] = field(default_factory=dict, repr=False)

    @property
    def methods(self) -> list[str]:
        return self.baselines + self.transfer

    @property
    def metric_names(self) -> list[str]:
        """Every metric key in the rows, in first-seen order."""
        names: list[str] = []
        for row in self.rows:
            names += [k for k in row if k not in ROW_KEYS and k not in names]
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
                if not len(self.scores(method, size)):  # not run yet (an interrupted comparison)
                    continue
                row: dict[str, Any] = {
                    "method": method,
                    "kind": self.kind(method),
                    "train_size": size,
                    "n_seeds": len(self.scores(method, size)),
                }
                for m in self.metric_names:
                    mean, std = mean_std(self.scores(method, size, m))
                    row[f"{m}_mean"], row[f"{m}_std"] = mean, std
                out.append(row)
        return out

    @cached_property
    def verdicts(self) -> list[Verdict]:
        return [_verdict(self, method, size) for size in self.train_sizes for method in self.transfer]

    @property
    def jobs_total(self) -> int:
        """Runs the whole comparison takes (method x train size x seed); fewer rows: it was interrupted."""
        return len(self.methods) * len(self.train_sizes) * len(self.seeds)

    @property
    def partial(self) -> bool:
        return len(self.rows) < self.jobs_total

    def kind(self, method: str) -> str:
        return "baseline" if method in self.baselines else "transfer"

    def size_label(self, size: int) -> str:
        if self.per_class:
            return str(PerClass(size))
        return f"{size} (all)" if size == self.n_train else str(size)

    @property
    def seeds_note(self) -> str:
        """What the spread is over: "mean ± std (sample std) over 3 seeds (1, 2, 3)" or the 1-seed caveat."""
        n = len(self.seeds)
        seeds = ", ".join(map(str, self.seeds))
        if n == 1:
            return f"1 seed ({seeds}): no noise estimate"
        if n < MIN_SEEDS:
            return f"mean ± std (sample std) over {n} seeds ({seeds}): too few for a test"
        return f"mean ± std (sample std) over {n} seeds ({seeds})"

    def paired(self, method: str, other: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The selected metric of `method` and `other` at `size` on the seeds both have (a partial
        comparison may lack some), in `seeds` order."""
        rows = [r for r in self.rows if r["train_size"] == size]
        a = {r["seed"]: r[self.metric] for r in rows if r["method"] == method}
        b = {r["seed"]: r[self.metric] for r in rows if r["method"] == other}
        common = [s for s in self.seeds if s in a and s in b]
        return np.array([a[s] for s in common], dtype=float), np.array([b[s] for s in common], dtype=float)


ROW_KEYS = ("method", "kind", "train_size", "seed")


def run_comparison(
    methods: Mapping[str, MethodFn],
    seeds: Sequence[int],
    train_sizes: Sequence[int | None],
    n_train: int,
    train_labels: Any = None,
    metric: str = "f1_macro",
    *,
    baselines: Collection[str] | None = None,
    store: JobStore | None = None,
    fingerprint: str = "",
) -> ComparisonResult:
    """Run every method on the same training subsets, for every train size and seed.

    methods: name -> `fn(seed, train_indices) -> test metrics` (classification_metrics' dict), run in this
        order (put the cheap tfidf_logreg first: a wrong `metric` then fails in seconds).
    seeds: one run per seed; the seed also draws the training subset, so runs with the same seed are paired.
    train_sizes: numbers of training examples, None = all, or all `PerClass` (see parse_train_sizes): then
        every subset holds k examples of every class (`subsample_indices(..., per_class=True)`).
    n_train, train_labels: the training split's size and labels (labels make subsets stratified).
    metric: the metric verdicts are decided on (a key of the callbacks' dicts).
    baselines: the target-only methods (no pretrained knowledge); default: those of DEFAULT_BASELINES
        ("tfidf_logreg", "scratch") present in `methods`. Every other method is a transfer method.
    store, fingerprint: see `run_jobs` (each finished job saved as it ends; a stored one is not rerun).

    `prepare_comparison` + `run_jobs`; call those two to keep the rows of an interrupted comparison.
    """
    result = prepare_comparison(
        methods, seeds, train_sizes, n_train, train_labels, metric, baselines=baselines
    )
    run_jobs(result, methods, store=store, fingerprint=fingerprint)
    return result


def prepare_comparison(
    methods: Mapping[str, MethodFn],
    seeds: Sequence[int],
    train_sizes: Sequence[int | None],
    n_train: int,
    train_labels: Any = None,
    metric: str = "f1_macro",
    *,
    baselines: Collection[str] | None = None,
) -> ComparisonResult:
    """The checks and the training subsets of `run_comparison`, nothing run: a result with no rows yet."""
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
    per_class = any(isinstance(size, PerClass) for size in train_sizes)
    if per_class and (train_labels is None or np.asarray(train_labels).ndim != 1):
        raise ConfigError("--train_sizes N/class needs single-label training data; pass total sizes instead")
    for size in train_sizes:
        if per_class:
            if not isinstance(size, PerClass):
                raise ConfigError("--train_sizes mixes sizes per class with total sizes; use one kind")
            resolved += [size.k] if size.k not in resolved else []
            continue
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
        per_class=per_class,
    )
    # All subsets up front: the same list goes to every method (fairness), and bad sizes fail before training.
    for size in resolved:
        for seed in seeds:
            result.subsets[(size, seed)] = subsample_indices(
                n_train, size, seed, train_labels, per_class=per_class, option="--train_sizes N/class"
            )
    return result


class JobStore(Protocol):
    """Where finished jobs are kept (e.g. one JSON file each in the run directory)."""

    def load(self, key: str) -> dict[str, float] | None: ...  # a job's scores, None when not stored

    def save(self, key: str, record: dict[str, Any]) -> None: ...  # record: method, train_size, seed, scores


def job_key(method: str, size: int, seed: int, indices: Sequence[int], fingerprint: str) -> str:
    """What identifies a job's result: the method, its training subset and seed, and `fingerprint` (every
    other setting and the data): the same key means the same run, any change a different key."""
    payload = json.dumps([method, int(size), int(seed), [int(i) for i in indices], fingerprint])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def run_jobs(
    result: ComparisonResult,
    methods: Mapping[str, MethodFn],
    *,
    store: JobStore | None = None,
    fingerprint: str = "",
) -> None:
    """Run every job (method x train size x seed) of a `prepare_comparison` result, appending its rows.

    With a `store`, each job's scores are saved as soon as it finishes, and a job the store already holds
    (same `job_key`: same method, subset, seed and `fingerprint`) is read back instead of rerun. After each
    job the time left is estimated from the jobs run so far (per method: their costs differ a lot). An
    exception (KeyboardInterrupt included) propagates with `result.rows` holding every finished job.
    """
    metric = result.metric
    jobs = [(size, seed, name) for size in result.train_sizes for seed in result.seeds for name in methods]
    keys = {job: job_key(job[2], job[0], job[1], result.subsets[job[:2]], fingerprint) for job in jobs}
    stored = {
        job: scores for job in jobs if store is not None and (scores := store.load(keys[job])) is not None
    }
    if stored:
        logger.info(
            "compare: %d of %d jobs already done (--resume), %d to run",
            len(stored),
            len(jobs),
            len(jobs) - len(stored),
        )
    seconds: dict[str, list[float]] = {}
    for done, job in enumerate(jobs, 1):
        size, seed, name = job
        start = time.perf_counter()
        scores = stored.get(job)
        if scores is None:
            scores = {
                k: float(v) for k, v in dict(methods[name](seed, list(result.subsets[(size, seed)]))).items()
            }
            if metric not in scores:
                raise ConfigError(
                    f"metric {metric!r} is not among the scores of method {name!r} "
                    f"({', '.join(scores) or 'none'}); choose one of those"
                )
            seconds.setdefault(name, []).append(time.perf_counter() - start)
            if store is not None:
                store.save(keys[job], {"method": name, "train_size": size, "seed": seed, "scores": scores})
        result.rows.append(
            {"method": name, "kind": result.kind(name), "train_size": size, "seed": seed}
            | {k: float(v) for k, v in scores.items()}
        )
        pending = [j[2] for j in jobs[done:] if j not in stored]
        logger.info(
            "compare [%d/%d] %s, train size %s, seed %d: %s=%.4f (%s)%s",
            done,
            len(jobs),
            name,
            result.size_label(size),
            seed,
            metric,
            scores[metric],
            "stored" if job in stored else f"{time.perf_counter() - start:.1f} s",
            _time_left(pending, seconds),
        )


def _time_left(pending: Sequence[str], seconds: Mapping[str, list[float]]) -> str:
    """ "; about 12 min left" from the mean time of each pending job's method so far (else of any job)."""
    if not pending or not seconds:
        return ""
    every = [t for ts in seconds.values() for t in ts]
    left = sum(float(np.mean(seconds.get(name) or every)) for name in pending)
    return f"; about {left:.0f} s left" if left < 90 else f"; about {left / 60:.0f} min left"


def _verdict(result: ComparisonResult, method: str, size: int) -> Verdict:
    label = metric_label(result.metric)
    if not result.baselines:
        text = f"{method}: no target-only baseline was run, so transfer cannot be judged"
        return Verdict(method, size, None, None, None, 0, "no baseline", text)
    baseline = max(result.baselines, key=lambda b: _mean_or_low(result.scores(b, size)))
    ours, theirs = result.paired(method, baseline, size)
    diffs = ours - theirs
    n = len(diffs)
    if n == 0:
        text = f"{method}: no paired run with {baseline} at this size yet, so no verdict"
        return Verdict(method, size, baseline, None, None, 0, "too few seeds", text)
    diff = float(diffs.mean())
    if n < 2:
        text = (
            f"{method}: {diff:+.3f} {label} vs {baseline} (1 seed: no noise estimate; "
            f"run {MIN_SEEDS} or more seeds to tell transfer from noise)"
        )
        return Verdict(method, size, baseline, diff, None, n, "no noise estimate", text)
    if n < MIN_SEEDS:
        text = (
            f"{method}: {diff:+.3f} {label} vs {baseline} ({n} seeds: too few for a test; run "
            f"{MIN_SEEDS} or more seeds to tell transfer from noise)"
        )
        return Verdict(method, size, baseline, diff, None, n, "too few seeds", text)
    if float(diffs.std(ddof=1)) == 0.0:  # the same difference on every seed: no spread to test against
        if diff == 0.0:
            text = f"{method}: identical to {baseline} on all {n} seeds: NO evidence that transfer helped"
            return Verdict(method, size, baseline, 0.0, None, n, "no evidence", text)
        systematic = f"the same {diff:+.3f} on all {n} seeds: systematic, zero variance"
        if diff > 0:
            text = f"{method}: {diff:+.3f} {label} over {baseline} ({systematic}): transfer helped"
            return Verdict(method, size, baseline, diff, None, n, "helped", text)
        text = f"{method}: {diff:+.3f} {label} vs {baseline} ({systematic}): NEGATIVE transfer"
        return Verdict(method, size, baseline, diff, None, n, "negative", text)
    p = paired_p_value(diffs)
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


def _mean_or_low(scores: np.ndarray) -> float:
    """The mean of `scores`, -inf when there are none (a baseline not run yet is never the best)."""
    return float(scores.mean()) if len(scores) else -math.inf
