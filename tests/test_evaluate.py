"""Evaluating on the user's own labelled files (issue 21): `--eval_datasets` / `--eval_files` in both
classification recipes (the run's column mapping, per-entry overrides, which rows were scored),
`nlptransfer evaluate`, and the cosmetics of what they print and draw (support as a count, dataset names on
heatmaps, the per-class legend, binary tasks)."""

from __future__ import annotations

import json

import numpy as np

from nlptransfer.evaluation.metrics import per_class_report
from nlptransfer.reporting import build_report, figures

# ------------------------------------------------------------------------------------ item 14: cosmetics


def test_support_is_a_count_in_metrics_and_in_the_report(tmp_path):
    report = per_class_report([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"])
    assert all(type(s["support"]) is int for s in report.values() if isinstance(s, dict))
    run = tmp_path / "old-run"  # a run saved before: support as a float
    run.mkdir()
    old = {k: {**v, "support": float(v["support"])} if isinstance(v, dict) else v for k, v in report.items()}
    old["a"]["support"] = 100.0
    (run / "metrics.json").write_text(json.dumps({"recipe": "text_classification", "test_report": old}))
    _, md = build_report([run], tmp_path / "r.html")
    text = md.read_text()
    assert "| 100 " in text and "100.0000" not in text


def _captured(monkeypatch) -> list:
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"")
    return drawn


def test_heatmaps_name_datasets_not_absolute_paths(monkeypatch):
    drawn = _captured(monkeypatch)
    sets = ["/home/someone/data/reviews/site_a.csv", "/home/someone/data/reviews/site_b.csv", "vader-nyt"]
    figures.cross_domain_figure(["run"], sets, np.full((1, 3), 0.5), "t")
    figures.domain_heatmap_figure({"m": np.eye(2)}, ["/x/one/r.csv", "/x/two/r.csv"], title="t")
    cross, domains = drawn
    assert [t.get_text() for t in cross.axes[0].get_xticklabels()] == [
        "site_a.csv",
        "site_b.csv",
        "vader-nyt",
    ]
    assert [t.get_text() for t in domains.axes[0].get_yticklabels()] == ["one/r.csv", "two/r.csv"]


def test_per_class_legend_does_not_cover_the_bars(monkeypatch):
    drawn = _captured(monkeypatch)
    rows = [{"class": c, "precision": 1.0, "recall": 1.0, "f1-score": 1.0} for c in ("neg", "pos")]
    figures.per_class_figure(rows, "t")
    fig = drawn[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legends = list(fig.legends) + ([ax.get_legend()] if ax.get_legend() else [])
    assert legends
    for legend in legends:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
