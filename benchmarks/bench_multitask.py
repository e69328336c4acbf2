"""Multi-task learning against single-task controls at equal compute (issue 19): per task, over seeds, does the
shared encoder help, hurt (negative transfer) or stay within seed noise; and do temperature sampling or
uncertainty loss weighting change that?

    .venv/bin/python -m benchmarks.bench_multitask                       # 3 variants x 3 seeds, compute-matched
    .venv/bin/python -m benchmarks.bench_multitask --variants default    # the recipe's defaults only
    .venv/bin/python -m benchmarks.bench_multitask --quick               # smoke test: tiny budget, ~5 min idle
    .venv/bin/python -m benchmarks.bench_multitask -- --single_task_budget task_steps

Variants (`--variants`): `default` (the recipe's YAML: proportional sampling, fixed task weights),
`temperature` (--task_sampling temperature --sampling_temperature 2) and `uncertainty` (--loss_weighting
uncertainty, Kendall et al. 2018). With equal task sizes (the YAML caps every task at 300 rows)
temperature sampling draws the same tasks as proportional: give unequal caps (-- --tasks ...) to measure it. Each variant is one multi-task recipe process (`--seeds`, seeds 42, 43,
...; benchmarks/recipe_process.py: wall time, peak memory, load average before it starts). The default
variant also trains every task alone (the recipe's `--single_task_budget`, `steps` by default: as many
optimizer steps as the whole multi-task run); the other variants train only the multi-task model and are
paired seed by seed with those controls (a control trains its task's plain loss, and the multi-task run's
number of batches does not depend on sampling or weighting: the bench checks the steps are equal). Per
variant and task: multi - single (paired t-test, verdict helps / HURTS / within noise) and the variant's
multi-task score minus the default's (paired). Runs already finished under `--out` are reused.

Run time of the default (3 variants x 3 seeds; per seed 80 multi-task steps of 32, plus 4 controls x 80 steps
in the default variant, each evaluating 400 validation rows per epoch; 4 x 400 test rows), measured 2026-12-01
on the idle 2-core CPU: default variant 13.4 min for 3 seeds, temperature and uncertainty ~3 min each, 19 min
in all (`--single_task_budget task_steps`: 5.8 min for the default variant).
Writes benchmarks/results/<date>-multitask.json (or --output) and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.recipe_process import run_recipe
from nlptransfer.evaluation.sharing import sharing_verdict
from nlptransfer.evaluation.statistics import paired_p_value
from nlptransfer.reporting import format_mean_std, markdown_table
from nlptransfer.runs import write_json_atomic

RESULTS_DIR = Path(__file__).parent / "results"
VARIANTS = {
    "default": [],
    "temperature": ["--task_sampling", "temperature", "--sampling_temperature", "2"],
    "uncertainty": ["--loss_weighting", "uncertainty"],
}
# --quick: the whole pipeline on a tiny budget (a smoke test of the script, not a measurement)
QUICK_FLAGS = (
    "--max_train_samples 32 --max_eval_samples 32 --num_train_epochs 1 --eval_strategy no --logging_steps 1"
).split()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budget, results in --out")
    p.add_argument("--seeds", type=int, default=3, help="seeds 42, 43, ... per variant")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--out", default=None, help="runs, logs and results (default outputs/bench-multitask)")
    p.add_argument("--output", help="results JSON (default benchmarks/results/<date>-multitask.json)")
    p.add_argument("recipe_flags", nargs=argparse.REMAINDER, help="after --: extra multitask recipe flags")
    args = p.parse_args(argv)
    args.recipe_flags = [f for f in args.recipe_flags if f != "--"]
    if args.seeds < 1:
        p.error("--seeds must be >= 1")
    if "default" not in args.variants:  # the controls come from the default variant's run
        args.variants = ["default", *args.variants]
    args.out = args.out or ("outputs/bench-multitask-quick" if args.quick else "outputs/bench-multitask")
    if args.quick:  # the user's flags after -- win
        args.recipe_flags = QUICK_FLAGS + args.recipe_flags
    return args


def run_variant(out: Path, variant: str, seeds: int, flags: list[str]) -> dict:
    """One recipe process (reused when its metrics.json exists): its metrics and process figures."""
    run_dir = out / "runs" / variant
    cmd = [sys.executable, "-m", "nlptransfer.recipes.multitask", "--seeds", str(seeds)]
    cmd += ["--output_dir", str(run_dir), "--overwrite_output_dir", "true", "--export_tasks", "false"]
    cmd += [*flags, *VARIANTS[variant]]
    if variant != "default":
        cmd += ["--compare_single_task", "false"]
    process = {}
    if not (run_dir / "metrics.json").is_file():
        (out / "logs").mkdir(parents=True, exist_ok=True)
        process = run_recipe(cmd, out / "logs" / f"{variant}.log")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"variant": variant, "run": str(run_dir), "metrics": metrics, **process, "command": " ".join(cmd)}


def compare(variants: dict[str, dict]) -> tuple[list[dict], dict]:
    """(table rows, summary): per variant and task, multi - single (verdict) and multi - default multi."""
    base = variants["default"]["metrics"]
    base_steps = [r["multitask_train"]["steps"] for r in base["runs"]]
    rows, summary = [], {}
    for name, v in variants.items():
        m = v["metrics"]
        steps = [r["multitask_train"]["steps"] for r in m["runs"]]
        if steps != base_steps:
            raise SystemExit(
                f"variant {name} took {steps} optimizer steps, the default {base_steps}: not paired"
            )
        summary[name] = {}
        for task, s in m["summary"].items():
            metric, mt = s["metric"], s["multitask"]
            st = base["summary"][task]["single_task"]
            verdict = sharing_verdict(task, metric, mt, st)
            vs_default = np.array(mt) - np.array(base["summary"][task]["multitask"])
            p = paired_p_value(vs_default) if name != "default" and len(vs_default) >= 2 else None
            summary[name][task] = {
                "metric": metric,
                "verdict": verdict,
                "vs_default": vs_default.tolist(),
                "p": p,
            }
            rows.append(
                {
                    "variant": name,
                    "task": task,
                    "metric": metric,
                    "multi-task": format_mean_std(mt),
                    "single-task": format_mean_std(st),
                    "Δ (multi - single)": format_mean_std(list(np.array(mt) - np.array(st)), signed=True),
                    "p": "" if verdict["p_value"] is None else f"{verdict['p_value']:.3f}",
                    "sharing": verdict["outcome"],
                    "Δ vs default": ""
                    if name == "default"
                    else format_mean_std(list(vs_default), signed=True),
                    "p vs default": "" if p is None else f"{p:.3f}",
                }
            )
    return rows, summary


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    variants = {}
    for name in args.variants:
        print(f"multitask variant {name} ({args.seeds} seeds) ...", flush=True)
        variants[name] = run_variant(out, name, args.seeds, args.recipe_flags)
    rows, summary = compare(variants)
    table = markdown_table(rows, list(rows[0]))
    report = {
        "date": datetime.date.today().isoformat(),
        "recipe_flags": args.recipe_flags,
        "seeds": args.seeds,
        "variants": {
            n: {k: v for k, v in r.items() if k != "metrics"}
            | {"steps": [x["multitask_train"]["steps"] for x in r["metrics"]["runs"]]}
            for n, r in variants.items()
        },
        "summary": summary,
        "runs": {n: r["metrics"]["runs"] for n, r in variants.items()},
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "table": table,
    }
    default = out / "results.json" if args.quick else RESULTS_DIR / f"{report['date']}-multitask.json"
    output = Path(args.output) if args.output else default
    write_json_atomic(output, report)
    flagged = [
        f"{n}/{t}" for n, s in summary.items() for t, x in s.items() if x["verdict"]["negative_transfer"]
    ]
    print(
        f"{args.seeds} seed(s) per variant\n{table}\nnegative transfer (HURTS): {', '.join(flagged) or 'none'}"
    )
    print(f"Written to {output}")
    return report


if __name__ == "__main__":
    main()
