"""Domain adaptation: labelled source, unlabelled target; no adaptation vs DANN vs CORAL/MMD vs importance weights.

Defaults (no arguments): the embedded all-MiniLM-L6-v2 (frozen, cached features) trained on `vader-movies`
(train half, labelled), adapted to `vader-tweets` (its train half with the labels hidden), tested on the
held-out half of tweets. Each method (`--method`, several allowed) is trained with `--seeds` seeds. The run also measures
the domain distance (MMD, proxy A-distance on the frozen features), LogME of the source model on a small
labelled target sample, and (`--negative_transfer_guard`) a target-only baseline trained on that sample: a
method that scores below it is flagged as negative transfer.

    python -m nlptransfer.recipes.domain_adaptation
    python -m nlptransfer.recipes.domain_adaptation --target vader-amazon --method none dann iw
    python -m nlptransfer.recipes.domain_adaptation --matrix true --seeds 3 --output_dir outputs/da-matrix
    python -m nlptransfer.recipes.domain_adaptation --config recipes/domain_adaptation/minilm_full.yaml

`--matrix true` runs every ordered source->target pair of `--domains` and writes `cross_domain.md/.csv`
and `cross_domain.png` (heatmaps per method beside Hutto & Gilbert's 2014 Table 5 baselines), plus how
well distance predicts the transfer gap and whether LogME ranks the sources like the trained models do.

Output directory: `results.md`/`results.csv` (or `cross_domain.*`), `metrics.json`, `config.yaml`,
`README.md` (model card), `run.json`; single-pair runs save each method's seed-0 model under
`models/<method>/` (`pipeline("text-classification", model=<dir>/models/dann)`).
With `--strategy frozen` the backbone's features cannot move, so DANN/CORAL/MMD adapt the head's
outputs (logits); with `full`/`lora` they adapt the pooled representation.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlptransfer.adaptation import (
    METHODS,
    PAPER_NOTE,
    PAPER_TABLE5,
    AdaptationTrainingArguments,
    Setup,
    check_label_sets,
    load_domain,
    prepare_domain,
    reference_method,
    result_rows,
    run_pair,
    summaries,
    summary_text,
)
from nlptransfer.config import ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.features import head_pooling
from nlptransfer.modeling import build_classifier, count_parameters, load_tokenizer
from nlptransfer.modeling.pooling import resolve_run_pooling
from nlptransfer.recipes._classification import load_snippet
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import csv_text, domain_heatmap_figure, markdown_table, model_card
from nlptransfer.robust import refuse_robust
from nlptransfer.runs import RunWriter

VADER = ["vader-movies", "vader-tweets", "vader-amazon", "vader-nyt"]


@dataclass
class DomainAdaptationArguments:
    source: str = field(
        default="vader-movies", metadata={"help": "Labelled source domain: an embedded name or a local file."}
    )
    target: str = field(
        default="vader-tweets",
        metadata={
            "help": "Target domain: its train split is used without labels, its test split for evaluation."
        },
    )
    method: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={
            "help": f"Methods to run (several allowed), any of: {', '.join(METHODS)} (none = source only).",
            "aliases": ["--methods"],
        },
    )
    matrix: bool = field(
        default=False,
        metadata={"help": "Run every ordered source->target pair of --domains (cross_domain.md/.csv/.png)."},
    )
    domains: list[str] = field(default_factory=lambda: list(VADER), metadata={"help": "Domains of --matrix."})
    seeds: int = field(default=1, metadata={"help": "Seeds per method (mean +- std over them)."})
    text_column: str = field(default="text", metadata={"help": "Text column (local files)."})
    label_column: str = field(default="label", metadata={"help": "Label column (local files)."})
    split_seed: int = field(
        default=42, metadata={"help": "Seed of each domain's train/validation/test split."}
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use at most this many source (and unlabelled target) training texts."},
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Test on at most this many target texts (seeded subsample)."}
    )
    target_labelled_samples: int = field(
        default=200,
        metadata={
            "help": "Size of the lightly labelled target sample (from the target train split) used for LogME "
            "and the target-only baseline; never used by the adaptation methods."
        },
    )
    negative_transfer_guard: bool = field(
        default=True,
        metadata={
            "help": "Also train a target-only baseline on the labelled target sample and warn when a method "
            "that used the source scores below it."
        },
    )
    distance_samples: int = field(
        default=2000, metadata={"help": "Texts per domain for the MMD / proxy A-distance estimates."}
    )
    save_models: bool = field(
        default=True,
        metadata={"help": "Single-pair runs: save each method's first-seed model under models/<method>/."},
    )

    def __post_init__(self):
        bad = [m for m in self.method if m not in METHODS]
        if bad or not self.method:
            raise ConfigError(
                f"unknown method {', '.join(map(repr, bad)) or '(none given)'}; choose from {', '.join(METHODS)} "
                "(--method)"
            )
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1")
        if self.target_labelled_samples < 10:
            raise ConfigError(f"target_labelled_samples={self.target_labelled_samples} must be >= 10")
        if self.matrix and len(set(self.domains)) < 2:
            raise ConfigError("--matrix needs at least two --domains")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, DomainAdaptationArguments, TransferArguments, AdaptationTrainingArguments],
        defaults="domain_adaptation/minilm_frozen.yaml",
        prog="python -m nlptransfer.recipes.domain_adaptation",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, da, transfer_args, training_args = make_parser().parse(argv)
    refuse_robust(training_args, "domain_adaptation")  # --lp_ft, --wise_alpha, --l2sp_weight: not here
    setup_logging(training_args.verbose)

    # 1. Data: every domain once, checked before anything is built or written.
    names = list(dict.fromkeys(da.domains)) if da.matrix else [da.source, da.target]
    if not da.matrix and da.source == da.target:
        raise ConfigError(f"source and target are both {da.source!r}; pick a different --target")
    raw = {name: load_domain(name, da.text_column, da.label_column, da.split_seed) for name in names}
    pairs = list(itertools.permutations(names, 2)) if da.matrix else [(da.source, da.target)]
    for s, t in pairs:
        check_label_sets(raw[s], raw[t], s, t)
    label_names = raw[pairs[0][0]]["train"].features["label"].names

    # 2. Model, tokenizer, frozen features (cached on disk; shared by distances, iw, LogME, frozen training).
    resolve_run_pooling(
        model_args, transfer_args.strategy
    )  # "auto" -> the pooling used, logged, in config.yaml
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    feature_model = build_classifier(model_args, TransferArguments(strategy="frozen"), label_names)
    pooled_ok = head_pooling(feature_model) is not None
    cached = transfer_args.strategy == "frozen" and transfer_args.cache_features and pooled_ok
    save_under = "models" if da.save_models and not da.matrix else None
    # The strategy applies to this model (or fails in one line) before the output directory is touched.
    trainable, total = count_parameters(build_classifier(model_args, transfer_args, label_names))
    with RunWriter.from_training_args(training_args, "domain_adaptation") as run:
        domains = {
            n: prepare_domain(
                n,
                raw[n],
                label_names,
                feature_model,
                tokenizer,
                max_train=da.max_train_samples,
                max_eval=da.max_eval_samples,
                seed=da.split_seed,
                labelled_samples=da.target_labelled_samples,
                max_length=model_args.max_length,
                batch_size=training_args.per_device_eval_batch_size,
            )
            for n in names
        }

        # 3. Train every method on every pair. The Trainer wants an output_dir per run; nothing is saved
        # there (save_strategy "no"): scratch space.
        with tempfile.TemporaryDirectory(prefix="nlptransfer-da-") as work_dir:
            setup = Setup(
                model_args,
                transfer_args,
                training_args,
                tokenizer,
                label_names,
                cached=cached,
                work_dir=work_dir,
                run=run,
                methods=da.method,
                seeds=da.seeds,
                split_seed=da.split_seed,
                distance_samples=da.distance_samples,
                negative_transfer_guard=da.negative_transfer_guard,
            )
            results = [run_pair(setup, domains[s], domains[t], save_under) for s, t in pairs]

        # 4. Reports.
        rows = result_rows(results, da.method)
        summary = summaries(results, da.method)
        table = markdown_table(rows, list(rows[0]))
        report = table + "\n\n" + summary_text(summary)
        stem = "cross_domain" if da.matrix else "results"
        adapted = training_args.align_on
        if adapted == "auto":  # as the trainers decide: logits when nothing below the head trains
            adapted = "logits" if transfer_args.strategy == "frozen" else "pooled"
        metrics = {
            "recipe": "domain_adaptation",
            "strategy": transfer_args.strategy,
            "adapted_representation": adapted,
            "seeds": da.seeds,
            "pairs": {f"{r['source']}->{r['target']}": r for r in results},
            "summary": summary,
            "trainable_parameters": trainable,
            "total_parameters": total,
        }
        run.write_text(f"{stem}.md", report + "\n\n" + PAPER_NOTE + "\n")
        run.write_text(f"{stem}.csv", csv_text(rows, lineterminator="\r\n"))
        if da.matrix and run.is_main:
            run.write_bytes("cross_domain.png", heatmap_png(results, da.method, names))
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, da, transfer_args, training_args))
        model = Path(model_args.model_name_or_path).name
        what = "cross-domain matrix" if da.matrix else f"domain adaptation {da.source} -> {da.target}"
        if save_under is None:
            snippet = "# no models saved (matrix run or --save_models false)"
        else:
            snippet = load_snippet(
                f"{run.output_dir}/models/{da.method[0]}", "full", True, model_args.pooling
            )
        card = model_card(
            title=f"{model}: {what}",
            base_model=model_args.model_name_or_path,
            dataset=", ".join(names),
            strategy=transfer_args.strategy,
            pooling=model_args.pooling,
            label_names=label_names,
            results_table=report,
            trainable=trainable,
            total=total,
            command=command_line("domain_adaptation", argv),
            notes=[
                PAPER_NOTE,
                f"methods: {', '.join(da.method)}; mean over {da.seeds} seed(s); target labels used only for "
                f"testing, LogME and the target-only baseline ({da.target_labelled_samples} texts).",
            ],
            load_snippet=snippet,
        )
        run.write_text("README.md", card)
        print(
            f"\nDomain adaptation [{transfer_args.strategy}], {da.seeds} seed(s)\n{table}\n"
            f"{summary_text(summary)}\n"
            f"Saved to {run.output_dir}"
        )
        return metrics


def heatmap_png(results: list[dict], methods: Sequence[str], domains: Sequence[str]) -> bytes:
    """Micro-F1 per source (rows) and target (columns): one panel per method, then the paper's Table 5.

    Diagonal: in-domain micro-F1 (ours: of the first pair trained on that source, reference method).
    """
    ref = reference_method(methods)
    cells = [(domains.index(r["source"]), domains.index(r["target"]), r) for r in results]
    panels = {}
    for method in methods:
        grid = np.full((len(domains), len(domains)), np.nan)
        for i, j, r in cells:
            grid[i, j] = r["methods"][method]["f1_micro"]
            if np.isnan(grid[i, i]):
                grid[i, i] = r["methods"][ref]["in_domain_f1_micro"]
        panels[f"{method} (ours)"] = grid
    paper = np.diag([PAPER_TABLE5.get(d, {}).get(d, np.nan) for d in domains])
    paper[~np.eye(len(domains), dtype=bool)] = np.nan
    for i, j, r in cells:
        paper[i, j] = np.nan if r["paper_2014"] is None else r["paper_2014"]
    panels["paper 2014"] = paper
    short = [d.removeprefix("vader-") for d in domains]
    title = "3-class micro-F1 (diagonal: in-domain)"
    return domain_heatmap_figure(panels, short, title=title, vmin=0.3, vmax=0.95)


if __name__ == "__main__":
    run_cli(main)
