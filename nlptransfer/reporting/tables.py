"""Tables as text: markdown tables and their cells (`format_mean_std`), the one CSV writer, the comparison's
summary, markdown and files, and the before/after table of continued pretraining."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlptransfer.evaluation.comparison import NOISE_RULE, ROW_KEYS, ComparisonResult, metric_label
from nlptransfer.evaluation.statistics import mean_std
from nlptransfer.reporting.figures import comparison_figure, data_efficiency_figure
from nlptransfer.runs import write_bytes_atomic, write_text_atomic

__all__ = [
    "csv_text",
    "format_cell",
    "format_mean_std",
    "format_summary",
    "markdown_table",
    "pretraining_table",
    "write_comparison",
]


def format_cell(value: Any) -> str:
    """A table cell: floats with 4 decimals, anything else as str()."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_mean_std(values: Sequence[float], signed: bool = False) -> str:
    """Repeated runs' scores as a cell: "0.7512 ± 0.0123" (mean ± sample std, 4 decimals), a single run as
    its value alone; `signed` puts a sign on the mean (differences: "+0.0210 ± 0.0100")."""
    fmt = "{:+.4f}" if signed else "{:.4f}"
    if len(values) == 1:
        return fmt.format(values[0])
    mean, std = mean_std(np.asarray(values, dtype=np.float64))
    return f"{fmt.format(mean)} ± {std:.4f}"


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-markdown table; also readable as plain text in a terminal. Floats with 4 decimals."""
    cells = [[format_cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(list(columns)), sep] + [line(r) for r in cells])


def pretraining_table(metrics: Mapping[str, Any]) -> str:
    """The `metrics.json` of a continued-pretraining run as markdown: held-out masked-LM loss and perplexity
    before training, after the head warm-up (when there was one) and after training, then the fertility (subwords per word) of the base and the used tokenizer."""
    stages = {"before": "before training", "after_warmup": "after head warm-up", "after": "after training"}
    losses = [
        {
            "model": label,
            "mlm_loss": metrics[f"mlm_loss_{when}"],
            "perplexity": metrics[f"perplexity_{when}"],
        }
        for when, label in stages.items()
        if f"mlm_loss_{when}" in metrics
    ]
    fertility = [
        {
            "tokenizer": name,
            "subwords_per_word": report["fertility"],
            "fragmented_words": report["fragmented_rate"],
            "unknown_words": report["unknown_rate"],
        }
        for name, report in (("base", metrics["fertility_base_tokenizer"]), ("used", metrics["fertility"]))
    ]
    return (
        markdown_table(losses, ["model", "mlm_loss", "perplexity"])
        + "\n\n"
        + markdown_table(fertility, ["tokenizer", "subwords_per_word", "fragmented_words", "unknown_words"])
    )


def csv_text(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    lineterminator: str = "\n",
) -> str:
    """CSV (the csv module's quoting: commas, quotes and newlines in values round-trip through csv.reader).

    columns: the header, in order; default: every key of `rows` in first-seen order. A missing value is an
    empty cell; keys not in `columns` are left out.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(columns), restval="", extrasaction="ignore", lineterminator=lineterminator
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------ the comparison


def _comparison_table(result: ComparisonResult) -> str:
    rows = []
    for s in result.summary:
        row = {
            "method": s["method"],
            "kind": s["kind"],
            "train size": result.size_label(s["train_size"]),
            "seeds": str(s["n_seeds"]),
        }
        for m in result.shown_metrics:
            row[metric_label(m)] = f"{s[f'{m}_mean']:.4f} ± {s[f'{m}_std']:.4f}"
        rows.append(row)
    columns = ["method", "kind", "train size", "seeds"] + [metric_label(m) for m in result.shown_metrics]
    return markdown_table(rows, columns)


def _bottom_line(result: ComparisonResult, size: int) -> str:
    verdicts = [v for v in result.verdicts if v.train_size == size]
    if not verdicts:
        return "No transfer method was run: nothing to judge."
    at = f"at {result.size_label(size)} training examples"
    helped = [v.method for v in verdicts if v.outcome == "helped"]
    negative = [v.method for v in verdicts if v.outcome == "negative"]
    if all(v.outcome in ("no noise estimate", "too few seeds") for v in verdicts):
        n = max(v.n_seeds for v in verdicts)
        if result.partial:
            return f"Bottom line {at}: {n} paired seed(s) finished, so no verdict yet; finish with --resume true."
        return f"Bottom line {at}: {n} seed{'s' * (n != 1)}, so no verdict; rerun with 3 or more seeds."
    if all(v.outcome == "no baseline" for v in verdicts):
        return f"Bottom line {at}: no target-only baseline, so no verdict."
    if helped:
        line = f"Bottom line {at}: transfer helped beyond noise with {', '.join(helped)}."
    else:
        line = f"Bottom line {at}: NO transfer strategy beat the best target-only baseline beyond noise."
    if negative:
        line += f" NEGATIVE transfer (worse than the baseline beyond noise): {', '.join(negative)}."
    return line


def _verdict_lines(result: ComparisonResult) -> list[str]:
    lines = []
    for size in reversed(result.train_sizes):
        verdicts = [v for v in result.verdicts if v.train_size == size]
        if not verdicts:
            continue
        lines.append(f"At {result.size_label(size)} training examples:")
        lines += [f"  {v.text}" for v in verdicts]
    return lines


def format_summary(result: ComparisonResult) -> str:
    """The aggregated table, the noise rule, a verdict per transfer method and size, and a bottom line."""
    lines = [
        f"Did transfer help? {metric_label(result.metric)} on the test split, {result.seeds_note}",
        "",
        _comparison_table(result),
        "",
        f"Noise rule: {NOISE_RULE}",
        "",
        *_verdict_lines(result),
        "",
        _bottom_line(result, result.train_sizes[-1]),
    ]
    return "\n".join(lines)


def write_comparison(result: ComparisonResult, output_dir: str | Path) -> list[str]:
    """Write the comparison files into `output_dir`; returns their names relative to it.

    comparison.csv: one row per method x train size x seed, every metric.
    comparison_summary.csv: one row per method x train size, mean and std of every metric.
    comparison.md: settings, noise rule, verdicts and the aggregated table.
    comparison.png: bars (mean ± std, seeds as dots) per method at the largest train size.
    With more than one train size: data_efficiency.csv and data_efficiency.png (score vs labelled examples).
    An interrupted comparison (`result.partial`): the CSVs and comparison.md marked PARTIAL, no figures.
    """
    out = Path(output_dir)
    metrics = result.metric_names
    write_text_atomic(out / "comparison.csv", csv_text(result.rows, list(ROW_KEYS) + metrics))
    summary_columns = ["method", "kind", "train_size", "n_seeds"] + [
        f"{m}_{stat}" for m in metrics for stat in ("mean", "std")
    ]
    write_text_atomic(out / "comparison_summary.csv", csv_text(result.summary, summary_columns))
    files = ["comparison.csv", "comparison_summary.csv", "comparison.md"]
    if result.partial:  # no figures of an interrupted comparison: comparison.md says what is missing
        write_text_atomic(out / "comparison.md", _comparison_markdown(result, files))
        return files
    files.append("comparison.png")
    write_bytes_atomic(out / "comparison.png", comparison_figure(result))
    if len(result.train_sizes) > 1:
        m = result.metric
        curve_columns = ["method", "kind", "train_size", "n_seeds", f"{m}_mean", f"{m}_std"]
        curve = sorted(result.summary, key=lambda s: (result.methods.index(s["method"]), s["train_size"]))
        write_text_atomic(out / "data_efficiency.csv", csv_text(curve, curve_columns))
        write_bytes_atomic(out / "data_efficiency.png", data_efficiency_figure(result))
        files += ["data_efficiency.csv", "data_efficiency.png"]
    write_text_atomic(out / "comparison.md", _comparison_markdown(result, files))
    return files


def _comparison_markdown(result: ComparisonResult, files: list[str]) -> str:
    sizes = ", ".join(result.size_label(s) for s in result.train_sizes)
    lines = ["# Did transfer help?" + (" (PARTIAL)" if result.partial else ""), ""]
    if result.partial:
        lines += [
            f"**PARTIAL: {len(result.rows)} of {result.jobs_total} runs finished** (the comparison was "
            "interrupted; rerun the same command with `--resume true` to finish it). Verdicts below use only "
            "the finished runs.",
            "",
        ]
    lines += [
        f"- Metric for verdicts: {metric_label(result.metric)} (`{result.metric}`) on the test split",
        f"- Seeds: {result.seeds_note}",
        f"- Train sizes: {sizes} of {result.n_train} training examples "
        "(stratified, seeded subsets; every method gets the same subset for a given size and seed)",
        f"- Target-only baselines: {', '.join(result.baselines) or 'none'}",
        f"- Transfer methods: {', '.join(result.transfer) or 'none'}",
        f"- Noise rule: {NOISE_RULE}",
        "",
        "## Verdicts",
        "",
        _bottom_line(result, result.train_sizes[-1]),
        "",
    ]
    for size in reversed(result.train_sizes):
        verdicts = [v for v in result.verdicts if v.train_size == size]
        if verdicts:
            lines += [f"At {result.size_label(size)} training examples:", ""]
            lines += [f"- {v.text}" for v in verdicts] + [""]
    lines += ["## Results (mean ± std)", "", _comparison_table(result), "", "## Files", ""]
    lines += [f"- `{f}`" for f in files]
    return "\n".join(lines) + "\n"
