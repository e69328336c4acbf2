"""Sentiment: fine-tune a pretrained encoder on one VADER domain, test on all four (cross-domain transfer).

Defaults (no arguments): the embedded all-MiniLM-L6-v2, fully fine-tuned on `vader-movies` (train half,
minus 10% validation), tested on the held-out half of movies, tweets, Amazon and NYT snippets: the
protocol of Hutto & Gilbert (2014), whose numbers are in the model card for comparison.

    python -m nlptransfer.recipes.sentiment
    python -m nlptransfer.recipes.sentiment --config recipes/sentiment/minilm_lora.yaml
    python -m nlptransfer.recipes.sentiment --dataset my.csv --text_column review --label_column stars \
        --eval_datasets none --eval_files site_b.csv site_c.csv:text=body --output_dir outputs/mine

Output directory: the model + tokenizer (`pipeline("text-classification", model=<dir>)`), `adapter/`
for peft strategies, `metrics.json`, `config.yaml`, `predictions.jsonl` (in-domain test rows in order),
`README.md` (model card) and `run.json` (finished or not, files written).
"""

from __future__ import annotations

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
from nlptransfer.data import load_source, subsample
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

# Hutto & Gilbert (2014) Table 5: MaxEnt trained on movie snippets, 3-class overall F1 on each test half.
PAPER_NOTE = (
    "'paper MaxEnt (movies)': Hutto & Gilbert (ICWSM 2014) Table 5, same protocol (train on a random half of "
    "movies, test on the other half of each corpus); our split is a different random half."
)
PAPER_MAXENT_MOVIES = {"vader-movies": 0.75, "vader-tweets": 0.56, "vader-amazon": 0.51, "vader-nyt": 0.45}


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
        defaults="sentiment/minilm_full.yaml",
        prog="python -m nlptransfer.recipes.sentiment",
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

    # 1. Data: train/validation/test of the source domain, test splits of the others.
    source = load_source(
        data_args.dataset,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        seed=data_args.split_seed,
        normalize_labels=data_args.normalize_labels,
    )
    label_names = source["train"].features["label"].names
    tests = load_test_sets(data_args, source)  # + --eval_datasets, --eval_files, in train's label order
    # word vectors (glove-6b-50d, a file, domain-vectors) -> their checkpoint folder, checked against (or, for
    # domain-vectors, trained on) the whole training split's texts, labels unused; None for other models
    wordvec = prepare_word_vectors(model_args, wordvec_args, source["train"]["text"])
    source = fewshot_splits(source, fewshot, data_args, seed=training_args.seed)  # --examples_per_class
    check_fewshot_rows(fewshot, source["train"])  # e.g. contrastive: 2 rows of every class
    source["validation"] = subsample(source["validation"], data_args.max_eval_samples, data_args.split_seed)
    tests = cap_test_sets(tests, data_args.max_eval_samples, data_args.split_seed, "label")
    if not compare_args.compare:  # a small training set: enough optimizer steps (recipe's min_train_steps)
        fit_budget_to_data(training_args, len(source["train"]))
    if hpo_space is not None:
        check_hpo_splits(source)  # the search tunes on the validation split

    # 2. Model and tokenizer (built before the output directory is touched: bad input leaves nothing behind).
    if compare_args.compare:
        compare_sizes(
            compare_args, len(source["train"]), source["train"]["label"]
        )  # bad --train_sizes fail before any work
    # "auto" -> the pooling used (logged, in config.yaml); logreg/contrastive/LP-FT read the sentence embedding
    resolve_run_pooling(model_args, pooling_strategy(transfer_args, fewshot, training_args))
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    model = build_classifier(model_args, transfer_args, label_names)
    check_method(model, fewshot)  # logreg/contrastive/LP-FT copy a regression into its head
    check_linear_probe(model, training_args)
    with RunWriter.from_training_args(training_args, "sentiment") as run:
        if compare_args.compare:  # did transfer help? (in-domain test split)
            del model
            config = config_to_dict(model_args, data_args, transfer_args, compare_args, training_args)
            files = run_compare(
                model_args,
                transfer_args,
                training_args,
                compare_args,
                source,
                label_names,
                run,
                config=config,
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
                source,
                label_names,
                tokenizer,
                n_trials=compare_args.hpo_trials,
            )
        # 3. Train; validation metrics after each epoch.
        fit = fit_fewshot(
            model,
            tokenizer,
            training_args,
            fewshot,
            source,
            label_names,
            max_length=model_args.max_length,
            strategy=transfer_args.strategy,
            cache_features=transfer_args.cache_features,
        )

        # 4. Evaluate every domain's test half; predictions stay paired with their rows.
        scored = {name: score_split(fit, test.data) for name, test in tests.items()}
        paper = data_args.dataset == "vader-movies"
        rows = [
            {
                "test set": name + (" (in-domain)" if name == data_args.dataset else ""),
                "rows scored": tests[name].rows,
                "micro-F1": result.scores["f1_micro"],
                "macro-F1": result.scores["f1_macro"],
                "paper MaxEnt (movies)": PAPER_MAXENT_MOVIES.get(name, "") if paper else "",
            }
            for name, result in scored.items()
        ]
        columns = ["test set", "rows scored", "micro-F1", "macro-F1"]
        table = markdown_table(rows, columns + (["paper MaxEnt (movies)"] if paper else []))
        in_domain = scored[data_args.dataset]

        # 5. Save: model, metrics, config, predictions, model card; then the summary.
        metrics = {
            "recipe": "sentiment",
            "train": fit.train_metrics,
            "validation": fit.validation_metrics,
            "test": {name: result.scores for name, result in scored.items()},
            "test_rows": {name: test.rows for name, test in tests.items()},
            **error_analysis(fit, in_domain, "in_domain_"),
            **fit_record(fit),
            **hpo,
        }
        save_run(
            run,
            fit,
            recipe="sentiment",
            command=command_line("sentiment", argv),
            config=config_to_dict(
                model_args,
                data_args,
                transfer_args,
                fewshot,
                training_args,
                *([wordvec_args] if wordvec else []),
            ),
            metrics=metrics,
            results_table=table,
            predictions=prediction_rows(fit, in_domain.split, in_domain.preds, in_domain.probs),
            base_model=model_args.model_name_or_path,
            dataset=data_args.dataset,
            strategy=transfer_args.strategy,
            merge_adapters=transfer_args.merge_adapters,
            notes=([PAPER_NOTE] if paper else [])
            + fewshot_notes(fewshot, transfer_args.strategy, len(source["train"])),
        )
        print_summary(
            f"Sentiment transfer: {model_args.model_name_or_path} [{transfer_args.strategy}] trained on "
            f"{data_args.dataset}",
            fit,
            table,
            run,
        )
        return metrics


if __name__ == "__main__":
    run_cli(main)
