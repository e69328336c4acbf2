"""Every figure nlptransfer draws, as PNG bytes.

One way to drive matplotlib: an explicit `matplotlib.figure.Figure` on its own `FigureCanvasAgg`. No pyplot,
so no global backend switch, no figure registry to leak into, no GUI: safe in any process, including a
notebook or a caller that uses pyplot itself. Each public function takes plain data and returns the PNG.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from nlptransfer.evaluation.comparison import metric_label
from nlptransfer.evaluation.statistics import mean_std

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nlptransfer.evaluation.comparison import ComparisonResult

__all__ = [
    "comparison_figure",
    "confusion_figure",
    "cross_domain_figure",
    "data_efficiency_figure",
    "dataset_labels",
    "domain_heatmap_figure",
    "hpo_figure",
    "loss_figure",
    "per_class_figure",
]

_BASELINE_GREYS = ("#4d4d4d", "#a6a6a6", "#7a7a7a", "#bfbfbf")
_TICK_CHARS = 24  # longer tick labels (file paths as domain or test-set names) keep their last characters


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def dataset_labels(names: Sequence[str]) -> list[str]:
    """How datasets are named on a figure: a file or folder path by its last part (`/data/site_a.csv` ->
    `site_a.csv`), with as many parent folders as it takes to tell apart two of the same name; embedded and
    Hub names as they are."""
    names = [str(n) for n in names]
    parts = [PurePath(n).parts if ("/" in n or "\\" in n) else (n,) for n in names]
    depth = 1
    while True:
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(set(names)) or depth >= max(len(p) for p in parts):
            return labels
        depth += 1


def _ticks(labels: Sequence[str]) -> list[str]:
    """Dataset names as tick labels (`dataset_labels`) of at most _TICK_CHARS characters: a longer one
    becomes "…" + its end."""
    return [s if len(s) <= _TICK_CHARS else "…" + s[-(_TICK_CHARS - 1) :] for s in dataset_labels(labels)]


def _heatmap(
    ax: Axes,
    values: np.ndarray,
    texts: Sequence[Sequence[str]],
    *,
    cmap: str,
    vmin: float,
    vmax: float,
    aspect: str = "equal",
    fontsize: float | None = None,
):
    """`values` as colours, `texts` written on the cells (NaN cells stay blank); returns the image."""
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect=aspect)
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            continue
        r, g, b, _ = im.cmap(im.norm(value))
        dark_cell = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
        color = "white" if dark_cell else "black"
        ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=fontsize, color=color)
    return im


def loss_figure(history: Sequence[Mapping[str, Any]], title: str) -> bytes | None:
    """Training and validation loss per optimizer step from a Trainer `log_history`; None without losses."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h and "step" in h]
    if not train and not evals:
        return None
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", marker=".")
    if evals:
        ax.plot(*zip(*evals, strict=True), label="validation loss", marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def confusion_figure(matrix: Sequence[Sequence[float]], names: Sequence[str], title: str) -> bytes:
    """Counts on the cells, coloured by their share of the true class (rows: true, columns: predicted)."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(3.5, 0.8 * len(names) + 2)
    fig = _figure(size, size * 0.85)
    ax = fig.add_subplot()
    texts = [[f"{int(c)}" for c in row] for row in counts]
    im = _heatmap(ax, share, texts, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def per_class_figure(rows: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Precision, recall and F1 bars per class; `rows` hold "class" and those scores (a classification report)."""
    fig = _figure(max(5.0, 1.2 * len(rows)), 3.5)
    ax = fig.add_subplot()
    x = np.arange(len(rows))
    for k, metric in enumerate(("precision", "recall", "f1-score")):
        ax.bar(x + (k - 1) * 0.27, [r.get(metric, 0) for r in rows], width=0.27, label=metric)
    ax.set_xticks(x, [r["class"] for r in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    # Below the axes (under the class names), never over the bars: a score of 1.0 fills the axes' height.
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def cross_domain_figure(runs: Sequence[str], test_sets: Sequence[str], grid: np.ndarray, title: str) -> bytes:
    """A score per run (rows) and test set (columns), in 0..1; NaN cells are left blank."""
    grid = np.asarray(grid, dtype=float)
    fig = _figure(1.6 * len(test_sets) + 2, 0.6 * len(runs) + 1.6)
    ax = fig.add_subplot()
    texts = [[f"{v:.3f}" for v in row] for row in grid]
    im = _heatmap(ax, grid, texts, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(test_sets)), _ticks(test_sets), rotation=20, ha="right")
    ax.set_yticks(range(len(runs)), _ticks(runs))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def domain_heatmap_figure(
    panels: Mapping[str, np.ndarray],
    domains: Sequence[str],
    *,
    title: str,
    vmin: float = 0.0,
    vmax: float = 1.0,
) -> bytes:
    """One source (rows) x target (columns) heatmap per panel, side by side, sharing `domains` as ticks
    (source names only left of the first panel)."""
    fig = _figure(3.2 * len(panels) + 1, 3.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    ticks = _ticks(domains)
    for k, (ax, (name, grid)) in enumerate(zip(axes, panels.items(), strict=True)):
        grid = np.asarray(grid, dtype=float)
        texts = [[f"{v:.2f}" for v in row] for row in grid]
        _heatmap(ax, grid, texts, cmap="viridis", vmin=vmin, vmax=vmax, fontsize=8)
        ax.set_xticks(range(len(domains)), ticks, rotation=30, ha="right")
        ax.set_yticks(range(len(domains)), ticks if k == 0 else [])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("target (test half)")
    axes[0].set_ylabel("source (trained on)")
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def _method_colors(result: ComparisonResult) -> dict[str, Any]:
    """Greys for the target-only baselines, tab10 colours for the transfer methods."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colors: dict[str, Any] = {m: _BASELINE_GREYS[i % 4] for i, m in enumerate(result.baselines)}
    colors |= {m: cmap(i % 10) for i, m in enumerate(result.transfer)}
    return colors


def comparison_figure(result: ComparisonResult) -> bytes:
    """Bars (mean ± std, seeds as dots) per method at the largest train size; the best baseline dashed."""
    size = result.train_sizes[-1]
    methods = result.methods
    fig = _figure(max(4.0, 1.1 * len(methods) + 2), 4.0)
    ax = fig.add_subplot()
    colors = _method_colors(result)
    for i, m in enumerate(methods):
        scores = result.scores(m, size)
        mean, std = mean_std(scores)
        ax.bar(
            i,
            mean,
            yerr=std if len(scores) > 1 else None,
            capsize=5,
            color=colors[m],
            hatch="//" if m in result.baselines else None,
            edgecolor="black",
            linewidth=0.6,
        )
        ax.scatter(np.full(len(scores), i), scores, color="black", s=12, zorder=3)
    if result.baselines:
        best = max(mean_std(result.scores(b, size))[0] for b in result.baselines)
        ax.axhline(best, color="black", linestyle="--", linewidth=0.8, label="best target-only baseline")
        ax.legend(loc="lower right", fontsize=8)
    crowded = len(methods) > 4
    ax.set_xticks(
        np.arange(len(methods)), methods, rotation=20 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.set_ylabel(f"{metric_label(result.metric)} (test)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{result.size_label(size)} training examples; {result.seeds_note}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def data_efficiency_figure(result: ComparisonResult) -> bytes:
    """Score (mean ± std band) against the number of labelled training examples, log x axis."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    colors = _method_colors(result)
    sizes = np.array(result.train_sizes, dtype=float)
    for m in result.methods:
        stats = np.array([mean_std(result.scores(m, s)) for s in result.train_sizes])
        mean, std = stats[:, 0], stats[:, 1]
        style = "--" if m in result.baselines else "-"
        ax.plot(sizes, mean, style, marker="o", color=colors[m], label=m)
        ax.fill_between(sizes, mean - std, mean + std, color=colors[m], alpha=0.15, linewidth=0)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    per = " per class" if result.per_class else ""
    ax.set_xlabel(f"labelled training examples{per} (log scale)")
    ax.set_ylabel(f"{metric_label(result.metric)} (test)")
    ax.set_title(f"Data efficiency; {result.seeds_note}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def hpo_figure(rows: Sequence[Mapping[str, Any]], metric: str, maximize: bool = True) -> bytes:
    """A hyperparameter search (`hpo_trials.csv` rows): each trial's validation `metric` (pruned trials:
    their last reported value, hollow), and the best finished trial so far."""
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot()
    done = [(r["trial"], r[metric]) for r in rows if r["state"] == "COMPLETE" and r[metric] is not None]
    pruned = [(r["trial"], r[metric]) for r in rows if r["state"] == "PRUNED" and r[metric] is not None]
    if done:
        ax.plot(*zip(*done, strict=True), "o", color="C0", label="finished trial")
        pick = max if maximize else min
        best = [pick(v for _, v in done[: i + 1]) for i in range(len(done))]
        ax.step([t for t, _ in done], best, where="post", color="C1", label="best so far")
    if pruned:
        ax.plot(*zip(*pruned, strict=True), "o", mfc="none", color="C3", label="pruned (last value)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} ({'higher' if maximize else 'lower'} is better)")
    ax.set_title(f"Hyperparameter search: {len(rows)} trials", fontsize=9)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
