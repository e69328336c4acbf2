"""`--compare` that survives interruption: each finished job kept in the run directory, reused on `--resume`.

    store = RunJobStore(run)                       # compare_jobs/<key>.json, written through the RunWriter
    fingerprint = settings_fingerprint(config, splits)
    run_jobs(result, methods, store=store, fingerprint=fingerprint)   # nlptransfer.evaluation.comparison

A job's file is named by `comparison.job_key`: its method, training subset and seed, and the fingerprint of
every other setting (config.yaml minus the run-control keys in `RUN_CONTROL`) and of the data. A resumed run
with the same settings reads the finished jobs back; any changed setting or data gives other keys, so an
old result is never silently reused (its file stays, listed in run.json, unused).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from nlptransfer.run_dirs import COMPARE_JOBS, read_run_file
from nlptransfer.runs import RunWriter

__all__ = ["COMPARE_JOBS", "RUN_CONTROL", "RunJobStore", "settings_fingerprint"]

logger = logging.getLogger("nlptransfer")

# Config keys that change no job's result: where the run goes and how it reports, and what selects the jobs
# (each job's key carries its own seed, train size and method).
RUN_CONTROL = frozenset(
    {
        "output_dir",
        "overwrite_output_dir",
        "resume",
        "resume_from_checkpoint",
        "keep_checkpoints",
        "logging_dir",
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "run_name",
        "report_to",
        "disable_tqdm",
        "log_level",
        "log_level_replica",
        "push_to_hub",
        "seed",
        "seeds",
        "train_sizes",
        "compare",
        "compare_strategies",
        "scratch",
        "eval_datasets",
    }
)


def settings_fingerprint(config: Mapping[str, Any], splits: Mapping[str, Any]) -> str:
    """A hash of every result-changing setting of `config` (config.yaml's dict) and of the data (`splits`:
    name -> datasets.Dataset; rows and label names)."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in config.items() if k not in RUN_CONTROL and not k.startswith("hub_")}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode("utf-8"))
    for name in sorted(splits):
        split = splits[name]
        digest.update(f"{name}:{split.features}".encode())
        digest.update(json.dumps(split.to_dict(), sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


class RunJobStore:
    """Finished compare jobs as `compare_jobs/<key>.json` in the run (atomic writes, listed in run.json)."""

    def __init__(self, run: RunWriter):
        self.run = run

    def load(self, key: str) -> dict[str, float] | None:
        if not self.run.resumed:  # a new run's directory holds no job of this run
            return None
        record = read_run_file(self.run.output_dir / COMPARE_JOBS / f"{key}.json")
        scores = record.get("scores")
        return scores if record.get("key") == key and isinstance(scores, dict) else None

    def save(self, key: str, record: dict[str, Any]) -> None:
        self.run.write_json(f"{COMPARE_JOBS}/{key}.json", {"key": key, **record})
