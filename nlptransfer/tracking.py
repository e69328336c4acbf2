"""`--report_to tensorboard|mlflow|trackio`: experiment tracking that stays offline and inside the run.

transformers' own callbacks (`transformers.integrations`) do the logging; this module only points them into
the run's output directory before the Trainer starts, and checks that their packages are installed:

- tensorboard: `<output_dir>/runs/<date_host>/` (`TENSORBOARD_LOGGING_DIR`; every trainer of the run logs
  there, also those whose checkpoints go to a scratch folder)
- mlflow: a local file store `<output_dir>/mlruns/` (`MLFLOW_TRACKING_URI=file:...`; `MLFLOW_ALLOW_FILE_STORE`,
  which mlflow >= 3.7 asks for), telemetry off
- trackio: its local SQLite database in `<output_dir>/trackio/` (`TRACKIO_DIR`); no Space, no server

A variable the user set beforehand (their own tracking server or folder) is left as it is. The folders belong
to the run (`TRACKING_DIRS`): run.json lists their files, `--overwrite_output_dir` replaces them.

    check_tracking(training_args.report_to)        # parse time: missing package -> one ConfigError line
    prepare_tracking(training_args)                # RunWriter.from_training_args, before any Trainer
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from nlptransfer.errors import ConfigError

logger = logging.getLogger("nlptransfer")

# back-end -> the folder of output_dir it writes into
TRACKING_DIRS = {"tensorboard": "runs", "mlflow": "mlruns", "trackio": "trackio"}
# back-end -> the packages that provide it (any one will do; transformers takes tensorboardX too)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboardX"), "mlflow": ("mlflow",), "trackio": ("trackio",)}
INSTALL = "pip install 'nlptransfer[tracking]'"
_OURS: dict[str, str] = {}  # the environment values this module set (a later run in-process may reset them)


def missing_trackers(report_to) -> list[str]:
    """The back-ends of `report_to` (tensorboard, mlflow, trackio) whose package is not installed."""
    return [
        name
        for name in report_to or []
        if name in PACKAGES and not any(importlib.util.find_spec(p) for p in PACKAGES[name])
    ]


def check_tracking(report_to) -> None:
    """One ConfigError line naming the extra to install when a tracking back-end's package is missing."""
    missing = missing_trackers(report_to)
    if missing:
        raise ConfigError(
            f"--report_to {', '.join(missing)} needs {', '.join(PACKAGES[m][0] for m in missing)}, which is "
            f"not installed: {INSTALL} (or pass --report_to none)"
        )


def _set(name: str, value: str) -> bool:
    """Set environment variable `name` unless the user set it (a value this module set earlier is ours)."""
    current = os.environ.get(name)
    if current is not None and current != _OURS.get(name):
        return False
    os.environ[name] = value
    _OURS[name] = value
    return True


def _drop_empty_folders(folder: Path) -> None:
    """Remove `folder` if it holds nothing but empty folders: what a replaced run's mlflow store leaves (its
    `.trash/`). mlflow creates its default experiment only in a store folder that does not exist yet."""
    if not folder.is_dir() or folder.is_symlink():
        return
    inside = list(folder.rglob("*"))
    if any(not p.is_dir() or p.is_symlink() for p in inside):
        return
    for sub in sorted(inside, key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    folder.rmdir()


def prepare_tracking(training_args) -> dict[str, str]:
    """Point the tracking back-ends of `training_args.report_to` into its output_dir (see the module doc);
    returns the environment variables set."""
    report_to = list(training_args.report_to or [])
    out = Path(training_args.output_dir).resolve()
    changed = {}
    if "tensorboard" in report_to:  # one folder per run, as the callback names it, also for the recipes whose
        # trainers write their checkpoints to a scratch folder (distill, multitask, domain_adaptation)
        stamp = f"{datetime.now():%b%d_%H-%M-%S}_{socket.gethostname()}"
        if _set("TENSORBOARD_LOGGING_DIR", str(out / TRACKING_DIRS["tensorboard"] / stamp)):
            changed["TENSORBOARD_LOGGING_DIR"] = os.environ["TENSORBOARD_LOGGING_DIR"]
    if "mlflow" in report_to:
        _drop_empty_folders(out / TRACKING_DIRS["mlflow"])
        if _set("MLFLOW_TRACKING_URI", (out / TRACKING_DIRS["mlflow"]).as_uri()):
            changed["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
        if _set("MLFLOW_DISABLE_TELEMETRY", "true"):
            changed["MLFLOW_DISABLE_TELEMETRY"] = "true"
        # mlflow >= 3.7 refuses a file store unless allowed: it is the one that needs no database
        if _set("MLFLOW_ALLOW_FILE_STORE", "true"):
            changed["MLFLOW_ALLOW_FILE_STORE"] = "true"
    if "trackio" in report_to:
        folder = str(out / TRACKING_DIRS["trackio"])
        if _set("TRACKIO_DIR", folder):
            changed["TRACKIO_DIR"] = folder
        # trackio reads TRACKIO_DIR once, when first imported: an earlier run of this process fixed it
        loaded = getattr(sys.modules.get("trackio.utils"), "TRACKIO_DIR", None)
        if loaded is not None and str(loaded) != os.environ["TRACKIO_DIR"]:
            logger.warning(
                "trackio was imported earlier in this process and logs to %s, not %s (run each recipe in its "
                "own process to keep trackio's files in the run)",
                loaded,
                os.environ["TRACKIO_DIR"],
            )
    if changed:
        logger.info("tracking: %s", ", ".join(f"{k}={v}" for k, v in changed.items()))
    return changed


def flush_tracking() -> None:
    """Let the tracking back-ends finish their writes before run.json lists the run's files: mlflow logs
    metrics from a background queue that its end of run does not wait for (trackio's `finish` does)."""
    mlflow = sys.modules.get("mlflow")
    if mlflow is None or not hasattr(mlflow, "flush_async_logging"):
        return
    try:
        mlflow.flush_async_logging()
    except Exception as err:  # noqa: BLE001 - a tracking hiccup must not fail a finished run
        logger.warning("mlflow: could not flush its pending logs (%s)", err)
