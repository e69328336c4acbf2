"""Multi-task learning, the model: one shared pretrained encoder, one small head per task.

    tasks = parse_tasks([...]); splits = load_tasks(tasks)   # nlptransfer.data.multitask: specs and data
    model = MultiTaskModel.from_encoder("sentence-transformers/all-MiniLM-L6-v2", tasks)
    # or, with a transfer strategy (full, frozen, lora): build_multitask_model(model_args, transfer_args, tasks)
    train = MultiTaskDataset(encode_tasks(splits, tasks, tokenizer, "train", 128))   # then MultiTaskTrainer
    scores = evaluate_tasks(model, tokenizer, tasks, splits)   # each task's metrics on its test split

Task types: `classification` (single label, softmax + cross-entropy), `multilabel` (sigmoid + binary
cross-entropy over a multi-hot target) and `regression` (one output, mean squared error on the target
standardised with the training mean/std; predictions come back in the original units).

Heads read the encoder's pooled output (`pooling="pooler"`: the [CLS] vector through BERT's pooler, exactly
what `AutoModelForSequenceClassification` does, so every task exports as an ordinary classifier that
`pipeline(...)` loads) or one pooling of the last hidden states (`cls`, `mean`: how sentence-transformers
trained MiniLM, `max`; `modeling.pooling.pool`), exported as `PooledForSequenceClassification`.

Saved layout (`MultiTaskModel.save_pretrained(dir)`): `encoder/` (a plain transformers model; with LoRA,
`encoder_adapter/` holds the peft adapter too), `heads.safetensors`, `multitask_config.json`;
`MultiTaskModel.from_pretrained(dir)` restores all of it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.data.multitask import TaskConfig, references
from nlptransfer.errors import ConfigError, ModelError, first_line
from nlptransfer.evaluation.metrics import collapse_warning
from nlptransfer.modeling.adapters import peft_wrapping
from nlptransfer.modeling.load import fit_max_length, load_model, resolve
from nlptransfer.modeling.pooling import pool, pooled_classifier, resolve_pooling
from nlptransfer.runs import RunWriter

logger = logging.getLogger("nlptransfer")

POOLING = ("pooler", "cls", "mean", "max")
STRATEGIES = ("full", "frozen", "lora")
CONFIG_NAME = "multitask_config.json"
HEADS_NAME = "heads.safetensors"
#: task type -> `config.problem_type` of the exported AutoModelForSequenceClassification.
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multilabel": "multi_label_classification",
    "regression": "regression",
}


# ------------------------------------------------------------------------------------------- model


class MultiTaskModel(nn.Module):
    """A shared encoder (any `AutoModel`, optionally wrapped by peft) and one linear head per task.

    forward(input_ids, attention_mask, token_type_ids, task_ids, labels): every row of a batch belongs to
    the task `task_ids[0]` (the sampler guarantees it); returns `loss` (the task's loss times its weight)
    and that task's `logits` [batch, num_outputs].
    """

    def __init__(
        self, encoder: nn.Module, tasks: Sequence[TaskConfig], pooling: str = "pooler", dropout=None
    ):
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING)}")
        self.encoder = encoder
        self.tasks = list(tasks)
        self.pooling = pooling
        config = self.encoder_config
        hidden = config.hidden_size
        p = dropout if dropout is not None else getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(p)
        self.heads = nn.ModuleDict({t.name: nn.Linear(hidden, t.num_outputs) for t in self.tasks})
        std = getattr(config, "initializer_range", 0.02)
        for head in self.heads.values():  # as transformers initialises a new classifier
            nn.init.normal_(head.weight, std=std)
            nn.init.zeros_(head.bias)

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str,
        tasks: Sequence[TaskConfig],
        pooling: str = "pooler",
        *,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
    ):
        """A pretrained encoder (loaded by `modeling.load.load_model`: safetensors only unless
        `allow_pickle`) with a new head per task."""
        encoder = load_model(
            AutoModel, name_or_path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
        )
        return cls(encoder, tasks, pooling)

    @property
    def encoder_config(self):
        return self.base_encoder.config

    @property
    def base_encoder(self) -> nn.Module:
        """The transformers model under a peft wrapper (or the encoder itself)."""
        return self.encoder.get_base_model() if hasattr(self.encoder, "get_base_model") else self.encoder

    def activation_checkpointing_enable(self, **kwargs) -> None:
        """`--activation_checkpointing true`: the Trainer calls this; the shared encoder checkpoints."""
        self.base_encoder.activation_checkpointing_enable(**kwargs)

    def task_index(self, name: str) -> int:
        return [t.name for t in self.tasks].index(name)

    def pool(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, **kwargs)
        if self.pooling == "pooler" and getattr(out, "pooler_output", None) is None:
            raise ModelError(f"{type(self.base_encoder).__name__} has no pooler output; use --pooling mean")
        return pool(out, attention_mask, self.pooling)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, task_ids=None, labels=None):
        if task_ids is None:
            raise ValueError("MultiTaskModel needs task_ids (one task per batch)")
        t = int(task_ids[0])
        if bool((task_ids != t).any()):
            raise ValueError(
                "a MultiTaskModel batch must hold rows of a single task (use MultiTaskBatchSampler)"
            )
        task = self.tasks[t]
        logits = self.heads[task.name](self.dropout(self.pool(input_ids, attention_mask, token_type_ids)))
        loss = None
        if labels is not None:
            loss = task.weight * task_loss(task, logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    # ------------------------------------------------------------------ saving and loading

    def config_dict(self) -> dict:
        return {
            "pooling": self.pooling,
            "dropout": self.dropout.p,
            "tasks": [dataclasses.asdict(t) for t in self.tasks],
        }

    def save_pretrained(
        self, output: RunWriter | str | Path, tokenizer=None, *, relpath: str = ""
    ) -> list[str]:
        """`encoder/` (+ `encoder_adapter/` with peft), heads.safetensors, multitask_config.json, written into
        `output` (a run's RunWriter, or a folder) under `relpath`; returns the files written (main process)."""
        run = output if isinstance(output, RunWriter) else RunWriter(output)
        if not run.is_main:
            return []
        top = Path(relpath)
        written = []
        if hasattr(self.encoder, "get_base_model"):  # peft: the adapter, and the merged plain encoder
            written += run.save_pretrained(self.encoder, top / "encoder_adapter")
            written += run.save_pretrained(copy.deepcopy(self.encoder).merge_and_unload(), top / "encoder")
        else:
            written += run.save_pretrained(self.encoder, top / "encoder")
        if tokenizer is not None:
            written += run.save_pretrained(tokenizer, top / "encoder")
        heads = {
            f"{n}.{k}": v.detach().contiguous().cpu()
            for n, h in self.heads.items()
            for k, v in h.state_dict().items()
        }
        run.write_bytes(top / HEADS_NAME, save_safetensors(heads))
        run.write_json(top / CONFIG_NAME, self.config_dict())
        return sorted({*written, (top / HEADS_NAME).as_posix(), (top / CONFIG_NAME).as_posix()})

    @classmethod
    def from_pretrained(cls, path: str | Path, *, trust_remote_code: bool = False) -> MultiTaskModel:
        path = Path(path)
        if not (path / CONFIG_NAME).is_file():
            raise ModelError(f"{str(path)!r} holds no {CONFIG_NAME}; pass a folder written by MultiTaskModel")
        config = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
        tasks = [TaskConfig(**t) for t in config["tasks"]]
        encoder = load_model(AutoModel, path / "encoder", trust_remote_code=trust_remote_code)
        model = cls(encoder, tasks, config["pooling"], dropout=config["dropout"])
        state = load_file(path / HEADS_NAME)
        for name, head in model.heads.items():
            head.load_state_dict({k: state[f"{name}.{k}"] for k in ("weight", "bias")})
        return model

    def export_task(
        self, name: str, output: RunWriter | str | Path, tokenizer=None, *, relpath: str = ""
    ) -> list[str]:
        """Write task `name` as an ordinary `AutoModelForSequenceClassification` (pipeline() loads it) into
        `output` (a run's RunWriter, or a folder) under `relpath`; returns the files written (main process).

        `pooling="pooler"` needs an architecture whose classifier is one linear layer on the pooled output
        (BERT family); cls/mean/max export as `PooledForSequenceClassification` (loads after
        `import nlptransfer`). Regression outputs are rescaled to the original target units.
        """
        task = self.tasks[self.task_index(name)]
        encoder = self.base_encoder
        if hasattr(self.encoder, "get_base_model"):
            encoder = copy.deepcopy(self.encoder).merge_and_unload()
        problem = PROBLEM_TYPES[task.type]
        names = task.label_names if task.type != "regression" else [task.label_column]
        labels = {
            "num_labels": task.num_outputs,
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
            "problem_type": problem,
        }
        if self.pooling != "pooler":
            classifier = pooled_classifier(copy.deepcopy(encoder), self.pooling, **labels)
        else:
            config = copy.deepcopy(encoder.config)
            for key, value in labels.items():
                setattr(config, key, value)
            classifier = AutoModelForSequenceClassification.from_config(config)
        prefix = classifier.base_model_prefix
        head_keys = {k for k in classifier.state_dict() if not k.startswith(prefix + ".")}
        if head_keys != {"classifier.weight", "classifier.bias"}:
            raise ModelError(
                f"{type(classifier).__name__} has a classification head {sorted(head_keys)}, not one linear "
                f"layer on the pooled output; task {name!r} cannot be exported (use MultiTaskModel.from_pretrained)"
            )
        getattr(classifier, prefix).load_state_dict(encoder.state_dict())
        weight, bias = self.heads[name].weight.detach(), self.heads[name].bias.detach()
        if task.type == "regression":  # fold the target standardisation into the layer
            weight, bias = weight * task.target_std, bias * task.target_std + task.target_mean
        classifier.classifier.load_state_dict({"weight": weight.clone(), "bias": bias.clone()})
        run = output if isinstance(output, RunWriter) else RunWriter(output)
        written = run.save_pretrained(classifier, relpath)
        if tokenizer is not None:
            written += run.save_pretrained(tokenizer, relpath)
        return sorted(written)


def task_loss(task: TaskConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-batch mean loss of one task's head."""
    if task.type == "classification":
        return F.cross_entropy(logits, labels.long().view(-1))
    if task.type == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.mse_loss(logits.view(-1), labels.to(logits.dtype).view(-1))


class TaskView(nn.Module):
    """One task of a `MultiTaskModel` as a plain classifier: forward(**tokenizer_output).logits.

    Lets `nlptransfer.inference.predict_logits` (ordered, length-sorted batches) predict a single task.
    """

    def __init__(self, model: MultiTaskModel, name: str):
        super().__init__()
        self.model = model
        self.index = model.task_index(name)
        self.config = type("Config", (), {"num_labels": model.tasks[self.index].num_outputs})()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        task_ids = torch.full((input_ids.shape[0],), self.index, dtype=torch.long, device=input_ids.device)
        return self.model(input_ids, attention_mask, token_type_ids, task_ids=task_ids)


def predict_task(
    model: MultiTaskModel, tokenizer, name: str, texts: list[str], batch_size=64, max_length=128
):
    """Predictions of task `name` for `texts`, in order: class ids, 0/1 rows (multilabel, threshold 0.5)
    or numbers in the target's units (regression)."""
    from nlptransfer.inference import predict_logits

    task = model.tasks[model.task_index(name)]
    logits = predict_logits(TaskView(model, name), tokenizer, list(texts), batch_size, max_length, desc=name)
    if task.type == "classification":
        return logits.argmax(-1)
    if task.type == "multilabel":
        return (logits > 0).astype(int)
    return logits.reshape(-1) * task.target_std + task.target_mean


def regression_metrics(predictions: Any, targets: Any) -> dict[str, float]:
    """pearson, spearman (correlations), rmse, mae and r2."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    constant = np.ptp(p) == 0 or np.ptp(y) == 0
    return {
        "pearson": 0.0 if constant else float(pearsonr(p, y)[0]),
        "spearman": 0.0 if constant else float(spearmanr(p, y)[0]),
        "rmse": float(math.sqrt(mean_squared_error(y, p))),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)),
    }


def task_metrics(task: TaskConfig, predictions: Any, references: Any) -> dict[str, float]:
    """Metrics of one task from `predict_task` output and the raw references (class ids / id lists / numbers)."""
    from nlptransfer.evaluation.metrics import classification_metrics

    if task.type == "regression":
        return regression_metrics(predictions, references)
    if task.type == "multilabel":
        hot = np.zeros((len(references), task.num_outputs), dtype=int)
        for i, ids in enumerate(references):
            hot[i, list(ids)] = 1
        return classification_metrics(predictions, hot, task.label_names, multilabel=True)
    return classification_metrics(predictions, references, task.label_names)


def evaluate_tasks(
    model: MultiTaskModel,
    tokenizer,
    tasks: Sequence[TaskConfig],
    splits,
    split="test",
    batch_size=64,
    max_length=128,
) -> dict[str, dict[str, float]]:
    """Task name -> metrics of `predict_task` on that task's `split` (`splits`: from `load_tasks`)."""
    out = {}
    for task in tasks:
        rows = splits[task.name][split]
        preds = predict_task(model, tokenizer, task.name, list(rows["text"]), batch_size, max_length)
        out[task.name] = task_metrics(task, preds, references(task, rows))
        if task.type != "regression":
            multilabel = task.type == "multilabel"
            if warning := collapse_warning(preds, task.label_names, multilabel, f"{task.name} {split}"):
                logger.warning(warning)
    return out


def check_strategy(strategy: str) -> None:
    """A strategy multi-task training supports (`STRATEGIES`), or one ConfigError line."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"multi-task training supports --strategy full, frozen or lora, not {strategy!r}")


def adapt_encoder(
    model: MultiTaskModel, strategy: str, lora_r=8, lora_alpha=16, lora_dropout=0.1, target_modules=None
):
    """`full`: everything trains; `frozen`: only the heads; `lora`: peft LoRA on the shared encoder + heads."""
    check_strategy(strategy)
    if strategy == "full":
        return model
    if strategy == "frozen":
        model.encoder.requires_grad_(False)
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules,
    )
    try:
        with peft_wrapping():
            model.encoder = get_peft_model(model.encoder, config)
    except ValueError as err:
        raise ModelError(f"LoRA cannot be applied to the encoder: {first_line(err)}") from err
    return model


def build_multitask_model(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    tasks: Sequence[TaskConfig],
    pooling: str | None = None,
) -> MultiTaskModel:
    """One shared pretrained encoder with a new head per task, prepared for `transfer_args.strategy` (as
    `modeling.build_classifier` does for one task); an unsupported strategy fails before anything loads.
    `pooling`: what the heads read (default `model_args.pooling`; "auto" is resolved here)."""
    check_strategy(transfer_args.strategy)
    pooling = pooling or model_args.pooling
    if pooling == "auto":
        pooling, _ = resolve_pooling(resolve(model_args.model_name_or_path), pooling, transfer_args.strategy)
    model = MultiTaskModel.from_encoder(
        model_args.model_name_or_path,
        tasks,
        pooling,
        allow_pickle=model_args.allow_pickle,
        trust_remote_code=model_args.trust_remote_code,
    )
    fit_max_length(model_args, model.encoder.config)
    return adapt_encoder(
        model,
        transfer_args.strategy,
        transfer_args.lora_r,
        transfer_args.lora_alpha,
        transfer_args.lora_dropout,
        transfer_args.target_modules,
    )
