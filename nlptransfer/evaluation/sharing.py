"""Where does sharing an encoder help, at the single-task controls' budget? The multi-task recipe's verdicts.

Per task, over the seeds (each seed pairs the multi-task model with the single-task control of that seed):
the difference multi - single of the task's primary metric and the two-sided paired t-test. p < 0.05
(`ALPHA`) with a gain: "helps"; with a loss: "HURTS", flagged as negative transfer (a warning, like the
negative-transfer guard of `nlptransfer.selection`); otherwise "within noise". With fewer than 3 seeds
(`MIN_SEEDS`) no test is run and the verdict says so ("1 seed: no noise estimate", "too few seeds").

    verdict = sharing_verdict("amazon", "f1_macro", [0.51, 0.50, 0.53], [0.60, 0.61, 0.58])
    verdict["outcome"], verdict["negative_transfer"]      # "HURTS", True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from nlptransfer.evaluation.comparison import ALPHA, MIN_SEEDS, metric_label
from nlptransfer.evaluation.statistics import paired_p_value
from nlptransfer.reporting import format_mean_std

logger = logging.getLogger("nlptransfer")

OUTCOMES = ("helps", "HURTS", "within noise", "too few seeds", "no noise estimate")


def sharing_verdict(task: str, metric: str, multitask: Sequence[float], single: Sequence[float]) -> dict:
    """{"outcome", "delta", "p_value", "n_seeds", "negative_transfer", "text"} for one task (module docstring)."""
    diffs = np.asarray(multitask, dtype=float) - np.asarray(single, dtype=float)
    n, delta = len(diffs), float(diffs.mean())
    label = metric_label(metric)
    p = None
    if n < 2:
        outcome = "no noise estimate"
        text = f"{task}: {delta:+.3f} {label} (1 seed: no noise estimate; run {MIN_SEEDS}+ seeds)"
    elif n < MIN_SEEDS:
        outcome = "too few seeds"
        text = f"{task}: {delta:+.3f} {label} ({n} seeds: too few for a test; run {MIN_SEEDS}+ seeds)"
    else:
        p = paired_p_value(diffs)
        evidence = f"paired t-test {'p<0.001' if p < 0.001 else f'p={p:.3f}'}, {n} seeds"
        if p < ALPHA:
            outcome = "helps" if delta > 0 else "HURTS"
        else:
            outcome = "within noise"
        text = f"{task}: {delta:+.3f} {label} ({evidence}): sharing {outcome}"
    negative = outcome == "HURTS"
    if negative:
        logger.warning(
            "NEGATIVE TRANSFER: multi-task %s loses %.4f %s to its single-task control beyond seed noise "
            "(p=%.3g); train it alone, drop or down-weight the tasks that compete with it",
            task,
            -delta,
            label,
            p,
        )
    return {
        "outcome": outcome,
        "delta": delta,
        "p_value": p,
        "n_seeds": n,
        "negative_transfer": negative,
        "text": text,
    }


def sharing_table(
    tasks, runs: list[dict], test_sizes: dict[str, int], compare: bool
) -> tuple[list, list, dict]:
    """(rows, columns, summary) of the recipe's table: each task's primary metric, multi-task vs single-task
    (mean +- std over seeds), the difference, the paired p-value and the verdict."""
    rows, summary = [], {}
    for task in tasks:
        metric = task.primary_metric
        mt = [r["multitask"][task.name][metric] for r in runs]
        row = {
            "task": task.name,
            "dataset": task.dataset,
            "type": task.type,
            "metric": metric,
            "n test": test_sizes[task.name],
            "multi-task": format_mean_std(mt),
        }
        summary[task.name] = {"metric": metric, "multitask": mt}
        if compare:
            st = [r["single_task"][task.name][metric] for r in runs]
            verdict = sharing_verdict(task.name, metric, mt, st)
            p = verdict["p_value"]
            row["single-task"] = format_mean_std(st)
            row["Δ (multi - single)"] = format_mean_std(
                [a - b for a, b in zip(mt, st, strict=True)], signed=True
            )
            row["p (paired)"] = "" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")
            row["sharing"] = verdict["outcome"]
            summary[task.name].update(
                single_task=st, delta=[a - b for a, b in zip(mt, st, strict=True)], verdict=verdict
            )
        rows.append(row)
    columns = ["task", "dataset", "type", "metric", "n test", "multi-task"]
    if compare:
        columns += ["single-task", "Δ (multi - single)", "p (paired)", "sharing"]
    return rows, columns, summary
