"""Multi-task: one shared encoder, one head per task, trained together; does sharing help each task?

Defaults (no arguments): the embedded all-MiniLM-L6-v2 shared by four tasks on the VADER gold standard:
3-class sentiment on tweets, Amazon and NYT snippets (three classification tasks) and the mean human rating
(`score`, -4..+4) of movie snippets (a regression task). The same run then trains each task alone, compute-
matched (`--single_task_budget steps`: as many optimizer steps as the whole multi-task run; `task_steps`:
the batches the multi-task model gave that task; `epochs`: the same epochs over its own data), for 3 seeds,
and tests both on every task's held-out half. The table says per task where sharing helps and where it
HURTS (paired t-test over seeds, p < 0.05; a loss beyond seed noise is flagged as negative transfer).

    python -m nlptransfer.recipes.multitask
    python -m nlptransfer.recipes.multitask --config recipes/multitask/minilm_vader.yaml --seeds 5
    python -m nlptransfer.recipes.multitask --task_sampling temperature --sampling_temperature 3
    python -m nlptransfer.recipes.multitask --loss_weighting uncertainty --single_task_budget task_steps
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
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from transformers import set_seed

from nlptransfer.config import ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.data.multitask import encode_tasks, load_tasks, parse_tasks
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.evaluation.sharing import sharing_table
from nlptransfer.modeling import count_parameters, load_tokenizer
from nlptransfer.modeling.multitask import build_multitask_model
from nlptransfer.modeling.pooling import resolve_run_pooling
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import markdown_table, model_card
from nlptransfer.run_dirs import check_input_outside_output
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.multitask import MultiTaskTrainingArguments
from nlptransfer.trainers.multitask.controls import ComparisonSpec, check_budget, run_seed

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
        default="steps",
        metadata={
            "help": "Budget of each single-task control: steps (as many optimizer steps as the whole "
            "multi-task run: compute-matched), task_steps (exactly the batches the multi-task model gave that "
            "task: the controls together cost the multi-task run), epochs (the same epochs over its own data) "
            "or a number N of optimizer steps."
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
        check_budget(self.single_task_budget)
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
    # every seed and single-task control rebuilds the encoder from it, inside the run
    check_input_outside_output(
        model_args.model_name_or_path, training_args.output_dir, "--model_name_or_path"
    )

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
    max_length = model_args.max_length
    spec = ComparisonSpec(
        model_args,
        transfer_args,
        training_args,
        tasks,
        splits,
        tokenizer,
        encode_tasks(splits, tasks, tokenizer, "train", max_length),
        encode_tasks(splits, tasks, tokenizer, "validation", max_length),
        mt_args.compare_single_task,
        mt_args.single_task_budget,
        max_length,
        training_args.per_device_eval_batch_size,
    )
    with RunWriter.from_training_args(training_args, "multitask") as run:
        # 3. For each seed: the multi-task model, then every task alone; all tested on the tasks' test splits.
        runs = []
        for s in range(mt_args.seeds):
            seed = training_args.seed + s
            model = first  # the first seed's model is the one saved
            if s:
                set_seed(seed)
                model = build_multitask_model(model_args, transfer_args, tasks)
            runs.append(run_seed(model, spec, seed))
            del model

        # 4. The table: each task's primary metric, multi-task vs single-task (mean +- std over seeds), verdict.
        sizes = {t.name: len(splits[t.name]["test"]) for t in tasks}
        rows, columns, summary = sharing_table(tasks, runs, sizes, mt_args.compare_single_task)
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
            notes=card_notes(tasks, training_args, mt_args, summary),
            load_snippet=load_snippet(run.output_dir, tasks[0].name),
        )
        run.write_text("README.md", card)
        verdicts = "".join(f"\n  {v['verdict']['text']}" for v in summary.values() if "verdict" in v)
        print(
            f"\nMulti-task vs single-task ({mt_args.seeds} seed(s), single-task budget "
            f"{mt_args.single_task_budget}, test splits)\n{table}{verdicts}\nSaved to {run.output_dir}"
        )
        return metrics


def card_notes(tasks, training_args, mt_args, summary) -> list[str]:
    """The model card's notes: metrics, task sampling and loss weighting, the controls, the verdicts."""
    temperature = ""
    if training_args.task_sampling == "temperature":
        temperature = f" (T={training_args.sampling_temperature})"
    notes = [
        "Primary metrics: macro-F1 (classification), micro-F1 (multi-label), Pearson r (regression) on each "
        "task's test split; 'combined' validation score = their mean.",
        f"Batches are drawn per task with {training_args.task_sampling} sampling{temperature}; "
        f"{training_args.num_train_epochs:g} epoch(s) = that many passes' worth of batches over all tasks; "
        f"task losses weighted {training_args.loss_weighting}.",
    ]
    if mt_args.compare_single_task:
        budget = {
            "steps": "as many optimizer steps as the whole multi-task run (compute-matched: more epochs over "
            "its own data)",
            "task_steps": "exactly the batches the multi-task model drew from that task (the controls together "
            "cost the multi-task run)",
            "epochs": "the same number of epochs over its own data (fewer optimizer steps than the multi-task "
            "run: not compute-matched)",
        }.get(mt_args.single_task_budget, f"exactly {mt_args.single_task_budget} optimizer steps")
        notes.append(
            f"Single-task controls: the same encoder and head trained on that task alone for {budget}, same "
            "settings and seed. Sharing: paired t-test of multi - single over the seeds (p < 0.05; HURTS = "
            "negative transfer beyond seed noise). "
            + " ".join(v["verdict"]["text"] + "." for v in summary.values() if "verdict" in v)
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
