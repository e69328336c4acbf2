"""Build a model for a task under a transfer strategy, and save it so plain transformers/peft load it.

Strategies (`TransferArguments.strategy`):
- `full`: every pretrained weight and the new head train.
- `frozen`: feature extraction; the backbone is frozen, only the new head trains.
- `lora`, `ia3`: peft adapters on the backbone; `prompt_tuning`: a peft soft prompt. With
  `task_type="SEQ_CLS"` peft keeps the new classification head trainable *and* saves it with the adapter.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import IA3Config, LoraConfig, PeftModel, PromptTuningConfig, TaskType, get_peft_model
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from nlptransfer import assets
from nlptransfer.config import DEFAULT_MODEL, ModelArguments, TransferArguments
from nlptransfer.errors import ModelError

logger = logging.getLogger("nlptransfer")


def _not_found(name: str, err: Exception) -> ModelError:
    return ModelError(
        f"model {name!r} could not be loaded ({type(err).__name__}): it is not a local directory and the "
        f"Hugging Face Hub is unreachable or has no such id; use the embedded default "
        f"--model_name_or_path {DEFAULT_MODEL} or a local directory with config.json"
    )


def _pickle_refused(name: str) -> ModelError:
    return ModelError(
        f"model {name!r} has only pickled PyTorch weights (pytorch_model.bin), which can run arbitrary code "
        f"when loaded; convert it to safetensors, or pass --allow_pickle true if you trust its source"
    )


def _only_pickled_weights(path: str) -> bool:
    """A local model folder with pickled weights (*.bin/*.pt/*.pth) and no *.safetensors."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return False
    files = [p.name for p in folder.iterdir() if p.is_file()]
    pickled = any(f.endswith((".bin", ".pt", ".pth")) and "training_args" not in f for f in files)
    return pickled and not any(f.endswith(".safetensors") for f in files)


def load_tokenizer(model_args: ModelArguments):
    path = assets.resolve_model(model_args.model_name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=model_args.trust_remote_code)
    except (OSError, ValueError) as err:
        raise _not_found(model_args.model_name_or_path, err) from err


def build_classifier(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    label_names: list[str],
    problem_type: str = "single_label_classification",
) -> PreTrainedModel | PeftModel:
    """A sequence classifier with a new head for `label_names`, prepared for the chosen strategy."""
    path = assets.resolve_model(model_args.model_name_or_path)
    if model_args.trust_remote_code:
        logger.warning("trust_remote_code is ON: code from %s may run on this machine", path)
    try:
        config = AutoConfig.from_pretrained(
            path,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
            problem_type=problem_type,
            trust_remote_code=model_args.trust_remote_code,
        )
        if model_args.from_scratch:
            model = AutoModelForSequenceClassification.from_config(
                config, trust_remote_code=model_args.trust_remote_code
            )
        else:
            if not model_args.allow_pickle and _only_pickled_weights(path):
                raise _pickle_refused(model_args.model_name_or_path)
            model = AutoModelForSequenceClassification.from_pretrained(
                path,
                config=config,
                trust_remote_code=model_args.trust_remote_code,
                # safetensors only: unpickling a .bin checkpoint can execute arbitrary code.
                use_safetensors=None if model_args.allow_pickle else True,
            )
    except ModelError:
        raise
    except (OSError, ValueError) as err:
        if not model_args.allow_pickle and ".bin" in str(err) and not model_args.from_scratch:
            raise _pickle_refused(model_args.model_name_or_path) from err
        if "does not appear to have a file named" in str(err) or isinstance(err, OSError):
            raise _not_found(model_args.model_name_or_path, err) from err
        raise ModelError(
            f"model {model_args.model_name_or_path!r} cannot be used for classification: {err}"
        ) from err
    return apply_strategy(model, transfer_args)


def head_parameter_names(model: PreTrainedModel) -> set[str]:
    """Names of parameters outside the pretrained backbone (the task head)."""
    prefix = model.base_model_prefix
    return {n for n, _ in model.named_parameters() if not n.startswith(prefix + ".")}


def apply_strategy(
    model: PreTrainedModel, transfer_args: TransferArguments, task_type: TaskType = TaskType.SEQ_CLS
) -> PreTrainedModel | PeftModel:
    """The model prepared for `transfer_args.strategy`; peft adapters use `task_type` (seq2seq models:
    `TaskType.SEQ_2_SEQ_LM`)."""
    strategy = transfer_args.strategy
    if strategy == "full":
        return model
    if strategy == "frozen":
        head = head_parameter_names(model)
        for name, param in model.named_parameters():
            param.requires_grad = name in head
        return model
    if strategy == "lora":
        peft_config = LoraConfig(
            task_type=task_type,
            r=transfer_args.lora_r,
            lora_alpha=transfer_args.lora_alpha,
            lora_dropout=transfer_args.lora_dropout,
            target_modules=transfer_args.target_modules,
        )
    elif strategy == "ia3":
        peft_config = IA3Config(task_type=task_type, target_modules=transfer_args.target_modules)
        if transfer_args.target_modules:
            # IA3 scales feed-forward layers' *inputs*; a user list names no feed-forward modules.
            peft_config.feedforward_modules = []
    else:  # prompt_tuning
        peft_config = PromptTuningConfig(
            task_type=task_type, num_virtual_tokens=transfer_args.num_virtual_tokens
        )
    try:
        return get_peft_model(model, peft_config)
    except ValueError as err:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        )
        first = str(err).strip().splitlines()[0]
        raise ModelError(
            f"{strategy} cannot be applied to {type(model).__name__}: {first}; pick --target_modules from "
            f"the model's linear layers: {', '.join(linear)}"
        ) from err


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_classifier(model, tokenizer, output_dir: Path, merge_adapters: bool = True) -> list[Path]:
    """Save a classifier; returns the files written.

    Full/frozen models: a plain transformers model (`pipeline("text-classification", model=output_dir)`).
    peft models: the adapter and the trained head in PEFT format under `output_dir/adapter`, with the
    label config beside it (`AutoPeftModelForSequenceClassification.from_pretrained(dir, num_labels=...)`).
    For lora/ia3 with `merge_adapters`, the top level holds the merged plain model; otherwise (and always
    for prompt tuning, which cannot merge) the top level holds the adapter as well.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    before = {p: p.stat().st_mtime_ns for p in output_dir.rglob("*") if p.is_file()}
    if isinstance(model, PeftModel):
        adapter_dir = output_dir / "adapter"
        model.save_pretrained(adapter_dir)
        model.base_model.config.save_pretrained(adapter_dir)  # id2label/label2id for reloading the head
        tokenizer.save_pretrained(adapter_dir)
        kind = model.peft_config[model.active_adapter].peft_type.value
        if merge_adapters and kind in ("LORA", "IA3"):
            model.merge_and_unload().save_pretrained(output_dir)
        else:
            model.save_pretrained(output_dir)
            model.base_model.config.save_pretrained(output_dir)
    else:
        model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return sorted(p for p in output_dir.rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime_ns)
