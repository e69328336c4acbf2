"""HTML + markdown reports of run directories (`nlptransfer report DIR [DIR ...]`).

Reads what a run saved (`metrics.json`, `config.yaml`, `config.json`, `run.json`, comparison files and,
when present, the Trainer's `trainer_state.json` at the top level or in the newest `checkpoint-*/`) and
writes one self-contained HTML file (figures inlined as base64 PNG) and a markdown file beside it (figures
in `<name>_files/`). The figures come from `nlptransfer.reporting.figures`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlptransfer.errors import DataError
from nlptransfer.reporting.figures import confusion_figure, cross_domain_figure, loss_figure, per_class_figure
from nlptransfer.reporting.tables import format_cell, markdown_table
from nlptransfer.run_dirs import read_run_file
from nlptransfer.runs import write_text_atomic

__all__ = ["NO_LOG", "Run", "build_report", "load_run", "run_figures"]

NO_LOG = (
    "no training log saved (no trainer_state.json in the run directory or a checkpoint-*/ folder, and no "
    "log_history in metrics.json)"
)
# Config keys that differ between any two runs but say nothing about the method.
_IGNORED_DIFF = {"output_dir", "run_name", "hub_token", "logging_dir"}
# Result files shown as they are: --compare's, and the tables of the recipes that train several models.
_EXTRAS = (
    "comparison.png",
    "data_efficiency.png",
    "comparison.md",
    "results.md",
    "cross_domain.md",
    "cross_domain.png",
)


@dataclass
class Run:
    path: Path
    name: str
    metrics: dict
    config: dict
    model_config: dict
    status: str
    log_history: list[dict] | None
    log_source: str | None
    extras: dict[str, Path] = field(default_factory=dict)
    record: dict = field(default_factory=dict)  # run.json: recipe, status, started/finished times

    @property
    def label_names(self) -> list[str]:
        id2label = self.model_config.get("id2label") or {}
        if id2label:
            return [id2label[k] for k in sorted(id2label, key=int)]
        report = self.metrics.get("in_domain_report") or self.metrics.get("test_report") or {}
        return [
            k
            for k in report
            if k not in ("accuracy", "macro avg", "weighted avg", "micro avg", "samples avg")
        ]


def _log_history(path: Path, metrics: dict) -> tuple[list[dict] | None, str | None]:
    if isinstance(metrics.get("log_history"), list):
        return metrics["log_history"], "metrics.json"
    candidates = [path / "trainer_state.json"]
    checkpoints = sorted(
        path.glob("checkpoint-*/trainer_state.json"),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    candidates += list(reversed(checkpoints))  # newest checkpoint holds the longest history
    for candidate in candidates:
        if candidate.is_file():
            state = read_run_file(candidate)
            if state.get("log_history"):
                return state["log_history"], str(candidate.relative_to(path))
    return None, None


def load_run(path: Path) -> Run:
    if not path.is_dir():
        raise DataError(f"{path} is not a directory; pass run output directories to nlptransfer report")
    metrics = read_run_file(path / "metrics.json")
    comparison = path / "comparison.md"
    if not metrics and not comparison.is_file():
        raise DataError(
            f"{path} has no metrics.json or comparison.md; pass the output directory of a finished run"
        )
    config = read_run_file(path / "config.yaml")
    record = read_run_file(path / "run.json")
    history, source = _log_history(path, metrics)
    extras = {name: path / name for name in _EXTRAS if (path / name).is_file()}
    return Run(
        path=path,
        name=path.name or str(path),
        metrics=metrics,
        config=config,
        model_config=read_run_file(path / "config.json"),
        status=record.get("status", "unknown"),
        log_history=history,
        log_source=source,
        extras=extras,
        record=record,
    )


# ----------------------------------------------------------------------------------------------
# figures


def confusion_data(run: Run) -> tuple[list[list[int]], list[str]] | None:
    matrix = run.metrics.get("in_domain_confusion_matrix") or run.metrics.get("test_confusion_matrix")
    names = run.label_names
    if not matrix or not isinstance(matrix[0], list) or len(matrix) != len(names):
        return None
    if not all(isinstance(v, (int, float)) for row in matrix for v in row):
        return None  # multi-label: one 2x2 matrix per label
    return matrix, names


def per_class(run: Run) -> list[dict]:
    report = run.metrics.get("in_domain_report") or run.metrics.get("test_report") or {}
    return [  # support is a count: an int even from runs that saved it as a float
        {"class": name, **{k: int(v) if k == "support" and v == int(v) else v for k, v in scores.items()}}
        for name, scores in report.items()
        if isinstance(scores, dict) and name not in ("macro avg", "weighted avg", "micro avg", "samples avg")
    ]


def run_figures(run: Run) -> dict[str, bytes]:
    """PNGs of what `run` saved, by file name: loss_curve.png, confusion_matrix.png, per_class.png.

    Only those its metrics allow (no training log: no loss curve; multi-label: no confusion matrix).
    """
    figures = {}
    loss = loss_figure(run.log_history or [], f"{run.name}: loss")
    if loss is not None:
        figures["loss_curve.png"] = loss
    confusion = confusion_data(run)
    if confusion is not None:
        title = f"{run.name}: confusion (colour = share of true class)"
        figures["confusion_matrix.png"] = confusion_figure(*confusion, title)
    rows = per_class(run)
    if rows:
        figures["per_class.png"] = per_class_figure(rows, f"{run.name}: per-class scores (test)")
    return figures


def cross_domain(runs: list[Run]) -> tuple[list[str], list[str], dict] | None:
    """(run names, test sets, {(run, set): scores}) when a run has several test sets."""
    sets: list[str] = []
    scores: dict[tuple[str, str], dict] = {}
    for run in runs:
        test = run.metrics.get("test") or {}
        nested = {k: v for k, v in test.items() if isinstance(v, dict)}
        if len(nested) < 2:
            continue
        for name, values in nested.items():
            if name not in sets:
                sets.append(name)
            scores[(run.name, name)] = values
    names = [r.name for r in runs if any((r.name, s) in scores for s in sets)]
    return (names, sets, scores) if names else None


def _cross_domain_png(names: list[str], sets: list[str], scores: dict, metric: str = "f1_macro") -> bytes:
    grid = np.array([[scores.get((n, s), {}).get(metric, np.nan) for s in sets] for n in names], dtype=float)
    return cross_domain_figure(names, sets, grid, f"cross-domain test {metric}")


# ----------------------------------------------------------------------------------------------
# tables


def _flat(prefix: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix: values}
    out = {}
    for k, v in values.items():
        out.update(_flat(f"{prefix}/{k}" if prefix else str(k), v))
    return out


def overview_rows(runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        c = run.config
        trainable, total = run.metrics.get("trainable_parameters"), run.metrics.get("total_parameters")
        seconds, whole_run = train_seconds(run)
        minutes = "" if seconds is None else f"{seconds / 60:.1f}" + (" (whole run)" if whole_run else "")
        rows.append(
            {
                "run": run.name,
                "recipe": run.metrics.get("recipe") or run.record.get("recipe") or "",
                "status": run.status,
                "model": _model(c),
                "dataset": _dataset(c, run.metrics),
                "strategy": c.get("strategy") or "",
                "trainable params": f"{trainable:,} / {total:,}" if trainable and total else "",
                "train minutes": minutes,
            }
        )
    return rows


def _model(config: dict) -> str:
    if config.get("model_name_or_path"):
        return str(config["model_name_or_path"])
    if "parent_model" in config:  # translation_pair: a parent from disk/Hub, or one it trains itself
        return str(config["parent_model"] or f"parent trained on {config.get('parent_dataset', '')}")
    return ""


def _dataset(config: dict, metrics: dict) -> str:
    """What the run trained on, in each recipe's own terms."""
    for key in ("dataset", "child_dataset", "corpus"):
        if config.get(key):
            return str(config[key])
    if config.get("source") and config.get("target"):  # domain_adaptation
        return f"{config['source']} -> {config['target']}"
    tasks = metrics.get("tasks") or []  # multitask: the tasks' datasets
    names = [t.get("dataset") or t.get("name") for t in tasks if isinstance(t, dict)]
    return ", ".join(str(n) for n in names if n) or str(metrics.get("dataset") or "")


def train_seconds(run: Run) -> tuple[float | None, bool]:
    """(seconds, whole_run): the training time metrics.json records (a run's `train.wall_seconds`, or the
    sum of each trained model's `train_seconds`), else the run's wall time from run.json (whole_run=True:
    --compare and recipes that time their models together); None when neither is known."""
    train = run.metrics.get("train")
    if isinstance(train, dict) and isinstance(train.get("wall_seconds"), int | float):
        return float(train["wall_seconds"]), False
    found = _values(run.metrics, "train_seconds")
    if found:
        return float(sum(found)), False
    started, ended = run.record.get("started"), run.record.get("finished") or run.record.get("failed")
    if isinstance(started, int | float) and isinstance(ended, int | float):
        return float(ended - started), True
    return None, False


def _values(obj: Any, key: str) -> list[float]:
    """Every number stored under `key` at any depth of a JSON value."""
    if isinstance(obj, dict):
        here = [float(v) for k, v in obj.items() if k == key and isinstance(v, int | float)]
        return here + [x for k, v in obj.items() if k != key for x in _values(v, key)]
    if isinstance(obj, list):
        return [x for v in obj for x in _values(v, key)]
    return []


_METRICS = ("accuracy", "f1_micro", "f1_macro", "precision_macro", "recall_macro", "f1_samples")


def metric_rows(runs: list[Run]) -> list[dict]:
    rows = []
    for run in runs:
        for split in ("validation", "test"):
            values = run.metrics.get(split) or {}
            groups = (
                {k: v for k, v in values.items() if isinstance(v, dict)}
                if any(isinstance(v, dict) for v in values.values())
                else {split: values}
            )
            for name, scores in groups.items():
                row = {"run": run.name, "split": split if name == split else f"{split}: {name}"}
                for m in _METRICS:
                    v = scores.get(m, scores.get(f"eval_{m}"))
                    if v is not None:
                        row[m] = v
                if len(row) > 2:
                    rows.append(row)
    return rows


def config_diff(runs: list[Run]) -> list[dict]:
    """Keys whose values differ between the runs that saved a config.yaml, among the keys every one of them
    has (a recipe's own settings are not a difference from another recipe's run; output_dir and similar
    bookkeeping keys left out)."""
    configs = [run.config for run in runs if run.config]
    keys = [k for k in (configs[0] if configs else {}) if all(k in c for c in configs[1:])]
    rows = []
    for key in keys:
        if key in _IGNORED_DIFF:
            continue
        values = [c[key] for c in configs]
        if any(v != values[0] for v in values[1:]):
            named = zip((run for run in runs if run.config), values, strict=True)
            rows.append({"key": key, **{run.name: json.dumps(v) for run, v in named}})
    return rows


def _unique_names(runs: list[Run]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        base = run.name
        if base in seen:
            seen[base] += 1
            run.name = f"{base} ({run.path.parent.name or seen[base]})"
        else:
            seen[base] = 1


# ----------------------------------------------------------------------------------------------
# assembling HTML + markdown


class _Doc:
    """Collects sections once and renders them both as HTML and as markdown."""

    def __init__(self, md_dir: Path, files_dir: Path):
        self.html: list[str] = []
        self.md: list[str] = []
        self.sections: list[str] = []
        self.files_dir = files_dir
        self.md_dir = md_dir
        self.images: list[Path] = []

    def heading(self, text: str, level: int = 2) -> None:
        if level == 2:
            self.sections.append(text)
        slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        self.html.append(f'<h{level} id="{slug}">{html.escape(text)}</h{level}>')
        self.md.append(f"{'#' * level} {text}\n")

    def text(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def table(self, rows: list[dict], columns: list[str] | None = None) -> None:
        if not rows:
            self.text("(nothing to show)")
            return
        if columns is None:
            columns = []
            for r in rows:
                columns += [k for k in r if k not in columns]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(format_cell(r.get(c, '')))}</td>" for c in columns) + "</tr>"
            for r in rows
        )
        self.html.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        self.md.append(markdown_table(rows, columns) + "\n")

    def image(self, png: bytes, name: str, alt: str) -> None:
        data = base64.b64encode(png).decode("ascii")
        self.html.append(
            f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'
        )
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / name
        path.write_bytes(png)
        self.images.append(path)
        self.md.append(f"![{alt}]({path.relative_to(self.md_dir).as_posix()})\n")

    def pre(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append(f"```\n{text.rstrip()}\n```\n")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}td{text-align:right}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow-x:auto}nav a{margin-right:1em}"""


def build_report(dirs: list[Path], output: Path) -> tuple[Path, Path]:
    """Write `output` (HTML) and `output.with_suffix('.md')`; return both paths."""
    runs = [load_run(Path(d)) for d in dirs]
    _unique_names(runs)
    output = Path(output)
    md_path = output.with_suffix(".md")
    doc = _Doc(md_path.parent, output.parent / f"{output.stem}_files")
    figures = {run.name: run_figures(run) for run in runs}

    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")

    doc.heading("Runs")
    doc.table(overview_rows(runs))

    doc.heading("Metrics")
    doc.table(metric_rows(runs))

    doc.heading("Loss curves")
    for run in runs:
        png = figures[run.name].get("loss_curve.png")
        if png is None:
            doc.text(f"{run.name}: {NO_LOG}.")
        else:
            doc.text(f"{run.name}: from {run.log_source}.")
            doc.image(png, f"loss_{slug(run.name)}.png", f"{run.name} loss curves")

    doc.heading("Confusion matrix")
    for run in runs:
        png = figures[run.name].get("confusion_matrix.png")
        if png is None:
            doc.text(f"{run.name}: no single-label confusion matrix in metrics.json.")
        else:
            which = "in-domain test" if "in_domain_confusion_matrix" in run.metrics else "test"
            doc.text(f"{run.name} ({which} split; rows: true class, columns: predicted):")
            doc.image(png, f"confusion_{slug(run.name)}.png", f"{run.name} confusion matrix")

    doc.heading("Per-class scores")
    for run in runs:
        rows = per_class(run)
        if not rows:
            doc.text(f"{run.name}: no per-class report in metrics.json.")
            continue
        doc.heading(run.name, level=3)
        doc.table(rows)
        doc.image(
            figures[run.name]["per_class.png"],
            f"per_class_{slug(run.name)}.png",
            f"{run.name} per-class scores",
        )
        saved = run.metrics.get("thresholds")
        if saved and isinstance(saved, (dict, list)):  # a hand-edited list: shown by position
            pairs = (
                saved.items() if isinstance(saved, dict) else ((f"#{i + 1}", v) for i, v in enumerate(saved))
            )
            doc.text("Decision thresholds tuned on validation (multi-label):")
            doc.table([{"label": k, "threshold": v} for k, v in pairs])

    cross = cross_domain(runs)
    if cross is not None:
        doc.heading("Cross-domain")
        names, sets, scores = cross
        doc.table(
            [
                {"run": n, "metric": m, **{s: scores.get((n, s), {}).get(m, "") for s in sets}}
                for n in names
                for m in ("f1_micro", "f1_macro")
            ]
        )
        doc.image(_cross_domain_png(names, sets, scores), "cross_domain.png", "cross-domain macro-F1")

    if any(run.extras for run in runs):
        doc.heading("Comparison")  # --compare's files, and the result tables of multi-model recipes
        for run in runs:
            for name, path in run.extras.items():
                if name.endswith(".png"):
                    doc.text(f"{run.name}: {name}")
                    doc.image(path.read_bytes(), f"{slug(run.name)}_{name}", f"{run.name} {name}")
                else:
                    doc.text(f"{run.name}: {name}")
                    doc.pre(path.read_text(encoding="utf-8"))

    doc.heading("Config differences")
    if len(runs) < 2:
        doc.text("One run: nothing to compare. Its main settings:")
        keys = (
            "model_name_or_path",
            "dataset",
            "strategy",
            "learning_rate",
            "num_train_epochs",
            "max_steps",
            "per_device_train_batch_size",
            "seed",
        )
        doc.table(
            [{"key": k, runs[0].name: json.dumps(runs[0].config.get(k))} for k in keys if k in runs[0].config]
        )
    else:
        rows = config_diff(runs)
        missing = [r.name for r in runs if not r.config]
        if missing:
            doc.text(f"No config.yaml in {', '.join(missing)}: left out of this comparison.")
        if len({r.metrics.get("recipe") or r.record.get("recipe") for r in runs}) > 1:
            doc.text("Runs of different recipes: only the settings they all have are compared.")
        if rows:
            doc.table(rows, ["key"] + [r.name for r in runs if r.config])
        else:
            doc.text("The runs' config.yaml files are identical (output_dir aside).")

    title = "nlptransfer report: " + ", ".join(r.name for r in runs)
    nav = "".join(
        f'<a href="#{re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")}">{html.escape(s)}</a>'
        for s in doc.sections
    )
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n<nav>{nav}</nav>\n"
        + "\n".join(doc.html)
        + "\n</body></html>\n"
    )
    write_text_atomic(output, page)
    write_text_atomic(md_path, f"# {title}\n\n" + "\n".join(doc.md))
    return output, md_path
