"""The domain-adaptation results as tables, summaries and the cross-domain heatmap.

Reads the per-pair results of `adaptation.run_pair` (plain dicts, also as saved in metrics.json, so a
benchmark can re-render a finished run):

    rows = result_rows(results, methods)       # one table row per pair and method
    summary = summaries(results, methods)       # distance vs gap, source rankings (Spearman/Kendall)
    print(summary_text(summary))
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nlptransfer.evaluation.statistics import paired_p_value, spearman
from nlptransfer.reporting import domain_heatmap_figure

#: Scores that should rank sources as the trained models do (higher = better source).
RANKING_SCORES = ("logme", "h_score")
#: Domain distances (lower = better source).
DISTANCES = ("mmd", "proxy_a_distance")


def reference_method(methods: Sequence[str]) -> str:
    """The method summaries and the heatmap's diagonal read: `none` when it ran, else the first."""
    return "none" if "none" in methods else methods[0]


def _guard_cell(guard: dict) -> str:
    return {"negative transfer": "YES", "no negative transfer": "no"}.get(guard["verdict"], "?")


def result_rows(results: list[dict], methods: Sequence[str]) -> list[dict]:
    """One table row per pair and method: F1 (mean, std), LogME, H-score, distances, paper figure, the
    teacher's own score (self-training from a teacher), the guard's verdict and the rule that decided."""
    teacher = any("teacher" in r["methods"].get(m, {}) for r in results for m in methods)
    rows = []
    for r in results:
        base = r.get("target_only_baseline")
        for method in methods:
            s = r["methods"][method]
            row = {
                "source": r["source"],
                "target": r["target"],
                "method": method,
                "micro-F1": s["f1_micro"],
                "micro std": s["f1_micro_std"],
                "macro-F1": s["f1_macro"],
                "macro std": s["f1_macro_std"],
                "LogME": s["logme"],
                "H-score": s.get("h_score", ""),
                "paper 2014": r["paper_2014"] if r["paper_2014"] is not None else "",
            }
            if "none" in methods:
                row.update(versus_none(s, r["methods"]["none"]))
            if teacher:
                t = s.get("teacher")
                row["teacher"] = t["name"] if t else ""
                row["teacher micro-F1"] = t["f1_micro"] if t else ""
                row["teacher macro-F1"] = t["f1_macro"] if t else ""
            if "distance" in r:
                row["MMD"] = r["distance"]["mmd"]
                row["proxy A-dist"] = r["distance"]["proxy_a_distance"]
            if base:
                row["target-only macro-F1"] = base["f1_macro"]
                row["negative transfer"] = _guard_cell(s["guard"])
                row["guard rule"] = s["guard"]["rule"]
            rows.append(row)
    return rows


def versus_none(scores: dict, none: dict) -> dict:
    """Micro-F1 gain over `none` and, with >= 2 seeds, its paired t-test p-value over seeds (seeds pair up:
    every method trains with the same seeds)."""
    a, b = np.asarray(scores["f1_micro_per_seed"]), np.asarray(none["f1_micro_per_seed"])
    p = paired_p_value(a - b) if len(a) >= 2 and len(a) == len(b) and scores is not none else None
    return {"Δ micro vs none": float(a.mean() - b.mean()), "p vs none": "" if p is None else p}


def summaries(results: list[dict], methods: Sequence[str]) -> dict:
    """Does distance predict the transfer gap? Do LogME / H-score / distances rank the sources as the
    trained models do (per target, and over every pair: Spearman and Kendall, scipy)?"""
    ref = reference_method(methods)
    out: dict = {"reference_method": ref}
    gaps = [r["methods"][ref]["in_domain_f1_micro"] - r["methods"][ref]["f1_micro"] for r in results]
    for key in DISTANCES:
        dist = [r["distance"][key] for r in results if "distance" in r]
        if len(dist) == len(results):
            out[f"spearman_{key}_vs_gap"] = spearman(dist, gaps)
    out["source_ranking"] = source_ranking(results, ref)
    out["ranking_agreement"] = ranking_agreement(results, ref)
    return out


def _score(r: dict, ref: str, key: str) -> float | None:
    """A pair's ranking score, oriented so that higher = better source (distances negated)."""
    if key in DISTANCES:
        return -r["distance"][key] if "distance" in r else None
    return r["methods"][ref].get(key)


def ranking_agreement(results: list[dict], ref: str) -> dict:
    """Per score: Spearman and Kendall between it and the trained macro-F1, within each target's sources
    (mean over targets) and over every pair (the whole matrix)."""
    from scipy.stats import kendalltau

    out = {}
    for key in (*RANKING_SCORES, *DISTANCES):
        pairs = [(_score(r, ref, key), r["methods"][ref]["f1_macro"], r["target"]) for r in results]
        pairs = [p for p in pairs if p[0] is not None]
        if len(pairs) < 3:
            continue
        per_target_rho, per_target_tau = [], []
        for target in sorted({p[2] for p in pairs}):
            a = [p[0] for p in pairs if p[2] == target]
            b = [p[1] for p in pairs if p[2] == target]
            rho = spearman(a, b)
            if rho is not None:
                per_target_rho.append(rho)
            if len(a) >= 2 and len(set(a)) > 1 and len(set(b)) > 1:
                per_target_tau.append(float(kendalltau(a, b).statistic))
        a, b = [p[0] for p in pairs], [p[1] for p in pairs]
        tau = kendalltau(a, b).statistic if len(set(a)) > 1 and len(set(b)) > 1 else None
        out[key] = {
            "spearman_all_pairs": spearman(a, b),
            "kendall_all_pairs": None if tau is None or np.isnan(tau) else float(tau),
            "spearman_within_target_mean": float(np.mean(per_target_rho)) if per_target_rho else None,
            "kendall_within_target_mean": float(np.mean(per_target_tau)) if per_target_tau else None,
            "pairs": len(pairs),
        }
    return out


def source_ranking(results: list[dict], ref: str) -> dict:
    """Per target with two or more sources: the sources by LogME and by the trained models' macro-F1."""
    ranking = {}
    for target in sorted({r["target"] for r in results}):
        cands = [r for r in results if r["target"] == target]
        if len(cands) < 2:
            continue
        by_logme = [r["source"] for r in sorted(cands, key=lambda r: -r["methods"][ref]["logme"])]
        by_f1 = [r["source"] for r in sorted(cands, key=lambda r: -r["methods"][ref]["f1_macro"])]
        ranking[target] = {
            "by_logme": by_logme,
            "by_trained_macro_f1": by_f1,
            "same_order": by_logme == by_f1,
            "same_best": by_logme[0] == by_f1[0],
        }
    return ranking


def summary_text(summary: dict) -> str:
    """The summary as markdown bullets (below the results table)."""
    lines = []
    for key in DISTANCES:
        rho = summary.get(f"spearman_{key}_vs_gap")
        if rho is not None:
            lines.append(
                f"- Spearman({key}, transfer gap) = {rho:+.2f} (gap = in-domain - cross-domain micro-F1, "
                f"{summary['reference_method']})"
            )
    for target, r in summary.get("source_ranking", {}).items():
        lines.append(
            f"- {target}: LogME ranks sources {' > '.join(r['by_logme'])}; trained models (macro-F1) "
            f"{' > '.join(r['by_trained_macro_f1'])} ({'same order' if r['same_order'] else 'different order'})"
        )

    def fmt(x):
        return "n/a" if x is None else f"{x:+.2f}"

    for key, a in summary.get("ranking_agreement", {}).items():
        lines.append(
            f"- {key} vs trained macro-F1 over {a['pairs']} pairs: Spearman {fmt(a['spearman_all_pairs'])}, "
            f"Kendall {fmt(a['kendall_all_pairs'])}; within a target (mean) Spearman "
            f"{fmt(a['spearman_within_target_mean'])}, Kendall {fmt(a['kendall_within_target_mean'])}"
        )
    return "\n".join(lines)


def heatmap_png(
    results: list[dict], methods: Sequence[str], domains: Sequence[str], paper: dict[str, dict]
) -> bytes:
    """Micro-F1 per source (rows) and target (columns): one panel per method, then the paper's Table 5
    (`paper`: source -> target -> F1). Diagonal: in-domain micro-F1 (ours: of the first pair trained on
    that source, reference method)."""
    ref = reference_method(methods)
    cells = [(domains.index(r["source"]), domains.index(r["target"]), r) for r in results]
    panels = {}
    for method in methods:
        grid = np.full((len(domains), len(domains)), np.nan)
        for i, j, r in cells:
            grid[i, j] = r["methods"][method]["f1_micro"]
            if np.isnan(grid[i, i]):
                grid[i, i] = r["methods"][ref]["in_domain_f1_micro"]
        panels[f"{method} (ours)"] = grid
    table = np.diag([paper.get(d, {}).get(d, np.nan) for d in domains])
    table[~np.eye(len(domains), dtype=bool)] = np.nan
    for i, j, r in cells:
        table[i, j] = np.nan if r["paper_2014"] is None else r["paper_2014"]
    panels["paper 2014"] = table
    short = [d.removeprefix("vader-") for d in domains]
    title = "3-class micro-F1 (diagonal: in-domain)"
    return domain_heatmap_figure(panels, short, title=title, vmin=0.3, vmax=0.95)
