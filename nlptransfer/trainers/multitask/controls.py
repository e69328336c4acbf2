"""One seed of the multi-task comparison: the multi-task model, then every task alone with its budget.

Budgets of the single-task controls (`single_task_budget`):

- `steps` (compute-matched, the default): as many optimizer steps as the whole multi-task run. The money a
  user spends on a model that serves the task is the same either way, so "does sharing help task t?" is
  asked at equal cost: the shared encoder gets no more updates than the task's own encoder.
- `task_steps`: exactly as many training batches as the multi-task model drew from that task (counted by
  `MultiTaskTrainer.task_batches`; = optimizer steps with gradient_accumulation_steps 1). The controls then
  sum to the multi-task run's steps: the same total compute for the whole set of tasks, and the question is
  whether the other tasks' batches help beyond the task's own.
- N (a positive integer): exactly N optimizer steps for every control.
- `epochs`: the same number of epochs over the task's own data (fewer steps than the multi-task run: the
  multi-task model's encoder gets more updates, which is how sharing looked helpful before issue 19).

    run = run_seed(first, spec, seed)           # {"seed", "multitask", "multitask_train", "single_task", ...}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from transformers import set_seed

from nlptransfer.data.multitask import TaskConfig, encode_tasks
from nlptransfer.errors import ConfigError
from nlptransfer.modeling.multitask import build_multitask_model, evaluate_tasks
from nlptransfer.trainers.multitask.config import MultiTaskTrainingArguments
from nlptransfer.trainers.multitask.trainer import fit_multitask

BUDGETS = ("steps", "task_steps", "epochs")


def check_budget(budget: str) -> int | None:
    """The budget's fixed number of steps (a positive integer given as N), None for a named budget; a one-line
    ConfigError otherwise."""
    text = str(budget).strip()
    if text in BUDGETS:
        return None
    if text.lstrip("+-").isdigit():
        if int(text) < 1:
            raise ConfigError(
                f"single_task_budget={text} must be >= 1 optimizer steps (or steps, task_steps, epochs)"
            )
        return int(text)
    raise ConfigError(
        f"unknown single_task_budget {text!r}; choose steps (compute-matched), task_steps, epochs or a number "
        "of optimizer steps"
    )


def single_task_args(
    training_args: MultiTaskTrainingArguments, budget: str, fit: dict, task: str
) -> MultiTaskTrainingArguments | None:
    """The training arguments of task `task`'s control after the multi-task run `fit` (see the module
    docstring); None when the budget is 0 steps (the multi-task model never drew a batch of the task). The
    control's loss is the task's plain loss (`loss_weighting` fixed: a learned weight of a lone task would only
    rescale its learning rate), so every sampling / weighting variant meets the same control."""
    fixed = check_budget(budget)
    training_args = replace(training_args, loss_weighting="fixed")
    if budget == "epochs":
        return training_args
    if fixed is not None:
        steps = fixed
    elif budget == "steps":
        steps = fit["steps"]
    else:
        steps = math.ceil(fit["task_batches"][task] / training_args.gradient_accumulation_steps)
    return replace(training_args, max_steps=steps) if steps > 0 else None


@dataclass
class ComparisonSpec:
    """What every seed shares: arguments, tasks and their data, the tokenizer, the encoded splits."""

    model_args: Any
    transfer_args: Any
    training_args: MultiTaskTrainingArguments
    tasks: Sequence[TaskConfig]
    splits: dict
    tokenizer: Any
    train: dict
    validation: dict
    compare: bool
    budget: str
    max_length: int
    batch_size: int


def run_seed(model, spec: ComparisonSpec, seed: int) -> dict:
    """Train `model` (multi-task) and, with `spec.compare`, every task alone; all tested on the test splits.
    Returns {"seed", "multitask", "multitask_train", "single_task", "single_task_train"}."""
    s = spec
    fit = fit_multitask(model, s.tasks, s.train, s.validation, s.tokenizer, s.training_args, seed)
    tested = evaluate_tasks(model, s.tokenizer, s.tasks, s.splits, "test", s.batch_size, s.max_length)
    run = {"seed": seed, "multitask": tested, "multitask_train": fit, "single_task": {}}
    if not s.compare:
        return run
    run["single_task_train"] = {}
    for task in s.tasks:
        set_seed(seed)
        alone = build_multitask_model(s.model_args, s.transfer_args, [task])
        args = single_task_args(s.training_args, s.budget, fit, task.name)
        if args is None:  # 0 steps: the untrained model is the control
            fit_alone = {"steps": 0, "task_batches": {task.name: 0}}
        else:  # re-encoded: task ids count from 0 in a one-task model
            fit_alone = fit_multitask(
                alone,
                [task],
                encode_tasks(s.splits, [task], s.tokenizer, "train", s.max_length),
                encode_tasks(s.splits, [task], s.tokenizer, "validation", s.max_length),
                s.tokenizer,
                args,
                seed,
            )
        tested = evaluate_tasks(alone, s.tokenizer, [task], s.splits, "test", s.batch_size, s.max_length)
        run["single_task"][task.name] = tested[task.name]
        run["single_task_train"][task.name] = fit_alone
    return run
