"""Training defaults per transfer strategy (`recipes/strategy_defaults.yaml`): a user who picks
`--strategy lora` and sets no learning rate gets LoRA's, not full fine-tuning's (at which adapters and a lone
head stay at the class prior). The same values serve a single run and `--compare`.

    changed = apply_strategy_defaults(transfer_args, training_args)   # {"learning_rate": 0.001} (logged)

A value the user gave (a flag, or a key of their --config: `config.user_set`) always wins; `--max_steps`
given by the user also keeps the epochs unchanged.

`fit_budget_to_data` sizes the epochs to the data: a recipe's `min_train_steps` (its YAML) raises the
epochs of a small training set (a user's 800 rows: 24 steps at the default budget, too few to leave the
class prior) unless the user chose the epochs or steps: by a flag, or by a --config that sets no
min_train_steps.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from nlptransfer.config import default_config, flag_set, read_yaml, user_set
from nlptransfer.errors import ConfigError

logger = logging.getLogger("nlptransfer")

FILE = "strategy_defaults.yaml"
KEYS = ("learning_rate", "num_train_epochs")


def strategy_table() -> dict[str, dict[str, Any]]:
    """strategy -> {setting: value} from the shipped YAML (only `KEYS` may appear)."""
    table = read_yaml(default_config(FILE))
    for strategy, values in table.items():
        if not isinstance(values, dict) or set(values) - set(KEYS):
            raise ConfigError(f"recipes/{FILE}: {strategy!r} must map some of {', '.join(KEYS)} to numbers")
    return table


def strategy_settings(strategy: str, training_args, adapter_lr: float | None = None) -> dict[str, Any]:
    """The training settings `strategy` changes for this run: its table values for the settings the user
    did not give. `adapter_lr` (--compare_adapter_lr, when set) replaces the learning rate of every strategy
    but full."""
    given = user_set(training_args)
    values = dict(strategy_table().get(strategy, {}))
    if "learning_rate" in given:
        values.pop("learning_rate", None)
    if {"num_train_epochs", "max_steps"} & given:
        values.pop("num_train_epochs", None)
    if adapter_lr is not None and strategy != "full":
        values["learning_rate"] = adapter_lr
    return {k: v for k, v in values.items() if getattr(training_args, k) != v}


def apply_strategy_defaults(transfer_args, training_args) -> dict[str, Any]:
    """Set `strategy_settings` on `training_args` (so config.yaml records them), log them once, return them."""
    changed = strategy_settings(transfer_args.strategy, training_args)
    for key, value in changed.items():
        setattr(training_args, key, value)
    if changed:
        shown = ", ".join(f"--{k} {v:g}" for k, v in changed.items())
        logger.info("--strategy %s: using its defaults %s (recipes/%s)", transfer_args.strategy, shown, FILE)
    return changed


def fit_budget_to_data(training_args, n_train: int) -> dict[str, Any]:
    """Raise `num_train_epochs` so that at least `training_args.min_train_steps` optimizer steps run on
    `n_train` training examples; not when the user chose the budget: --num_train_epochs or --max_steps as a
    flag, or in a --config file that sets no min_train_steps (a file that sets both, such as the shipped
    YAMLs, asks for "these epochs, but at least this many steps"), or max_steps set at all. Changes
    `training_args` (so config.yaml records it), logs once, returns the change."""
    minimum = getattr(training_args, "min_train_steps", 0)
    if minimum <= 0 or n_train <= 0 or training_args.max_steps > 0:
        return {}
    chosen = {"num_train_epochs", "max_steps"} & user_set(training_args)
    if chosen & flag_set(training_args):  # a flag always wins
        return {}
    if chosen and "min_train_steps" not in user_set(training_args):  # a --config fixed the epochs, no minimum
        return {}
    batches = math.ceil(n_train / (training_args.train_batch_size * training_args.world_size))
    per_epoch = max(1, batches // training_args.gradient_accumulation_steps)
    epochs = math.ceil(minimum / per_epoch)
    if epochs <= training_args.num_train_epochs:
        return {}
    logger.info(
        "%d training examples give %d optimizer steps per epoch: raising --num_train_epochs from %g to %d "
        "(at least %d steps, min_train_steps of the recipe); set --num_train_epochs or --max_steps to choose",
        n_train,
        per_epoch,
        training_args.num_train_epochs,
        epochs,
        minimum,
    )
    training_args.num_train_epochs = epochs
    return {"num_train_epochs": epochs}
