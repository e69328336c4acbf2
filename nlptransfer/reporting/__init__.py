"""What runs write for people to read: tables, model cards, figures and the HTML report.

- `tables`: markdown tables, the one CSV writer (`csv_text`), the comparison's summary and files.
- `cards`: model cards (README.md of an output directory), all through `render_card`.
- `figures`: every figure as PNG bytes, drawn on an explicit Agg canvas (never pyplot).
- `html`: `nlptransfer report`, an HTML + markdown report of run directories.
"""

from __future__ import annotations

from nlptransfer.reporting.cards import model_card, pretraining_card, render_card
from nlptransfer.reporting.figures import domain_heatmap_figure
from nlptransfer.reporting.html import build_report, load_run, run_figures
from nlptransfer.reporting.tables import (
    csv_text,
    format_mean_std,
    format_summary,
    markdown_table,
    pretraining_table,
    write_comparison,
)

__all__ = [
    "build_report",
    "csv_text",
    "domain_heatmap_figure",
    "format_mean_std",
    "format_summary",
    "load_run",
    "markdown_table",
    "model_card",
    "pretraining_card",
    "pretraining_table",
    "render_card",
    "run_figures",
    "write_comparison",
]
