"""Text classification: multi-class or multi-label, on any data, with the transfer-vs-scratch comparison.

Defaults (no arguments): the embedded all-MiniLM-L6-v2, fine-tuned to tell PubMed abstracts' publication
type (review / case report / clinical trial / other research; the real class imbalance kept), class-
weighted loss, model selection by validation macro-F1, on a subsample sized for a 2-core CPU.

    python -m nlptransfer.recipes.text_classification
    python -m nlptransfer.recipes.text_classification --config recipes/text_classification/minilm_pubmed_mesh.yaml
    python -m nlptransfer.recipes.text_classification --dataset tickets.csv --text_column body --label_column queue
    python -m nlptransfer.recipes.text_classification --compare --seeds 3 --train_sizes 50,200,1000,all

Multi-label data (a list column, or several 0/1 columns: `--label_column a,b,c`) gets a sigmoid head,
per-label thresholds tuned on validation and micro/macro/samples F1. `--strategy frozen` trains the head on
backbone features computed once and cached on disk. The output directory is like the sentiment recipe's.
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
from nlptransfer.embeddings.word_vectors import WordVectorArguments, prepare_word_vectors
from nlptransfer.errors import run_cli
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
from nlptransfer.runs import RunWriter
from nlptransfer.strategy_defaults import apply_strategy_defaults
from nlptransfer.trainers.transfer import TransferTrainingArguments
from nlptransfer.training import fit_classifier, prediction_rows, score_split

logger = logging.getLogger("nlptransfer")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [
            ModelArguments,
            DataArguments,
            TransferArguments,
            CompareArguments,
            WordVectorArguments,
            TransferTrainingArguments,
        ],
        defaults="text_classification/minilm_pubmed_pubtype.yaml",
        prog="python -m nlptransfer.recipes.text_classification",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, data_args, transfer_args, compare_args, wordvec_args, training_args = make_parser().parse(
        argv
    )
    setup_logging()
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
    kind = "multi-label" if multilabel else "multi-class"
    stratify_by = "labels" if multilabel else "label"
    # word vectors (glove-6b-50d, a file, domain-vectors) -> their checkpoint folder, checked against (or, for
    # domain-vectors, trained on) the whole training split's texts, labels unused; None for other models
    wordvec = prepare_word_vectors(model_args, wordvec_args, splits["train"]["text"])
    for split in ("train", "validation", "test"):
        cap = data_args.max_train_samples if split == "train" else data_args.max_eval_samples
        splits[split] = subsample(splits[split], cap, data_args.split_seed, stratify_by)
    sizes = "/".join(str(len(splits[split])) for split in ("train", "validation", "test"))
    logger.info("%s: %s labels %s; train/validation/test = %s", data_args.dataset, kind, names, sizes)
    if multilabel and training_args.metric_for_best_model == "f1_macro":
        logger.info("multi-label: selecting on validation macro-F1 at threshold 0.5 during training")

    # 2. Validate the model before touching the output directory.
    if compare_args.compare:
        compare_sizes(compare_args, len(splits["train"]))  # bad --train_sizes fail before any work
    resolve_run_pooling(
        model_args, transfer_args.strategy
    )  # "auto" -> the pooling used, logged, in config.yaml
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    model = build_classifier(
        model_args,
        transfer_args,
        names,
        problem_type="multi_label_classification" if multilabel else "single_label_classification",
    )
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
                multilabel=multilabel,
            )
            return {"comparison": files}

        # 3. Train (model selection on validation macro-F1), then 4. test.
        fit = fit_classifier(
            model,
            tokenizer,
            training_args,
            splits,
            names,
            multilabel=multilabel,
            max_length=model_args.max_length,
            strategy=transfer_args.strategy,
            cache_features=transfer_args.cache_features,
        )
        scored = score_split(fit, splits["test"])

        # 5. Save and report.
        shown = ["f1_micro", "f1_macro"] + (["f1_samples"] if multilabel else ["accuracy"])
        rows = [
            {"split": "validation", "n": len(splits["validation"]), **fit.validation_metrics},
            {"split": "test", "n": len(scored.split), **scored.scores},
        ]
        table = markdown_table(rows, ["split", "n", *shown])
        thresholds = (
            None if fit.thresholds is None else dict(zip(names, fit.thresholds.tolist(), strict=True))
        )
        metrics = {
            "recipe": "text_classification",
            "multilabel": multilabel,
            "train": fit.train_metrics,
            "validation": fit.validation_metrics,
            "test": scored.scores,
            **error_analysis(fit, scored, "test_"),
            "thresholds": thresholds,
            **fit_record(fit),
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
