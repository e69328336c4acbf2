"""Is this source any good? Domain distance, transferability without fine-tuning, a negative-transfer guard.

Pure numpy/torch/scikit-learn on feature matrices: it imports no trainer (the trainers import it).

Domain distance between two feature sets, e.g. a model's frozen features of two text sets
(`features.extract_features`):
- `mmd`: squared multi-kernel MMD (Gaussian kernels, the MMD training loss `losses.mmd_loss`).
- `proxy_a_distance`: 2 (1 - 2 eps), eps = the cross-validated error of a linear classifier that tells the
  two domains apart (Ben-David et al. 2007; Ganin et al. 2016). ~0: indistinguishable, 2: separable.

    from nlptransfer.features import extract_features
    from nlptransfer.selection import feature_distances
    movies, tweets = (extract_features(model, tokenizer, t, pooling="mean") for t in (movie_texts, tweet_texts))
    feature_distances(movies, tweets)  # {"mmd": ..., "proxy_a_distance": ...}

Transferability estimation (no fine-tuning), for a labelled target sample:
- `logme(features, labels)` (You et al. 2021): the log maximum evidence per example of a Bayesian linear
  model from the features to the one-hot labels, maximised over its prior/noise precisions with the
  paper's fixed-point iteration. Higher = the features suit the target labels better.
- `h_score(features, labels)` (Bao et al. 2019): tr(cov(f)^-1 cov(E[f|y])).
- `rank_by_score` ranks candidates by the score of their features on the target sample: e.g. candidate
  source datasets by each source-trained classifier's outputs (`{"movies": logits, ...}`), or candidate
  pretrained models by their frozen features (`features.rank_models` extracts them).

Instance weights (`importance_weights`): p_target(x)/p_source(x) for each source example from a
logistic-regression domain classifier, used by `ImportanceWeightedTrainer`.

Negative-transfer guard (`negative_transfer_check`): compares a run that used a source with a target-only
baseline trained on the lightly labelled target sample, and warns when transfer is worse beyond seed noise
(a paired t-test over seeds, or a tolerance from a known seed std; one seed alone cannot tell).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import torch

from nlptransfer.errors import DataError
from nlptransfer.evaluation.statistics import paired_p_value
from nlptransfer.losses import mmd_loss

logger = logging.getLogger("nlptransfer")


def _as_features(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"{what} must be a non-empty [n, dim] feature matrix, got shape {x.shape}")
    return x


def _subsample(x: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    return x if n is None or len(x) <= n else x[rng.choice(len(x), n, replace=False)]


# ----------------------------------------------------------------------------------------------
# domain distance


def mmd(
    source: np.ndarray,
    target: np.ndarray,
    *,
    kernel_num: int = 5,
    max_samples: int | None = 2000,
    seed: int = 0,
) -> float:
    """Squared multi-kernel MMD between two feature sets (each subsampled to `max_samples` rows)."""
    rng = np.random.default_rng(seed)
    xs = _subsample(_as_features(source, "source features"), max_samples, rng)
    xt = _subsample(_as_features(target, "target features"), max_samples, rng)
    with torch.no_grad():
        # float64: the estimate is a difference of kernel means (~1 each) and float32 cdist's rounding made it
        # differ by ~3e-4 between two CPUs on the same features
        xs64, xt64 = torch.from_numpy(xs).double(), torch.from_numpy(xt).double()
        return float(mmd_loss(xs64, xt64, kernel_num=kernel_num))


def proxy_a_distance(
    source: np.ndarray,
    target: np.ndarray,
    *,
    folds: int = 5,
    c: float = 1.0,
    max_samples: int | None = 2000,
    seed: int = 0,
) -> float:
    """2 (1 - 2 eps) with eps the `folds`-fold cross-validated error of a linear domain classifier.

    Both domains are subsampled to the same size (so chance error is 0.5 and the distance ~0).
    """
    # scikit-learn is imported when used: importing this module (the trainers do) stays ~1.5 s faster.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    xs, xt = _as_features(source, "source features"), _as_features(target, "target features")
    n = min(len(xs), len(xt), max_samples or len(xs))
    if n < folds:
        raise DataError(f"proxy A-distance needs at least {folds} examples per domain, got {n}")
    xs, xt = _subsample(xs, n, rng), _subsample(xt, n, rng)
    x = np.concatenate([xs, xt])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    accuracy = float(cross_val_score(clf, x, y, cv=cv, scoring="accuracy").mean())
    return 2.0 * (1.0 - 2.0 * (1.0 - accuracy))


def feature_distances(
    source: np.ndarray, target: np.ndarray, *, max_samples: int | None = 2000, seed: int = 0
) -> dict:
    """{"mmd": ..., "proxy_a_distance": ...} between two feature sets."""
    return {
        "mmd": mmd(source, target, max_samples=max_samples, seed=seed),
        "proxy_a_distance": proxy_a_distance(source, target, max_samples=max_samples, seed=seed),
    }


# ----------------------------------------------------------------------------------------------
# transferability


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"need one integer label per feature row ({n}), got shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise DataError("the labelled target sample has a single class; transferability needs at least two")
    return y


def _logme_one(
    y: np.ndarray, f: np.ndarray, s: np.ndarray, v: np.ndarray, tol: float, max_iter: int
) -> float:
    """Log evidence / n of y ~ N(f w, 1/beta), w ~ N(0, 1/alpha), maximised over alpha, beta (You et al. 2021)."""
    n, d = f.shape
    alpha, beta = 1.0, 1.0
    proj = v.T @ (f.T @ y)  # [d]: F^T y in the eigenbasis of F^T F
    for _ in range(max_iter):
        gamma = float((beta * s / (alpha + beta * s)).sum())  # effective number of parameters
        m = v @ (beta * proj / (alpha + beta * s))  # posterior mean of w
        alpha_de = float(m @ m)
        beta_de = float(((y - f @ m) ** 2).sum())
        new_alpha = gamma / max(alpha_de, 1e-12)
        new_beta = (n - gamma) / max(beta_de, 1e-12)
        converged = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < tol
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    m = v @ (beta * proj / (alpha + beta * s))
    alpha_de = float(m @ m)
    beta_de = float(((y - f @ m) ** 2).sum())
    evidence = (
        d / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * s))
        - beta / 2.0 * beta_de
        - alpha / 2.0 * alpha_de
        - n / 2.0 * np.log(2 * np.pi)
    )
    return float(evidence / n)


def logme(features, labels, *, tol: float = 1e-3, max_iter: int = 100) -> float:
    """LogME of `features` [n, d] for integer `labels` [n]: the mean over classes of the maximum log
    evidence per example of a Bayesian linear regression onto that class's one-hot column."""
    f = _as_features(features, "features")
    y = _labels(labels, len(f))
    s, v = np.linalg.eigh(f.T @ f)  # F^T F = V diag(s) V^T
    s = np.clip(s, 0.0, None)
    return float(
        np.mean([_logme_one((y == c).astype(np.float64), f, s, v, tol, max_iter) for c in np.unique(y)])
    )


def h_score(features, labels, *, shrinkage: bool = True, rcond: float = 1e-6) -> float:
    """H-score (Bao et al. 2019): tr(cov(f)^-1 cov(E[f | y])); higher = more transferable.

    With fewer samples than dimensions (200 labelled texts, 384-d MiniLM features) the plain estimate with a
    pseudo-inverse saturates at classes - 1 for any features; `shrinkage` (default) uses the Ledoit-Wolf
    shrunk covariance (scikit-learn) and scales cov(E[f | y]) by 1 - alpha, the shrinkage-based H-score of
    Ibrahim et al. (ICLR 2023). `shrinkage=False`: the original, pinv with `rcond`."""
    f = _as_features(features, "features")
    y = _labels(labels, len(f))
    f = f - f.mean(0, keepdims=True)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False)
    if not shrinkage:
        return float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False), rcond=rcond) @ cov_g))
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf(assume_centered=True).fit(f)
    return float(np.trace(np.linalg.solve(lw.covariance_, (1.0 - lw.shrinkage_) * cov_g)))


SCORES = {"logme": logme, "h_score": h_score}


def rank_by_score(
    candidates: Mapping[str, np.ndarray], labels, score: str = "logme"
) -> list[tuple[str, float]]:
    """(name, score) for each candidate's features on the labelled target sample, best first."""
    if score not in SCORES:
        raise DataError(f"unknown transferability score {score!r}; choose one of {', '.join(SCORES)}")
    scored = [(name, SCORES[score](feats, labels)) for name, feats in candidates.items()]
    return sorted(scored, key=lambda t: -t[1])


# ----------------------------------------------------------------------------------------------
# importance weights


def importance_weights(
    source_features, target_features, *, clip: float = 10.0, c: float = 1.0, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Density ratio p_target(x)/p_source(x) for each source row, mean 1.

    A logistic-regression domain classifier (standardised features, source 0 / target 1) gives p(target|x)
    out of fold (`folds`-fold cross-validated predictions, so a row's weight never comes from a classifier
    that saw it); the ratio p/(1-p) is normalised to mean 1 and clipped to [1/clip, clip], repeatedly
    until both hold (a separable target otherwise gives nearly all weight to a handful of rows).
    """
    # scikit-learn is imported when used: importing this module (the trainers do) stays ~1.5 s faster.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs = _as_features(source_features, "source features")
    xt = _as_features(target_features, "target features")
    if xs.shape[1] != xt.shape[1]:
        raise DataError(f"source features have {xs.shape[1]} dimensions but target features {xt.shape[1]}")
    x = np.concatenate([xs, xt])
    y = np.r_[np.zeros(len(xs)), np.ones(len(xt))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
    k = max(2, min(folds, len(xs), len(xt)))
    p = cross_val_predict(
        clf, x, y, cv=StratifiedKFold(k, shuffle=True, random_state=seed), method="predict_proba"
    )
    p_target = np.clip(p[: len(xs), 1], 1e-6, 1 - 1e-6)
    w = p_target / (1.0 - p_target)
    for _ in range(50):  # normalise and clip until both hold (a few rounds)
        w = np.clip(w / w.mean(), 1.0 / clip, clip)
        if abs(w.mean() - 1.0) < 1e-4:
            break
    return (w / w.mean()).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# negative transfer


def negative_transfer_check(
    transfer_scores,
    baseline_scores,
    *,
    metric: str = "f1_macro",
    what: str = "transfer",
    seed_std: float | None = None,
    alpha: float = 0.05,
) -> dict:
    """Did using the source hurt? Flags negative transfer only when the drop below the target-only baseline
    is beyond seed noise, and says which rule decided (`rule`):

    - two or more seeds (scores paired by seed): a paired t-test (scipy) of transfer - baseline; flagged
      when the mean drops and p < `alpha`;
    - one seed with `seed_std` (the std of `metric` over seeds, measured elsewhere): flagged when the drop
      exceeds 2 * sqrt(2) * seed_std (the 95% spread of a difference of two runs);
    - one seed without it: no verdict ("one seed: cannot tell noise from loss").

    Returns {"transfer", "baseline", "delta", "negative_transfer", "verdict", "rule"} (+ "p_value" or
    "tolerance"); `verdict` is "negative transfer", "no negative transfer" or "cannot tell".
    """
    t = np.atleast_1d(np.asarray(transfer_scores, dtype=np.float64))
    b = np.atleast_1d(np.asarray(baseline_scores, dtype=np.float64))
    delta = float(t.mean() - b.mean())
    out = {"transfer": float(t.mean()), "baseline": float(b.mean()), "delta": delta}
    if len(t) >= 2 and len(t) == len(b):
        p = paired_p_value(t - b)
        negative, decided = delta < 0 and p < alpha, True
        out["p_value"] = p
        out["rule"] = f"paired t-test over {len(t)} seeds: p = {p:.3g} ({'<' if p < alpha else '>='} {alpha})"
    elif seed_std is not None:
        tolerance = 2.0 * math.sqrt(2.0) * float(seed_std)
        negative, decided = delta < -tolerance, True
        out["tolerance"] = tolerance
        out["rule"] = f"one seed: tolerance 2*sqrt(2)*seed std = {tolerance:.4f}"
    else:
        negative, decided = False, False
        out["rule"] = "one seed: cannot tell noise from loss"
    verdict = "negative transfer" if negative else "no negative transfer" if decided else "cannot tell"
    if negative:
        logger.warning(
            "NEGATIVE TRANSFER: %s scores %s %.4f, below the target-only baseline's %.4f (%+.4f; %s); the "
            "source hurts here: train on the labelled target data alone, or pick another source (see the "
            "LogME ranking)",
            what,
            metric,
            out["transfer"],
            out["baseline"],
            delta,
            out["rule"],
        )
    return {**out, "negative_transfer": bool(negative), "verdict": verdict}
