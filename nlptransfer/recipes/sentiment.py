"""Sentiment: fine-tune a pretrained encoder on one VADER domain, test on all four (cross-domain transfer).

Defaults (no arguments): the embedded all-MiniLM-L6-v2, fully fine-tuned on `vader-movies` (train half,
minus 10% validation), tested on the held-out half of movies, tweets, Amazon and NYT snippets: the
protocol of Hutto & Gilbert (2014), whose numbers are in the model card for comparison.

    python -m nlptransfer.recipes.sentiment
    python -m nlptransfer.recipes.sentiment --config recipes/sentiment/minilm_lora.yaml
    python -m nlptransfer.recipes.sentiment --dataset my.csv --text_column review --label_column stars \
        --eval_datasets --output_dir outputs/mine

Output directory: the model + tokenizer (`pipeline("text-classification", model=<dir>)`), `adapter/`
for peft strategies, `metrics.json`, `config.yaml`, `predictions.jsonl` (in-domain test rows in order),
`README.md` (model card) and `run.json` (finished or not, files written).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import DataCollatorWithPadding, set_seed

from nlptransfer.config import (
    DataArguments,
    ModelArguments,
    RecipeParser,
    TransferArguments,
    TransferTrainingArguments,
    config_to_dict,
)
from nlptransfer.data import check_eval_labels, load_source
from nlptransfer.errors import run_cli
from nlptransfer.inference import predict_logits
from nlptransfer.metrics import classification_metrics, confusion, make_compute_metrics, per_class_report
from nlptransfer.modeling import build_classifier, count_parameters, load_tokenizer, save_classifier
from nlptransfer.outputs import (
    finish_output_dir,
    prepare_output_dir,
    write_json_atomic,
    write_text_atomic,
    write_yaml_atomic,
)
from nlptransfer.reporting import markdown_table, model_card
from nlptransfer.trainers import TransferTrainer

logger = logging.getLogger("nlptransfer")

# The no-argument run; recipes/sentiment/minilm_full.yaml holds the same values (a test checks).
DEFAULTS = {
    "dataset": "vader-movies",
    "eval_datasets": ["vader-tweets", "vader-amazon", "vader-nyt"],
    "output_dir": "outputs/sentiment-minilm-full",
    "strategy": "full",
    "learning_rate": 5e-5,
    "num_train_epochs": 2,
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 128,
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
    "eval_strategy": "epoch",
    "save_strategy": "no",
    "logging_steps": 20,
    "train_sampling_strategy": "group_by_length",
    "report_to": "none",
    "seed": 42,
}

# Hutto & Gilbert (2014) Table 5: MaxEnt trained on movie snippets, 3-class overall F1 on each test half.
PAPER_MAXENT_MOVIES = {"vader-movies": 0.75, "vader-tweets": 0.56, "vader-amazon": 0.51, "vader-nyt": 0.45}


def make_parser() -> RecipeParser:
    parser = RecipeParser(
        [ModelArguments, DataArguments, TransferArguments, TransferTrainingArguments],
        prog="python -m nlptransfer.recipes.sentiment",
        description=__doc__.split("\n\n")[0],
    )
    parser.set_defaults(**DEFAULTS)
    return parser


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, data_args, transfer_args, training_args = make_parser().parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    set_seed(training_args.seed)

    # 1. Data: train/validation/test of the source domain, test splits of the others.
    source = load_source(
        data_args.dataset,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        seed=data_args.split_seed,
    )
    label_names = source["train"].features["label"].names
    tests = {data_args.dataset: source["test"]}
    for name in data_args.eval_datasets:
        if name in tests:
            continue
        other = load_source(name, seed=data_args.split_seed)["test"]
        other = check_eval_labels(source["train"], other, name)  # re-encoded to the training label order
        tests[name] = other
    if data_args.max_train_samples:
        source["train"] = _subsample(source["train"], data_args.max_train_samples, data_args.split_seed)
    if data_args.max_eval_samples:
        source["validation"] = _subsample(
            source["validation"], data_args.max_eval_samples, data_args.split_seed
        )
        tests = {k: _subsample(v, data_args.max_eval_samples, data_args.split_seed) for k, v in tests.items()}

    # 2. Model and tokenizer.
    tokenizer = load_tokenizer(model_args)
    model = build_classifier(model_args, transfer_args, label_names)
    trainable, total = count_parameters(model)
    logger.info(
        "strategy %s: %s of %s parameters trainable", transfer_args.strategy, f"{trainable:,}", f"{total:,}"
    )

    # Only now touch the output directory: a bad input above must not leave anything behind.
    output_dir = prepare_output_dir(training_args.output_dir, training_args.overwrite_output_dir, "sentiment")

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=model_args.max_length)

    keep = {"input_ids", "attention_mask", "token_type_ids", "label"}
    encoded = source.map(tokenize, batched=True, desc="tokenize")
    encoded = encoded.remove_columns([c for c in encoded["train"].column_names if c not in keep])

    # 3. Train.
    trainer = TransferTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=make_compute_metrics(label_names),
    )
    started = time.perf_counter()
    train_result = trainer.train()
    train_seconds = time.perf_counter() - started
    validation = trainer.evaluate()

    # 4. Evaluate every domain's test half with an order-preserving predictor.
    results, rows = {}, []
    for name, test in tests.items():
        logits = predict_logits(
            trainer.model,
            tokenizer,
            test["text"],
            training_args.per_device_eval_batch_size,
            model_args.max_length,
            desc=f"test {name}",
        )
        preds = logits.argmax(-1)
        scores = classification_metrics(preds, test["label"], label_names)
        results[name] = scores
        rows.append(
            {
                "test set": name + (" (in-domain)" if name == data_args.dataset else ""),
                "n": len(test),
                "micro-F1": scores["f1_micro"],
                "macro-F1": scores["f1_macro"],
                "paper MaxEnt (movies)": PAPER_MAXENT_MOVIES.get(name, "")
                if data_args.dataset == "vader-movies"
                else "",
            }
        )
        if name == data_args.dataset:
            in_domain = (test, preds, logits)

    # 5. Save: model, metrics, config, predictions, model card.
    files = [
        str(p.relative_to(output_dir))
        for p in save_classifier(
            trainer.model, tokenizer, output_dir, merge_adapters=transfer_args.merge_adapters
        )
    ]
    test, preds, logits = in_domain
    metrics = {
        "recipe": "sentiment",
        "train": {**train_result.metrics, "wall_seconds": round(train_seconds, 1)},
        "validation": validation,
        "test": results,
        "in_domain_report": per_class_report(preds, test["label"], label_names),
        "in_domain_confusion_matrix": confusion(preds, test["label"], label_names),
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    write_json_atomic(output_dir / "metrics.json", metrics)
    write_yaml_atomic(
        output_dir / "config.yaml", config_to_dict(model_args, data_args, transfer_args, training_args)
    )
    probs = _softmax(logits)
    write_text_atomic(
        output_dir / "predictions.jsonl",
        "".join(
            _jsonl({"text": t, "label": label_names[y], "prediction": label_names[p], "score": float(s[p])})
            for t, y, p, s in zip(test["text"], test["label"], preds, probs, strict=True)
        ),
    )
    columns = ["test set", "n", "micro-F1", "macro-F1"] + (
        ["paper MaxEnt (movies)"] if data_args.dataset == "vader-movies" else []
    )
    table = markdown_table(rows, columns)
    notes = (
        [
            "'paper MaxEnt (movies)': Hutto & Gilbert (ICWSM 2014) Table 5, same protocol (train on a random half "
            "of movies, test on the other half of each corpus); our split is a different random half."
        ]
        if data_args.dataset == "vader-movies"
        else []
    )
    card = model_card(
        title=f"{Path(model_args.model_name_or_path).name} for sentiment ({data_args.dataset})",
        base_model=model_args.model_name_or_path,
        dataset=data_args.dataset,
        strategy=transfer_args.strategy,
        label_names=label_names,
        results_table=table,
        trainable=trainable,
        total=total,
        command="python -m nlptransfer.recipes.sentiment "
        + shlex.join(list(argv if argv is not None else sys.argv[1:])),
        notes=notes,
        load_snippet=_load_snippet(output_dir, transfer_args.strategy),
    )
    write_text_atomic(output_dir / "README.md", card)
    files += ["metrics.json", "config.yaml", "predictions.jsonl", "README.md"]
    finish_output_dir(output_dir, files)

    print(
        f"\nSentiment transfer: {model_args.model_name_or_path} [{transfer_args.strategy}] trained on "
        f"{data_args.dataset} in {train_seconds / 60:.1f} min\n{table}\nSaved to {output_dir}"
    )
    return metrics


def _subsample(ds, n: int, seed: int):
    return ds if len(ds) <= n else ds.shuffle(seed=seed).select(range(n))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _jsonl(row: dict) -> str:
    import json

    return json.dumps(row, ensure_ascii=False) + "\n"


def _load_snippet(output_dir: Path, strategy: str) -> str:
    if strategy == "prompt_tuning":
        return (
            "from peft import AutoPeftModelForSequenceClassification\nfrom transformers import AutoTokenizer, pipeline\n"
            f"model = AutoPeftModelForSequenceClassification.from_pretrained('{output_dir}/adapter')\n"
            f"clf = pipeline('text-classification', model=model, tokenizer=AutoTokenizer.from_pretrained('{output_dir}'))"
        )
    return f"from transformers import pipeline\nclf = pipeline('text-classification', model='{output_dir}')\nclf('what a film!')"


if __name__ == "__main__":
    run_cli(main)
