"""Domain adaptation: labelled source, unlabelled target; no adaptation vs DANN vs CORAL/MMD vs importance weights.

Defaults (no arguments): the embedded all-MiniLM-L6-v2 (frozen, cached features) trained on `vader-movies`
(train half, labelled), adapted to `vader-tweets` (its train half with the labels hidden), tested on the
held-out half of tweets. Each method (`--method`, several allowed) is trained with `--seeds` seeds. The run also measures
the domain distance (MMD, proxy A-distance on the frozen features), LogME of the source model on a small
labelled target sample, and (`--negative_transfer_guard`) a target-only baseline trained on that sample: a
method that scores below it beyond seed noise (paired t-test over seeds, or `--guard_seed_std`) is
flagged as negative transfer; each verdict names its rule.

    python -m nlptransfer.recipes.domain_adaptation
    python -m nlptransfer.recipes.domain_adaptation --target vader-amazon --method none dann iw
    python -m nlptransfer.recipes.domain_adaptation --matrix true --seeds 3 --output_dir outputs/da-matrix
    python -m nlptransfer.recipes.domain_adaptation --config recipes/domain_adaptation/minilm_full.yaml

`--method self_training`: the source model (or `--teacher <run dir>` / `--teacher lexicon`, VADER's
scorer) pseudo-labels the target texts; confident class-balanced ones (`--pseudo_threshold`,
`--pseudo_top_k`; `--pseudo_balance proportional` keeps the teacher's class proportions) join the source
and the model retrains, `--self_training_rounds` times, optionally with `--self_training_align dann|coral|mmd`.
The teacher's own target score is reported beside the student's.

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

import dataclasses
import itertools
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nlptransfer.adaptation import (
    PAPER_NOTE,
    PAPER_TABLE5,
    AdaptationTrainingArguments,
    Setup,
    check_label_sets,
    load_domain,
    prepare_domain,
    run_pair,
)
from nlptransfer.adaptation_args import DomainAdaptationArguments
from nlptransfer.adaptation_report import heatmap_png, result_rows, summaries, summary_text
from nlptransfer.config import ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.features import head_pooling
from nlptransfer.modeling import build_classifier, count_parameters, load_tokenizer
from nlptransfer.modeling.pooling import feature_pooling, resolve_run_pooling
from nlptransfer.recipes._classification import load_snippet
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import csv_text, markdown_table, model_card
from nlptransfer.robust import refuse_robust
from nlptransfer.run_dirs import check_input_outside_output
from nlptransfer.runs import RunWriter
from nlptransfer.self_training import LEXICON, SELF_TRAINING, SOURCE_TEACHER, load_teacher


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
    if da.teacher not in (SOURCE_TEACHER, LEXICON):  # a run directory that --overwrite_output_dir must keep
        check_input_outside_output(da.teacher, training_args.output_dir, "--teacher")

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
    frozen = TransferArguments(strategy="frozen")
    feature_model = build_classifier(model_args, frozen, label_names)
    pooled_ok = head_pooling(feature_model) is not None
    cached = transfer_args.strategy == "frozen" and transfer_args.cache_features and pooled_ok
    # Distances, importance weights: on features useful untrained (never the pooler full FT retrains).
    useful = feature_pooling(model_args.model_name_or_path, model_args.pooling)
    measure_model = feature_model
    if useful != model_args.pooling:
        measure_model = build_classifier(dataclasses.replace(model_args, pooling=useful), frozen, label_names)
    teacher = None
    if SELF_TRAINING in da.method:  # a teacher's labels are checked before anything is written
        teacher = load_teacher(da.teacher, label_names, training_args.per_device_eval_batch_size)
    save_under = "models" if da.save_models and not da.matrix else None
    # The strategy applies to this model (or fails in one line) before the output directory is touched.
    trainable, total = count_parameters(build_classifier(model_args, transfer_args, label_names))
    with RunWriter.from_training_args(training_args, "domain_adaptation") as run:
        domains = {
            n: prepare_domain(
                n,
                raw[n],
                label_names,
                feature_model if cached else measure_model,
                tokenizer,
                max_train=da.max_train_samples,
                max_eval=da.max_eval_samples,
                seed=da.split_seed,
                labelled_samples=da.target_labelled_samples,
                max_length=model_args.max_length,
                batch_size=training_args.per_device_eval_batch_size,
                measure_model=measure_model if cached and measure_model is not feature_model else None,
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
                guard_seed_std=da.guard_seed_std,
                pseudo_threshold=da.pseudo_threshold,
                pseudo_top_k=da.pseudo_top_k,
                pseudo_balance=da.pseudo_balance,
                self_training_rounds=da.self_training_rounds,
                align=da.self_training_align,
                teacher=teacher,
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
            "features_measured": useful,  # pooling of the distance / importance-weight features
            "seeds": da.seeds,
            "pairs": {f"{r['source']}->{r['target']}": r for r in results},
            "summary": summary,
            "trainable_parameters": trainable,
            "total_parameters": total,
        }
        run.write_text(f"{stem}.md", report + "\n\n" + PAPER_NOTE + "\n")
        run.write_text(f"{stem}.csv", csv_text(rows, lineterminator="\r\n"))
        if da.matrix and run.is_main:
            run.write_bytes("cross_domain.png", heatmap_png(results, da.method, names, PAPER_TABLE5))
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
                f"LogME / H-score read the source model's {'logits' if transfer_args.strategy == 'frozen' else 'pooled representation'}"
                f"; distances and importance weights {useful}-pooled features; the guard's rule per row.",
                *self_training_notes(da, teacher),
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


def self_training_notes(da: DomainAdaptationArguments, teacher) -> list[str]:
    """The model card's line on self-training (none when it did not run)."""
    if SELF_TRAINING not in da.method:
        return []
    rule = " and ".join(
        f"{k} {v}" for k, v in (("threshold", da.pseudo_threshold), ("top-k/class", da.pseudo_top_k)) if v
    )
    who = "the source-trained model" if teacher is None else f"teacher {teacher.name} (its score: table)"
    return [
        f"self_training: {who} labels the target train texts (never their labels); "
        f"{'class-balanced' if da.pseudo_balance == 'equal' else 'teacher-proportional'} "
        f"pseudo-labels ({rule}), {da.self_training_rounds} round(s), alignment {da.self_training_align}."
    ]


if __name__ == "__main__":
    run_cli(main)
