"""Text classification: binary, multi-class or multi-label, on any data, with the transfer-vs-scratch comparison.

Defaults (no arguments): the embedded all-MiniLM-L6-v2, fine-tuned to tell PubMed abstracts' publication
type (review / case report / clinical trial / other research; the real class imbalance kept), class-
weighted loss, model selection by validation macro-F1, on a subsample sized for a 2-core CPU.

    python -m nlptransfer.recipes.text_classification
    python -m nlptransfer.recipes.text_classification --config recipes/text_classification/minilm_pubmed_mesh.yaml
    python -m nlptransfer.recipes.text_classification --dataset tickets.csv --text_column body --label_column queue
    python -m nlptransfer.recipes.text_classification --dataset site_a.csv --eval_files site_b.csv site_c.csv:text=body
    python -m nlptransfer.recipes.text_classification --compare --seeds 3 --train_sizes 50,200,1000,all

Multi-label data (a list column, or several 0/1 columns: `--label_column a,b,c`) gets a sigmoid head,
per-label thresholds tuned on validation and micro/macro/samples F1. `--strategy frozen` trains the head on
backbone features computed once and cached on disk. `--eval_datasets` (each one's test split) and
`--eval_files` (every row) add test sets, read with --text_column/--label_column (docs/evaluation.md). The
output directory is like the sentiment recipe's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from transformers import set_seed

from nlptransfer.config import (
    CompareArguments,
    DataArguments,
    ModelArguments,
    RecipeParser,
    TransferArguments,
    config_to_dict,
)
from nlptransfer.data import is_multilabel, label_names, load_source, subsample
from nlptransfer.data.eval_files import cap_test_sets, load_test_sets
from nlptransfer.embeddings.word_vectors import WordVectorArguments, prepare_word_vectors
from nlptransfer.errors import run_cli
from nlptransfer.fewshot import (
    check_fewshot,
    check_fewshot_rows,
    check_method,
    fewshot_notes,
    fewshot_splits,
    fit_fewshot,
)
from nlptransfer.hpo import check_hpo, check_hpo_splits, tune
from nlptransfer.modeling import build_classifier, load_tokenizer
from nlptransfer.modeling.pooling import resolve_run_pooling
from nlptransfer.recipes._classification import (
    compare_sizes,
    error_analysis,
    fit_record,
    print_summary,
    run_compare,
    save_run,
)
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import markdown_table
from nlptransfer.robust import check_linear_probe, check_robust, pooling_strategy
from nlptransfer.runs import RunWriter
from nlptransfer.strategy_defaults import apply_strategy_defaults, fit_budget_to_data
from nlptransfer.trainers.contrastive import FewShotArguments
from nlptransfer.trainers.transfer import TransferTrainingArguments
from nlptransfer.training import prediction_rows, score_split

logger = logging.getLogger("nlptransfer")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [
            ModelArguments,
            DataArguments,
            TransferArguments,
            FewShotArguments,
            CompareArguments,
            WordVectorArguments,
            TransferTrainingArguments,
        ],
        defaults="text_classification/minilm_pubmed_pubtype.yaml",
        prog="python -m nlptransfer.recipes.text_classification",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, data_args, transfer_args, fewshot, compare_args, wordvec_args, training_args = (
        make_parser().parse(argv)
    )
    setup_logging(training_args.verbose)  # first: the checks log which of two settings won
    check_fewshot(fewshot, transfer_args, compare_args, data_args)
    check_robust(transfer_args, fewshot, compare_args, training_args)  # --lp_ft, --wise_alpha, --l2sp_weight
    hpo_space = check_hpo(compare_args, transfer_args, training_args, fewshot)  # None: no --hpo_trials
    set_seed(training_args.seed)
    if not compare_args.compare:  # --compare takes each compared strategy's own (see _classification.py)
        apply_strategy_defaults(transfer_args, training_args)

    # 1. Data: train/validation/test, stratified seeded subsamples for the CPU budget.
    splits = load_source(
        data_args.dataset,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        seed=data_args.split_seed,
        normalize_labels=data_args.normalize_labels,
    )
    multilabel = is_multilabel(splits["train"])
    names = label_names(splits["train"])
    kind = "multi-label" if multilabel else ("binary" if len(names) == 2 else "multi-class")
    stratify_by = "labels" if multilabel else "label"
    tests = load_test_sets(data_args, splits)  # + --eval_datasets, --eval_files, in train's label order
    tests = cap_test_sets(tests, data_args.max_eval_samples, data_args.split_seed, stratify_by)
    # word vectors (glove-6b-50d, a file, domain-vectors) -> their checkpoint folder, checked against (or, for
    # domain-vectors, trained on) the whole training split's texts, labels unused; None for other models
    wordvec = prepare_word_vectors(model_args, wordvec_args, splits["train"]["text"])
    splits = fewshot_splits(splits, fewshot, data_args, training_args.seed, stratify_by)  # the training rows
    check_fewshot_rows(fewshot, splits["train"], multilabel)  # logreg/contrastive: single-label, ...
    for split in ("validation", "test"):
        splits[split] = subsample(
            splits[split], data_args.max_eval_samples, data_args.split_seed, stratify_by
        )
    if not compare_args.compare:  # a small training set: enough optimizer steps (recipe's min_train_steps)
        fit_budget_to_data(training_args, len(splits["train"]))
    if hpo_space is not None:
        check_hpo_splits(splits)  # the search tunes on the validation split
    sizes = "/".join(str(len(splits[split])) for split in ("train", "validation", "test"))
    logger.info("%s: %s labels %s; train/validation/test = %s", data_args.dataset, kind, names, sizes)
    if multilabel and training_args.metric_for_best_model == "f1_macro":
        logger.info("multi-label: selecting on validation macro-F1 at threshold 0.5 during training")

    # 2. Validate the model before touching the output directory.
    if compare_args.compare:
        compare_sizes(
            compare_args, len(splits["train"]), None if multilabel else splits["train"]["label"]
        )  # bad --train_sizes fail before any work
    # "auto" -> the pooling used (logged, in config.yaml); logreg/contrastive/LP-FT read the sentence embedding
    resolve_run_pooling(model_args, pooling_strategy(transfer_args, fewshot, training_args))
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    model = build_classifier(
        model_args,
        transfer_args,
        names,
        problem_type="multi_label_classification" if multilabel else "single_label_classification",
    )
    check_method(model, fewshot)  # logreg/contrastive/LP-FT copy a regression into its head
    check_linear_probe(model, training_args)
    with RunWriter.from_training_args(training_args, "text_classification") as run:
        if compare_args.compare:
            del model  # each compared method builds its own
            files = run_compare(
                model_args,
                transfer_args,
                training_args,
                compare_args,
                splits,
                names,
                run,
                config=config_to_dict(model_args, data_args, transfer_args, compare_args, training_args),
                multilabel=multilabel,
            )
            return {"comparison": files}

        hpo = {}  # --hpo_trials: search, then the best trial's settings train the run below
        if hpo_space is not None:
            model, hpo = tune(
                run,
                hpo_space,
                model_args,
                transfer_args,
                training_args,
                splits,
                names,
                tokenizer,
                n_trials=compare_args.hpo_trials,
                multilabel=multilabel,
            )
        # 3. Train (model selection on validation macro-F1), then 4. test.
        fit = fit_fewshot(
            model,
            tokenizer,
            training_args,
            fewshot,
            splits,
            names,
            multilabel=multilabel,
            max_length=model_args.max_length,
            strategy=transfer_args.strategy,
            cache_features=transfer_args.cache_features,
        )
        all_scored = {name: score_split(fit, test.data) for name, test in tests.items()}
        scored = all_scored[data_args.dataset]  # the test split of --dataset

        # 5. Save and report (one row per test set: --eval_datasets / --eval_files after the test split).
        shown = ["f1_micro", "f1_macro"] + (["f1_samples"] if multilabel else ["accuracy"])
        rows = [
            {
                "split": "validation",
                "rows scored": f"{len(splits['validation']):,} rows",
                **fit.validation_metrics,
            }
        ]
        for name, result in all_scored.items():
            split = "test" if name == data_args.dataset else f"test: {name}"
            rows.append({"split": split, "rows scored": tests[name].rows, **result.scores})
        table = markdown_table(rows, ["split", "rows scored", *shown])
        thresholds = (
            None if fit.thresholds is None else dict(zip(names, fit.thresholds.tolist(), strict=True))
        )
        metrics = {
            "recipe": "text_classification",
            "multilabel": multilabel,
            "train": fit.train_metrics,
            "validation": fit.validation_metrics,
            # one test set: its scores; with --eval_datasets/--eval_files: {name: scores}, as sentiment
            "test": scored.scores if len(tests) == 1 else {n: r.scores for n, r in all_scored.items()},
            "test_rows": {name: test.rows for name, test in tests.items()},
            **error_analysis(fit, scored, "test_"),
            "thresholds": thresholds,
            **fit_record(fit),
            **hpo,
        }
        save_run(
            run,
            fit,
            recipe="text_classification",
            command=command_line("text_classification", argv),
            config=config_to_dict(
                model_args,
                data_args,
                transfer_args,
                fewshot,
                compare_args,
                training_args,
                *([wordvec_args] if wordvec else []),
            ),
            metrics=metrics,
            results_table=table,
            predictions=prediction_rows(fit, scored.split, scored.preds, scored.probs),
            base_model=model_args.model_name_or_path,
            dataset=data_args.dataset,
            strategy=transfer_args.strategy,
            merge_adapters=transfer_args.merge_adapters,
            notes=fewshot_notes(fewshot, transfer_args.strategy, len(splits["train"])),
        )
        print_summary(
            f"Text classification: {model_args.model_name_or_path} [{transfer_args.strategy}] on "
            f"{data_args.dataset} ({kind}, {len(names)} labels), trained",
            fit,
            table,
            run,
        )
        return metrics


if __name__ == "__main__":
    run_cli(main)
