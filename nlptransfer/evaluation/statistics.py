"""Statistics over repeated runs: mean and sample std, the paired t-test, Spearman's rank correlation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["mean_std", "paired_p_value", "spearman"]


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """(mean, sample std with ddof=1); a single value has no spread to estimate, reported as std 0.

    Empty input: (nan, nan).
    """
    if len(values) == 0:
        return math.nan, math.nan
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std


def paired_p_value(diffs: np.ndarray) -> float:
    """Two-sided paired t-test of mean(diffs) == 0 (needs >= 2 pairs)."""
    from scipy import stats

    mean, sd = float(diffs.mean()), float(diffs.std(ddof=1))
    if sd == 0.0:  # identical differences: no spread, so any non-zero difference is systematic
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (sd / math.sqrt(len(diffs)))
    return float(2 * stats.t.sf(abs(t), df=len(diffs) - 1))


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation of `a` and `b` (scipy), or None when it is undefined.

    Undefined: fewer than 3 pairs, or either side constant.
    """
    from scipy.stats import spearmanr

    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    rho = spearmanr(a, b).statistic
    return None if rho is None or np.isnan(rho) else float(rho)
