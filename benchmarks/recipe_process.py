"""One recipe run as its own process, for the benchmarks that compare runs (bench_strategies, bench_fewshot,
bench_wordvec): the process's wall time, its peak resident memory (os.wait4) and the machine's load average
taken *before* it starts (other work slows every timing; the run's own load is not counted)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path


def run_recipe(cmd: list[str], log_path: Path, cwd: Path | None = None) -> dict:
    """Run `cmd` with its output in `log_path`; SystemExit naming the log if it fails. Returns
    `process_seconds`, `peak_rss_mb` and `load_before`."""
    load_before = os.getloadavg()[0]
    started = time.time()
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {code}); see {log_path}")
    return {
        "process_seconds": round(time.time() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "load_before": load_before,
    }


def mean_std(values: list[float]) -> str:
    """`mean ± std` of a benchmark cell (3 decimals; std 0 for one value), `-` for none."""
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"
