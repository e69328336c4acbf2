"""Build a model for a transfer strategy (`apply_strategy`) from THE table in `nlptransfer.strategies`.

`full` leaves the model as it is, `frozen` trains the head only, `bitfit` the bias terms and the head (no
peft); every other strategy is a peft method whose config is built from its table row (`options`: peft
keyword <- `TransferArguments` field, `fixed`) or, for `peft`, read from `--peft_config FILE` through
peft's own `get_peft_config`. The task type is always ours (`TaskType.SEQ_CLS`, or `SEQ_2_SEQ_LM` for a
translation child). A method that cannot apply to the model is one `ModelError` line, raised here, before
any recipe opens its run directory.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml
from peft import PeftModel, TaskType, get_peft_config, get_peft_model
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from transformers import PreTrainedModel

from nlptransfer.errors import ConfigError, ModelError, first_line
from nlptransfer.strategies import MERGING_PEFT_TYPES, TABLE


@contextmanager
def peft_wrapping() -> Iterator[None]:
    """Around building a `PeftModel` (`get_peft_model`, `PeftModel.from_pretrained`): peft's constructor reads
    `model.is_gradient_checkpointing`, a property transformers 5 deprecated, so every adapter run printed a
    FutureWarning that is not the user's to fix. Exactly that warning is silenced, here only."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def head_parameter_names(model: PreTrainedModel) -> set[str]:
    """Names of parameters outside the pretrained backbone (the task head)."""
    prefix = model.base_model_prefix
    return {n for n, _ in model.named_parameters() if not n.startswith(prefix + ".")}


def read_peft_config(path: str) -> dict:
    """The mapping in a YAML/JSON peft config file, or one ConfigError line."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--peft_config {path!r} is not a file; pass a YAML/JSON file such as peft.yaml")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))  # JSON is YAML
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"--peft_config {path}: not readable YAML/JSON ({first_line(err)})") from err
    if not isinstance(data, dict) or not data.get("peft_type"):
        raise ConfigError(
            f"--peft_config {path} must hold a mapping with a peft_type, e.g. {{peft_type: LORA, r: 4}}"
        )
    return data


def peft_config_from_file(path: str, task_type: TaskType):
    """peft's config object for the file's method (`get_peft_config`), with our task type."""
    data = dict(read_peft_config(path))
    data["peft_type"] = str(data["peft_type"]).upper()
    data["task_type"] = task_type
    known = sorted(str(t.value) for t in PEFT_TYPE_TO_CONFIG_MAPPING)
    if data["peft_type"] not in known:
        raise ConfigError(
            f"--peft_config {path}: unknown peft_type {data['peft_type']!r}; choose one of {', '.join(known)}"
        )
    try:
        return get_peft_config(data)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"--peft_config {path}: invalid {data['peft_type']} config ({first_line(err)})"
        ) from err


def layer_norm_names(model: torch.nn.Module) -> list[str]:
    """Last name parts of the model's LayerNorm modules (ln_tuning's default targets)."""
    return sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    )


def peft_config_for(model: PreTrainedModel, transfer_args, task_type: TaskType):
    """The peft config of `transfer_args.strategy` (its table row, or `--peft_config`)."""
    if transfer_args.strategy == "peft":
        return peft_config_from_file(transfer_args.peft_config, task_type)
    row = TABLE[transfer_args.strategy]
    kwargs = {key: getattr(transfer_args, field) for key, field in row.options.items()}
    kwargs = {**kwargs, **row.fixed, "task_type": task_type, "peft_type": row.peft_type}
    if row.peft_type == "IA3" and transfer_args.target_modules:
        kwargs["feedforward_modules"] = []  # IA3 scales feed-forward *inputs*; a user list names none
    if row.peft_type == "LN_TUNING" and not transfer_args.target_modules:
        kwargs["target_modules"] = layer_norm_names(model)  # peft has no default for most architectures
    return get_peft_config(kwargs)


def check_prefix_tuning(peft_model: PeftModel, model: PreTrainedModel) -> None:
    """peft's prefix tuning of a classifier passes past_key_values to the model or its backbone: refuse
    at build time what peft would refuse at the first forward pass. (transformers 5 calls that argument
    `cache`, so with peft <= 0.21 no classifier qualifies; seq2seq models still take it.)"""
    if "past_key_values" in inspect.signature(model.forward).parameters:
        return
    backbone = getattr(peft_model, "transformer_backbone_name", None)
    if backbone and "past_key_values" in inspect.signature(model.get_submodule(backbone).forward).parameters:
        return
    raise ModelError(
        f"prefix_tuning cannot be applied to {type(model).__name__}: neither it nor its backbone takes the "
        "past_key_values argument peft's prefix tuning passes; use --strategy prompt_tuning or lora"
    )


def target_error(model: torch.nn.Module, transfer_args, problem: str) -> ModelError:
    """The one line for a peft method that does not fit the model: the problem and the layers to pick."""
    linear = sorted(
        {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    strategy = transfer_args.strategy
    where = f"target_modules in {transfer_args.peft_config}" if strategy == "peft" else "--target_modules"
    return ModelError(
        f"{strategy} cannot be applied to {type(model).__name__}: {problem}; pick {where} from the "
        f"model's linear layers: {', '.join(linear)}"
    )


def check_targets(
    model: torch.nn.Module, transfer_args, task_type: TaskType = TaskType.SEQ_CLS, peft_config=None
) -> None:
    """Refuse, before a recipe writes anything, a peft config whose target modules name no module of
    `model` (peft's rule: a list entry matches a module name or its last dotted parts, a string is a
    regular expression over the full name). Recipes that build the model inside their run call this first."""
    if peft_config is None:
        if TABLE[transfer_args.strategy].peft_type is None and transfer_args.strategy != "peft":
            return
        peft_config = peft_config_for(model, transfer_args, task_type)
    targets = getattr(peft_config, "target_modules", None)
    if not targets or targets == "all-linear":
        return
    names = [name for name, _ in model.named_modules() if name]
    if isinstance(targets, str):
        missing = [] if any(re.fullmatch(targets, name) for name in names) else [targets]
    else:  # every entry must name a module: a typo in one would silently leave its layers untouched
        missing = sorted(t for t in targets if not any(n == t or n.endswith("." + t) for n in names))
    if missing:
        raise target_error(
            model, transfer_args, f"target modules {', '.join(missing)} not found in the model"
        )


def apply_strategy(
    model: PreTrainedModel, transfer_args, task_type: TaskType = TaskType.SEQ_CLS
) -> PreTrainedModel | PeftModel:
    """The model prepared for `transfer_args.strategy` (a row of `nlptransfer.strategies.TABLE`); peft
    methods use `task_type` (seq2seq models: `TaskType.SEQ_2_SEQ_LM`)."""
    strategy = transfer_args.strategy
    if strategy == "full":
        return model
    if strategy in ("frozen", "bitfit"):
        head = head_parameter_names(model)
        biases = {n for n, _ in model.named_parameters() if strategy == "bitfit" and n.endswith(".bias")}
        if strategy == "bitfit" and not biases - head:
            raise ModelError(
                f"bitfit cannot be applied to {type(model).__name__}: its backbone has no bias terms, so only "
                "the head would train; use --strategy frozen, lora or ln_tuning"
            )
        for name, param in model.named_parameters():
            param.requires_grad = name in head or name in biases
        return model
    peft_config = peft_config_for(model, transfer_args, task_type)
    check_targets(model, transfer_args, task_type, peft_config)
    try:
        with peft_wrapping():
            peft_model = get_peft_model(model, peft_config)
    except (ValueError, TypeError, KeyError, AttributeError, NotImplementedError) as err:
        raise target_error(model, transfer_args, first_line(err)) from err
    if peft_config.peft_type == "PREFIX_TUNING" and task_type == TaskType.SEQ_CLS:
        check_prefix_tuning(peft_model, model)
    return peft_model


def merges(model: PeftModel) -> bool:
    """Whether the active adapter's method merges into the base weights (a strategy row with merges)."""
    kind = model.peft_config[model.active_adapter].peft_type
    return str(getattr(kind, "value", kind)) in MERGING_PEFT_TYPES
