"""Do LogME / H-score / domain distances rank the sources as the trained models do? Re-read a matrix run.

    .venv/bin/python -m benchmarks.bench_source_selection outputs/domain-matrix-full   # `make domain-matrix`, step 2
    .venv/bin/python -m benchmarks.bench_source_selection outputs/domain-matrix --method none

Reads `metrics.json` of `python -m nlptransfer.recipes.domain_adaptation --matrix true` (12 ordered pairs of the
four VADER domains), recomputes `adaptation_report.ranking_agreement` for `--method` (Spearman and Kendall,
scipy, between each score and the trained macro-F1: over all pairs, and within each target's sources) and
prints one row per score plus the per-target orders. Writes `<run>/source_selection.md`. The scores are those
the run measured: LogME / H-score of the source-trained model's representation (`representation_scored`:
pooled when the encoder trained, logits when frozen) on the labelled target sample; distances on the
`features_measured` pooling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nlptransfer.adaptation_report import ranking_agreement, source_ranking
from nlptransfer.reporting import markdown_table
from nlptransfer.runs import write_text_atomic


def render(metrics: dict, method: str) -> str:
    results = list(metrics["pairs"].values())
    agreement = ranking_agreement(results, method)
    rows = [{"score": key, **values} for key, values in agreement.items()]
    scored = {r.get("representation_scored", "logits") for r in results}
    orders = [
        {"target": t, "by LogME": " > ".join(r["by_logme"]), "trained": " > ".join(r["by_trained_macro_f1"])}
        for t, r in source_ranking(results, method).items()
    ]
    return "\n\n".join(
        [
            f"# Source selection vs trained ranking ({len(results)} pairs, method {method}, "
            f"strategy {metrics.get('strategy')}, LogME on {', '.join(sorted(scored))})",
            markdown_table(rows, list(rows[0])) if rows else "(fewer than 3 pairs)",
            markdown_table(orders, ["target", "by LogME", "trained"]) if orders else "",
        ]
    )


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="output directory of a --matrix true run")
    parser.add_argument("--method", default="none", help="the method whose trained ranking is compared")
    args = parser.parse_args(argv)
    run = Path(args.run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    text = render(metrics, args.method) + "\n"
    write_text_atomic(run / "source_selection.md", text)
    print(text)
    return text


if __name__ == "__main__":
    main()
