"""Is this source any good? Domain distance, transferability without fine-tuning, a negative-transfer guard.

Domain distance between two text sets, on a model's frozen features (`features.extract_features`):
- `mmd`: squared multi-kernel MMD (Gaussian kernels, the same estimate as the MMD training loss).
- `proxy_a_distance`: 2 (1 - 2 eps), eps = the cross-validated error of a linear classifier that tells the
  two domains apart (Ben-David et al. 2007; Ganin et al. 2016). ~0: indistinguishable, 2: separable.

    from nlptransfer.selection import domain_distance
    domain_distance(model, tokenizer, movies_texts, tweets_texts)  # {"mmd": ..., "proxy_a_distance": ...}

Transferability estimation (no fine-tuning), for a labelled target sample:
- `logme(features, labels)` (You et al. 2021): the log maximum evidence per example of a Bayesian linear
  model from the features to the one-hot labels, maximised over its prior/noise precisions with the
  paper's fixed-point iteration. Higher = the features suit the target labels better.
- `h_score(features, labels)` (Bao et al. 2019): tr(cov(f)^-1 cov(E[f|y])).
- `rank_models` ranks candidate pretrained models by LogME of their features on the target sample;
  `rank_sources` ranks candidate source datasets by LogME of each source-trained classifier's outputs on
  the target sample.

Instance weights (`importance_weights`): p_target(x)/p_source(x) for each source example from a
logistic-regression domain classifier, used by `ImportanceWeightedTrainer`.

Negative-transfer guard (`negative_transfer_check`): compares a run that used a source with a target-only
baseline trained on the lightly labelled target sample, and warns when transfer is worse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from nlptransfer.errors import DataError

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
    import torch

    from nlptransfer.trainers.adaptation import mmd_loss

    rng = np.random.default_rng(seed)
    xs = _subsample(_as_features(source, "source features"), max_samples, rng)
    xt = _subsample(_as_features(target, "target features"), max_samples, rng)
    with torch.no_grad():
        return float(mmd_loss(torch.from_numpy(xs), torch.from_numpy(xt), kernel_num=kernel_num))


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


def domain_distance(
    model,
    tokenizer,
    source_texts: Sequence[str],
    target_texts: Sequence[str],
    *,
    pooling: str = "mean",
    max_length: int = 128,
    max_samples: int | None = 2000,
    seed: int = 0,
) -> dict:
    """MMD and proxy A-distance between two text sets on `model`'s frozen features (cached on disk)."""
    from nlptransfer.features import extract_features

    for texts, what in ((source_texts, "source"), (target_texts, "target")):
        if len(texts) == 0:
            raise DataError(f"the {what} domain has no texts; pass at least a few hundred texts per domain")
    rng = np.random.default_rng(seed)
    picks = [
        [
            texts[i]
            for i in sorted(rng.choice(len(texts), min(len(texts), max_samples or len(texts)), replace=False))
        ]
        for texts in (list(source_texts), list(target_texts))
    ]
    xs, xt = (extract_features(model, tokenizer, t, pooling=pooling, max_length=max_length) for t in picks)
    return feature_distances(xs, xt, max_samples=None, seed=seed)


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


def h_score(features, labels, *, rcond: float = 1e-6) -> float:
    """H-score (Bao et al. 2019): tr(pinv(cov(f)) cov(E[f | y])); higher = more transferable."""
    f = _as_features(features, "features")
    y = _labels(labels, len(f))
    f = f - f.mean(0, keepdims=True)
    cov_f = np.cov(f, rowvar=False)
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond) @ cov_g))


SCORES = {"logme": logme, "h_score": h_score}


def rank_by_score(
    candidates: Mapping[str, np.ndarray], labels, score: str = "logme"
) -> list[tuple[str, float]]:
    """(name, score) for each candidate's features on the labelled target sample, best first."""
    if score not in SCORES:
        raise DataError(f"unknown transferability score {score!r}; choose one of {', '.join(SCORES)}")
    scored = [(name, SCORES[score](feats, labels)) for name, feats in candidates.items()]
    return sorted(scored, key=lambda t: -t[1])


def rank_models(
    model_names: Sequence[str],
    texts: Sequence[str],
    labels,
    *,
    score: str = "logme",
    pooling: str = "mean",
    max_length: int = 128,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> list[tuple[str, float]]:
    """Rank candidate pretrained models (Hub ids or local folders) for a labelled target sample, without
    fine-tuning: `score` of each model's frozen `pooling` features. Best first. Models load through
    `nlptransfer.modeling.load` (safetensors only unless `allow_pickle`; remote code only if trusted)."""
    from transformers import AutoModel

    from nlptransfer.features import extract_features
    from nlptransfer.modeling.load import load_model, load_tokenizer

    candidates = {}
    for name in model_names:
        tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
        model = load_model(AutoModel, name, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        candidates[name] = extract_features(
            model, tokenizer, list(texts), pooling=pooling, max_length=max_length
        )
    return rank_by_score(candidates, labels, score)


def rank_sources(
    source_outputs: Mapping[str, np.ndarray], labels, score: str = "logme"
) -> list[tuple[str, float]]:
    """Rank candidate source datasets: `source_outputs[name]` holds the outputs (logits or probabilities,
    [n, k]) of a classifier trained on that source, on the labelled target sample. Best first."""
    return rank_by_score(source_outputs, labels, score)


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
    transfer_score: float,
    baseline_score: float,
    *,
    metric: str = "f1_macro",
    what: str = "transfer",
    tolerance: float = 0.0,
) -> dict:
    """Compare a run that used a source with the target-only baseline; warn when transfer is worse.

    Returns {"transfer", "baseline", "delta", "negative_transfer"}. `tolerance` ignores drops this small.
    """
    delta = float(transfer_score) - float(baseline_score)
    negative = delta < -tolerance
    if negative:
        logger.warning(
            "NEGATIVE TRANSFER: %s scores %s %.4f, below the target-only baseline's %.4f (%.4f); the source "
            "hurts here: train on the labelled target data alone, or pick another source (see LogME ranking)",
            what,
            metric,
            transfer_score,
            baseline_score,
            delta,
        )
    return {"transfer": float(transfer_score), "baseline": float(baseline_score), "delta": delta,
            "negative_transfer": bool(negative)}  # fmt: skip
