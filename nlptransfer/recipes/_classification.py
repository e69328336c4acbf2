"""What the two classification recipes (sentiment, text_classification) share: saving a run, the parts of
its metrics.json and summary that are the same, and `--compare`.

    scored = score_split(fit, splits["test"])  # nlptransfer.training
    metrics = {..., **error_analysis(fit, scored, "test_"), **fit_record(fit)}
    save_run(run, fit, recipe=..., metrics=metrics, results_table=table, ...)
    print_summary(f"Sentiment transfer: ... trained on {dataset}", fit, table, run)

Recipe glue, not library (it writes through the recipe's `RunWriter` and prints to stdout); training and
applying a classifier is `nlptransfer.training`.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from datasets import DatasetDict
from transformers import set_seed

from nlptransfer.config import CompareArguments, ModelArguments, TransferArguments, user_set
from nlptransfer.evaluation.baselines import tfidf_logreg_method
from nlptransfer.evaluation.comparison import checked_train_sizes, prepare_comparison, run_jobs
from nlptransfer.evaluation.jobs import RunJobStore, settings_fingerprint
from nlptransfer.evaluation.metrics import confusion, per_class_report
from nlptransfer.modeling import build_classifier, load_tokenizer, save_classifier
from nlptransfer.modeling.load import resolve
from nlptransfer.modeling.pooling import model_pooling, resolve_pooling
from nlptransfer.reporting import format_summary, load_run, model_card, run_figures, write_comparison
from nlptransfer.robust import robust_notes
from nlptransfer.runs import RunWriter
from nlptransfer.strategies import TABLE
from nlptransfer.strategy_defaults import strategy_settings
from nlptransfer.trainers import TransferTrainingArguments
from nlptransfer.training import FitResult, ScoredSplit, evaluate, fit_classifier, multi_hot


def error_analysis(fit: FitResult, scored: ScoredSplit, prefix: str) -> dict:
    """`<prefix>report` (per-class precision, recall, F1) and `<prefix>confusion_matrix` of a scored split."""
    names, multilabel = fit.label_names, fit.multilabel
    return {
        f"{prefix}report": per_class_report(scored.preds, scored.refs, names, multilabel=multilabel),
        f"{prefix}confusion_matrix": confusion(scored.preds, scored.refs, names, multilabel=multilabel),
    }


def fit_record(fit: FitResult) -> dict:
    """The end of metrics.json: robust fine-tuning (if any), parameter counts, the Trainer's loss log."""
    return {
        **({"robust": fit.robust} if fit.robust else {}),
        "trainable_parameters": fit.trainable_parameters,
        "total_parameters": fit.total_parameters,
        "log_history": fit.log_history,
    }


def save_run(
    run: RunWriter,
    fit: FitResult,
    *,
    recipe: str,
    command: str,
    config: dict,
    metrics: dict,
    results_table: str,
    predictions: list[dict],
    base_model: str,
    dataset: str,
    strategy: str,
    merge_adapters: bool = True,
    notes: Sequence[str] = (),
) -> None:
    """Write model, metrics.json, config.yaml, predictions.jsonl, README.md and the figures through `run`.

    Under `accelerate launch` only the main process writes (`RunWriter`); the run is marked complete when
    the recipe's `with run:` block ends.
    """
    pooling = model_pooling(fit.model)
    save_classifier(fit.model, fit.tokenizer, run, merge_adapters=merge_adapters)
    run.write_json("metrics.json", metrics)
    run.write_yaml("config.yaml", config)
    run.write_text(
        "predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in predictions)
    )
    card = model_card(
        title=f"{Path(base_model).name} for {recipe.replace('_', ' ')} ({dataset})",
        base_model=base_model,
        dataset=dataset,
        strategy=strategy,
        pooling=pooling,
        label_names=fit.label_names,
        results_table=results_table,
        trainable=fit.trainable_parameters,
        total=fit.total_parameters,
        command=command,
        notes=[*notes, *robust_notes(fit.robust)],
        load_snippet=load_snippet(run.output_dir, strategy, merge_adapters, pooling),
        pipeline_tag="text-classification",
    )
    run.write_text("README.md", card)
    write_run_figures(run)


def write_run_figures(run: RunWriter) -> None:
    """loss_curve.png, confusion_matrix.png, per_class.png from the run's saved metrics (those that apply)."""
    if not run.is_main:  # the figures are drawn from the files only the main process wrote
        return
    for name, png in run_figures(load_run(run.output_dir)).items():
        run.write_bytes(name, png)


def load_snippet(output_dir: Path, strategy: str, merged: bool, pooling: str = "pooler") -> str:
    """How a user loads this run's model; cls/mean/max heads (the `nlptransfer_pooled` architecture) need
    `import nlptransfer` first, which registers it with the transformers Auto classes (no remote code)."""
    first = "import nlptransfer  # registers its architectures (nlptransfer_pooled, nlptransfer_wordvec)\n"
    first = first if pooling != "pooler" else ""
    row = TABLE[strategy]
    if strategy == "peft":  # merged or not depends on the method in --peft_config: what was saved says
        merged = not (Path(output_dir) / "adapter_config.json").is_file()
    if (row.peft_type or strategy == "peft") and not ((row.merges or strategy == "peft") and merged):
        if pooling != "pooler":  # the base as the pooled classifier the adapter was trained on
            return first + (
                "from peft import PeftConfig, PeftModel\n"
                "from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline\n"
                f"cfg = AutoConfig.from_pretrained('{output_dir}/adapter')  # pooling + labels of the head\n"
                f"base = PeftConfig.from_pretrained('{output_dir}/adapter').base_model_name_or_path\n"
                "model = PeftModel.from_pretrained(\n"
                f"    AutoModelForSequenceClassification.from_pretrained(base, config=cfg), '{output_dir}/adapter')\n"
                f"clf = pipeline('text-classification', model=model, tokenizer=AutoTokenizer.from_pretrained('{output_dir}'))"
            )
        return (
            "from peft import AutoPeftModelForSequenceClassification\n"
            "from transformers import AutoConfig, AutoTokenizer, pipeline\n"
            f"cfg = AutoConfig.from_pretrained('{output_dir}/adapter')  # labels of the trained head\n"
            "model = AutoPeftModelForSequenceClassification.from_pretrained(\n"
            f"    '{output_dir}/adapter', num_labels=cfg.num_labels, id2label=cfg.id2label, label2id=cfg.label2id)\n"
            f"clf = pipeline('text-classification', model=model, tokenizer=AutoTokenizer.from_pretrained('{output_dir}'))"
        )
    return (
        first
        + f"from transformers import pipeline\nclf = pipeline('text-classification', model='{output_dir}')"
    )


def print_summary(headline: str, fit: FitResult, table: str, run: RunWriter) -> None:
    """The run's last words on stdout: `headline` with the training time, the results table, where it is."""
    print(f"\n{headline} in {fit.train_seconds / 60:.1f} min\n{table}\nSaved to {run.output_dir}")


def comparison_methods(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    training_args: TransferTrainingArguments,
    compare_args: CompareArguments,
    splits: DatasetDict,
    label_names: list[str],
    *,
    multilabel: bool = False,
    work_dir: Path,
) -> dict[str, Callable[[int, list[int]], dict[str, float]]]:
    """`run_comparison` callbacks: TF-IDF baseline, random init, each transfer strategy.

    Each neural run trains on the given training subset with the recipe's own settings (seed replaced),
    selects nothing from the test split, and returns test metrics.
    """
    train, test = splits["train"], splits["test"]
    test_refs = (
        multi_hot(test["labels"], len(label_names)).astype(int) if multilabel else np.asarray(test["label"])
    )
    train_targets = multi_hot(train["labels"], len(label_names)).astype(int) if multilabel else train["label"]
    methods = {
        "tfidf_logreg": tfidf_logreg_method(
            train["text"],
            train_targets,
            test["text"],
            test_refs,
            label_names,
            multilabel=multilabel,
            class_weight="balanced" if training_args.class_weighted_loss else None,
        )
    }
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)

    def neural(model_overrides: dict, strategy: str, name: str):
        # the settings a run with --strategy <strategy> would take (recipes/strategy_defaults.yaml), and
        # its pooling unless the user chose one
        settings = strategy_settings(strategy, training_args, compare_args.compare_adapter_lr)
        if "pooling" not in user_set(model_args):
            name = resolve(model_args.model_name_or_path)
            model_overrides = {**model_overrides, "pooling": resolve_pooling(name, "auto", strategy)[0]}

        def fn(seed: int, indices: list[int]) -> dict[str, float]:
            args = dataclasses.replace(
                training_args,
                **settings,
                seed=seed,
                output_dir=str(work_dir / f"{name}-seed{seed}-n{len(indices)}"),
                save_strategy="no",
                load_best_model_at_end=False,
                resume_from_checkpoint=None,
                report_to="none",
            )
            set_seed(seed)
            model = build_classifier(
                dataclasses.replace(model_args, **model_overrides),
                dataclasses.replace(
                    transfer_args,
                    strategy=strategy,
                    peft_config=transfer_args.peft_config if strategy == "peft" else None,
                ),
                label_names,
                problem_type="multi_label_classification" if multilabel else "single_label_classification",
            )
            subset = DatasetDict(train=train.select(indices), validation=splits["validation"])
            fit = fit_classifier(
                model,
                tokenizer,
                args,
                subset,
                label_names,
                multilabel=multilabel,
                max_length=model_args.max_length,
                strategy=strategy,
                cache_features=transfer_args.cache_features,
            )
            return evaluate(fit, test)

        return fn

    if compare_args.scratch:
        methods["scratch"] = neural({"from_scratch": True}, "full", "scratch")
    for strategy in compare_args.compare_strategies:
        methods[strategy] = neural({}, strategy, strategy)
    return methods


def run_compare(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    training_args: TransferTrainingArguments,
    compare_args: CompareArguments,
    splits: DatasetDict,
    label_names: list[str],
    run: RunWriter,
    *,
    config: dict,
    multilabel: bool = False,
) -> list[str]:
    """`--compare`: every method on the same subsets and seeds; writes config.yaml, each finished job
    (`compare_jobs/`, reused by `--resume true`) and the comparison files (recorded in `run`), prints the
    summary. Interrupted (Ctrl-C, a crash): comparison.md of the finished jobs marked PARTIAL, then the
    error goes on (run.json: failed). Returns the files written (main process; [] on the others)."""
    train = splits["train"]
    sizes = compare_sizes(compare_args, len(train), None if multilabel else train["label"])
    run.write_yaml("config.yaml", config)
    # The Trainer wants an output_dir per run; nothing is saved there (save_strategy="no"), so use scratch space.
    with tempfile.TemporaryDirectory(prefix="nlptransfer-compare-") as work_dir:
        methods = comparison_methods(
            model_args,
            transfer_args,
            training_args,
            compare_args,
            splits,
            label_names,
            multilabel=multilabel,
            work_dir=Path(work_dir),
        )
        result = prepare_comparison(
            methods,
            seeds=[training_args.seed + i for i in range(compare_args.seeds)],
            train_sizes=sizes,
            n_train=len(train),
            train_labels=None if multilabel else train["label"],
            metric="f1_macro",
        )
        fingerprint = settings_fingerprint(config, splits)
        try:
            run_jobs(result, methods, store=RunJobStore(run), fingerprint=fingerprint)
        except BaseException:
            if run.is_main and result.rows:  # what finished, marked partial; never hides the error
                try:
                    run.record(write_comparison(result, run.output_dir))
                    print(f"\nInterrupted: partial comparison in {run.output_dir / 'comparison.md'}")
                except Exception as err:  # noqa: BLE001
                    print(f"could not write the partial comparison: {err}")
            raise
    if not run.is_main:
        return []
    files = run.record(write_comparison(result, run.output_dir))
    print("\n" + format_summary(result))
    return files


def compare_sizes(compare_args: CompareArguments, n_train: int, labels=None) -> list:
    return checked_train_sizes(compare_args.train_sizes, n_train, labels)  # before any training or write
