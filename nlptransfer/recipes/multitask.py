"""Multi-task: one shared encoder, one head per task, trained together; does sharing help each task?

Defaults (no arguments): the embedded all-MiniLM-L6-v2 shared by four tasks on the VADER gold standard:
3-class sentiment on tweets, Amazon and NYT snippets (three classification tasks) and the mean human rating
(`score`, -4..+4) of movie snippets (a regression task). The same run then trains each task alone (a
single-task model with the same encoder, head, settings and number of epochs over its own data) and tests
both on every task's held-out half.

    python -m nlptransfer.recipes.multitask
    python -m nlptransfer.recipes.multitask --config recipes/multitask/minilm_vader.yaml --seeds 3
    python -m nlptransfer.recipes.multitask --task_sampling temperature --sampling_temperature 3
    python -m nlptransfer.recipes.multitask --strategy lora --learning_rate 1e-3 --output_dir outputs/mt-lora

Tasks are declared in the YAML (`tasks:` list of name, dataset, type classification|multilabel|regression,
text_column, label_column, weight, max_train_samples, max_eval_samples); on the command line `--tasks` takes
the same list as JSON.

Output directory: the multi-task model (`encoder/`, `heads.safetensors`, `multitask_config.json`:
`MultiTaskModel.from_pretrained(dir)`), each task exported as a plain classifier under `tasks/<name>/`
(`pipeline("text-classification", model=...)`), `metrics.json`, `results.md`, `config.yaml`, `README.md`
(model card) and `run.json`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from transformers import set_seed

from nlptransfer.config import ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.data.multitask import encode_tasks, load_tasks, parse_tasks
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.modeling import count_parameters, load_tokenizer
from nlptransfer.modeling.multitask import build_multitask_model, evaluate_tasks
from nlptransfer.modeling.pooling import resolve_run_pooling
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import format_mean_std, markdown_table, model_card
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.multitask import MultiTaskTrainingArguments, fit_multitask

logger = logging.getLogger("nlptransfer")


@dataclass
class MultiTaskArguments:
    tasks: list | str | None = field(  # list: the YAML list; str: the flag's JSON
        default=None,
        metadata={
            "help": "The tasks: a YAML list of {name, dataset, type: classification|multilabel|regression, "
            "text_column, label_column, weight, max_train_samples, max_eval_samples}; on the command line "
            "the same list as JSON."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Default cap on each task's training rows (a task's own value wins)."}
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Default cap on each task's validation and test rows (a task's own value wins)."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/validation/test splits."})
    compare_single_task: bool = field(
        default=True,
        metadata={"help": "Also train each task alone (same settings and epochs) and report the difference."},
    )
    single_task_budget: str = field(
        default="epochs",
        metadata={
            "help": "Budget of each single-task model: epochs (the same number of epochs over its own data: "
            "the examples of that task the multi-task model saw) or steps (as many optimizer steps as the "
            "whole multi-task run: the same compute, so more epochs over its own data).",
            "choices": ["epochs", "steps"],
        },
    )
    seeds: int = field(
        default=1, metadata={"help": "Repeat with seeds seed, seed+1, ...; report mean +- std."}
    )
    export_tasks: bool = field(
        default=True,
        metadata={
            "help": "Write every task as a classifier pipeline() loads under tasks/<name>/ (cls/mean/max: "
            "after import nlptransfer)."
        },
    )

    def __post_init__(self):
        if isinstance(self.tasks, str):  # --tasks '[{"name": ...}]' on the command line
            self.tasks = yaml.safe_load(self.tasks)
        parse_tasks(self.tasks)  # bad task lists fail here, before any data is read
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1")
        for name in ("max_train_samples", "max_eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be a positive number of rows, or unset")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, MultiTaskArguments, TransferArguments, MultiTaskTrainingArguments],
        defaults="multitask/minilm_vader.yaml",
        prog="python -m nlptransfer.recipes.multitask",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, mt_args, transfer_args, training_args = make_parser().parse(argv)
    setup_logging(training_args.verbose)

    # 1. Tasks and their data (every task's train/validation/test; tasks on one dataset share its split).
    tasks = parse_tasks(mt_args.tasks)
    for task in tasks:
        task.max_train_samples = task.max_train_samples or mt_args.max_train_samples
        task.max_eval_samples = task.max_eval_samples or mt_args.max_eval_samples
    splits = load_tasks(tasks, mt_args.split_seed)

    # 2. Tokenizer and encoded splits; the model is checked before the output directory is touched.
    resolve_run_pooling(
        model_args, transfer_args.strategy
    )  # "auto" -> the pooling used, logged, in config.yaml
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    set_seed(training_args.seed)  # the heads' initialisation
    # a model, LoRA target or --max_length that cannot work fails here, before any file is written
    first = build_multitask_model(model_args, transfer_args, tasks)
    max_length, batch_size = model_args.max_length, training_args.per_device_eval_batch_size
    train = encode_tasks(splits, tasks, tokenizer, "train", max_length)
    validation = encode_tasks(splits, tasks, tokenizer, "validation", max_length)
    with RunWriter.from_training_args(training_args, "multitask") as run:
        # 3. For each seed: the multi-task model, then every task alone; all tested on the tasks' test splits.
        runs = []
        for s in range(mt_args.seeds):
            seed = training_args.seed + s
            seed_run = {"seed": seed, "multitask": {}, "single_task": {}}
            model = first  # the first seed's model is the one saved
            if s:
                set_seed(seed)
                model = build_multitask_model(model_args, transfer_args, tasks)
            fit = fit_multitask(model, tasks, train, validation, tokenizer, training_args, seed)
            tested = evaluate_tasks(model, tokenizer, tasks, splits, "test", batch_size, max_length)
            seed_run["multitask"], seed_run["multitask_train"] = tested, fit
            del model
            if mt_args.compare_single_task:
                single_args = training_args
                # as many optimizer steps as the multi-task model took
                if mt_args.single_task_budget == "steps":
                    single_args = replace(training_args, max_steps=fit["steps"])
                for task in tasks:
                    set_seed(seed)
                    # re-encoded: task ids count from 0 in a one-task model
                    alone = build_multitask_model(model_args, transfer_args, [task])
                    fit_alone = fit_multitask(
                        alone,
                        [task],
                        encode_tasks(splits, [task], tokenizer, "train", max_length),
                        encode_tasks(splits, [task], tokenizer, "validation", max_length),
                        tokenizer,
                        single_args,
                        seed,
                    )
                    tested = evaluate_tasks(alone, tokenizer, [task], splits, "test", batch_size, max_length)
                    seed_run["single_task"][task.name] = tested[task.name]
                    seed_run.setdefault("single_task_train", {})[task.name] = fit_alone
            runs.append(seed_run)

        # 4. The table: each task's primary metric, multi-task vs single-task (mean +- std over seeds).
        rows, summary = [], {}
        for task in tasks:
            metric = task.primary_metric
            mt = [r["multitask"][task.name][metric] for r in runs]
            row = {
                "task": task.name,
                "dataset": task.dataset,
                "type": task.type,
                "metric": metric,
                "n test": len(splits[task.name]["test"]),
                "multi-task": format_mean_std(mt),
            }
            summary[task.name] = {"metric": metric, "multitask": mt}
            if mt_args.compare_single_task:
                st = [r["single_task"][task.name][metric] for r in runs]
                delta = [a - b for a, b in zip(mt, st, strict=True)]
                row["single-task"] = format_mean_std(st)
                row["Δ (multi - single)"] = format_mean_std(delta, signed=True)
                summary[task.name].update(single_task=st, delta=delta)
            rows.append(row)
        columns = ["task", "dataset", "type", "metric", "n test", "multi-task"]
        if mt_args.compare_single_task:
            columns += ["single-task", "Δ (multi - single)"]
        table = markdown_table(rows, columns)

        # 5. Save (main process): the multi-task model, per-task exports, metrics, config, card.
        command = command_line("multitask", argv)
        trainable, total = count_parameters(first)
        metrics = {
            "recipe": "multitask",
            "tasks": [dataclasses.asdict(t) for t in tasks],
            "summary": summary,
            "runs": runs,
            "trainable_parameters": trainable,
            "total_parameters": total,
        }
        first.save_pretrained(run, tokenizer)
        if mt_args.export_tasks:
            for task in tasks:
                first.export_task(task.name, run, tokenizer, relpath=f"tasks/{task.name}")
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, mt_args, transfer_args, training_args))
        run.write_text("results.md", table + "\n")
        card = model_card(
            title=f"{Path(model_args.model_name_or_path).name}: multi-task ({', '.join(t.name for t in tasks)})",
            base_model=model_args.model_name_or_path,
            dataset=", ".join(sorted({t.dataset for t in tasks})),
            strategy=transfer_args.strategy,
            pooling=model_args.pooling,
            label_names=[t.name for t in tasks],
            results_table=table,
            trainable=trainable,
            total=total,
            command=command,
            notes=card_notes(tasks, training_args, mt_args),
            load_snippet=load_snippet(run.output_dir, tasks[0].name),
        )
        run.write_text("README.md", card)
        print(
            f"\nMulti-task vs single-task ({mt_args.seeds} seed(s), test splits)\n{table}\nSaved to {run.output_dir}"
        )
        return metrics


def card_notes(tasks, training_args, mt_args) -> list[str]:
    """The model card's notes: metrics, task sampling and what the single-task models are."""
    temperature = ""
    if training_args.task_sampling == "temperature":
        temperature = f" (T={training_args.sampling_temperature})"
    notes = [
        "Primary metrics: macro-F1 (classification), micro-F1 (multi-label), Pearson r (regression) on each "
        "task's test split; 'combined' validation score = their mean.",
        f"Batches are drawn per task with {training_args.task_sampling} sampling{temperature}; "
        f"{training_args.num_train_epochs:g} epoch(s) = that many passes' worth of batches over all tasks.",
    ]
    if mt_args.compare_single_task and mt_args.single_task_budget == "epochs":
        notes.append(
            "Single-task: the same encoder and head trained on that task alone for the same number of epochs "
            "over its own data (as many of its examples as the multi-task model sees in expectation under "
            "proportional sampling), same learning rate, batch size and seed. It takes fewer optimizer steps "
            "than the multi-task run; --single_task_budget steps gives it as many (same compute)."
        )
    elif mt_args.compare_single_task:
        notes.append(
            "Single-task: the same encoder and head trained on that task alone for as many optimizer steps as "
            "the whole multi-task run (same compute; more epochs over its own data), same settings and seed."
        )
    return notes


def load_snippet(output_dir: Path, first: str) -> str:
    """The card's code: the multi-task model, and task `first` as a plain transformers pipeline."""
    return (
        "from nlptransfer.modeling.multitask import MultiTaskModel, predict_task\n"
        "from transformers import AutoTokenizer, pipeline\n"
        f"model = MultiTaskModel.from_pretrained('{output_dir}')\n"
        f"tok = AutoTokenizer.from_pretrained('{output_dir}/encoder')\n"
        f"print(predict_task(model, tok, '{first}', ['what a great film']))\n"
        f"clf = pipeline('text-classification', model='{output_dir}/tasks/{first}')  # one task (pooled heads: loads once nlptransfer is imported)"
    )


if __name__ == "__main__":
    run_cli(main)
