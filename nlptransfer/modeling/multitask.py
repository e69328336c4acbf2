"""Multi-task learning: one shared pretrained encoder, one small head per task, batches drawn per task.

    tasks = parse_tasks([{"name": "movies", "dataset": "vader-movies"},
                         {"name": "rating", "dataset": "vader-movies", "type": "regression",
                          "label_column": "score"}])
    splits = load_tasks(tasks)                       # name -> DatasetDict(train/validation/test)
    model = MultiTaskModel.from_encoder("sentence-transformers/all-MiniLM-L6-v2", tasks)
    train = MultiTaskDataset(encode_tasks(splits, tokenizer, "train"))   # then MultiTaskTrainer

Task types: `classification` (single label, softmax + cross-entropy), `multilabel` (sigmoid + binary
cross-entropy over a multi-hot target) and `regression` (one output, mean squared error on the target
standardised with the training mean/std; predictions come back in the original units).

Heads read the encoder's pooled output (`pooling="pooler"`: the [CLS] vector through BERT's pooler, exactly
what `AutoModelForSequenceClassification` does, so every task exports as an ordinary classifier that
`pipeline(...)` loads) or the attention-masked mean of the last hidden states (`pooling="mean"`, how
sentence-transformers trained MiniLM; not exportable).

Sampling (`MultiTaskBatchSampler`): every batch comes from one task. `proportional` draws task t with
probability n_t / sum(n); `temperature` with n_t**(1/T) normalised (T=1 is proportional, large T tends to
uniform; Arivazhagan et al. 2019 use T=5); `round_robin` cycles the tasks in order. An epoch has as many
batches as one pass over every task's data (sum of ceil(n_t / batch)); a task whose batches run out is
reshuffled and starts again.

Saved layout (`MultiTaskModel.save_pretrained(dir)`): `encoder/` (a plain transformers model; with LoRA,
`encoder_adapter/` holds the peft adapter too), `heads.safetensors`, `multitask_config.json`;
`MultiTaskModel.from_pretrained(dir)` restores all of it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from datasets import DatasetDict, Value
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch import nn
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler
from transformers import AutoModel, AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from nlptransfer.data import is_multilabel, label_names, load_source
from nlptransfer.errors import ConfigError, DataError, ModelError
from nlptransfer.modeling.load import load_model
from nlptransfer.runs import RunWriter

logger = logging.getLogger("nlptransfer")

TASK_TYPES = ("classification", "multilabel", "regression")
SAMPLING = ("proportional", "temperature", "round_robin")
POOLING = ("pooler", "mean")
CONFIG_NAME = "multitask_config.json"
HEADS_NAME = "heads.safetensors"


@dataclass
class TaskConfig:
    """One task: where its data comes from and what its head predicts."""

    name: str
    dataset: str
    type: str = "classification"
    text_column: str = "text"
    label_column: str = "label"  # regression: the numeric target column (e.g. VADER's `score`)
    weight: float = 1.0  # multiplies this task's loss
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # Filled from the data by `load_tasks` (and saved with the model):
    label_names: list[str] = field(default_factory=list)
    target_mean: float = 0.0  # regression targets are standardised: (y - mean) / std
    target_std: float = 1.0

    @property
    def num_outputs(self) -> int:
        return 1 if self.type == "regression" else len(self.label_names)

    @property
    def primary_metric(self) -> str:
        """The metric that enters the combined selection score (higher is better)."""
        return {"classification": "f1_macro", "multilabel": "f1_micro", "regression": "pearson"}[self.type]


_TASK_KEYS = [f.name for f in dataclasses.fields(TaskConfig) if f.name not in ("label_names",)]


def parse_tasks(specs: Sequence[dict[str, Any]] | str) -> list[TaskConfig]:
    """Task dicts (from the YAML `tasks:` list, or a JSON/YAML string) -> validated `TaskConfig`s."""
    if isinstance(specs, str):
        import yaml

        try:
            specs = yaml.safe_load(specs)
        except yaml.YAMLError as err:
            raise ConfigError(f"--tasks is not valid JSON/YAML ({type(err).__name__}); pass a list") from err
    if not isinstance(specs, list) or not specs:
        raise ConfigError(
            "tasks must be a non-empty list of {name, dataset, type, text_column, label_column, weight} "
            "(see recipes/multitask/*.yaml)"
        )
    tasks: list[TaskConfig] = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise ConfigError(f"tasks[{i}] must be a mapping with at least name and dataset, got {spec!r}")
        for key in spec:
            if key not in _TASK_KEYS:
                close = difflib.get_close_matches(str(key), _TASK_KEYS, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(_TASK_KEYS)}"
                raise ConfigError(f"unknown key {key!r} in tasks[{i}]; {hint}")
        for key in ("name", "dataset"):
            if not spec.get(key):
                raise ConfigError(f"tasks[{i}] has no {key}; every task needs a name and a dataset")
        task = TaskConfig(**{k: v for k, v in spec.items() if k != "label_names"})
        task.name = str(task.name)
        if task.type not in TASK_TYPES:
            raise ConfigError(
                f"task {task.name!r} has unknown type {task.type!r}; choose one of {', '.join(TASK_TYPES)}"
            )
        if any(t.name == task.name for t in tasks):
            raise ConfigError(f"task name {task.name!r} is used twice; give every task a unique name")
        if not isinstance(task.weight, int | float) or not task.weight > 0:
            raise ConfigError(f"task {task.name!r} has weight {task.weight!r}; use a positive number")
        if str(task.label_column).strip().lower() in ("", "none"):
            raise DataError(
                f"task {task.name!r} has no labels (label_column {task.label_column!r}); multi-task training "
                "needs a label column for every task"
            )
        tasks.append(task)
    return tasks


def load_tasks(tasks: Sequence[TaskConfig], split_seed: int = 42) -> dict[str, DatasetDict]:
    """Each task's train/validation/test; fills `label_names` and the regression target statistics.

    Tasks on the same data share one split: a regression task on a dataset a classification task also
    uses reads its target from that task's rows (so no test row of one task is a training row of the
    other); otherwise regression data is loaded unlabelled and `label_column` becomes a float `label`.
    """
    loaded: dict[tuple[str, str], DatasetDict] = {}
    out: dict[str, DatasetDict] = {}
    # Classification first, so regression tasks can reuse their (stratified) split.
    for task in sorted(tasks, key=lambda t: t.type == "regression"):
        key = (task.dataset, task.text_column)
        where = f"task {task.name!r} ({task.dataset})"
        if task.type != "regression":
            splits = load_source(
                task.dataset, text_column=task.text_column, label_column=task.label_column, seed=split_seed
            )
            multi = is_multilabel(splits)
            if multi != (task.type == "multilabel"):
                want = "multilabel" if multi else "classification"
                raise ConfigError(f"{where} has {want} labels but type {task.type!r}; set type: {want}")
            task.label_names = label_names(splits)
            loaded.setdefault(key, splits)
        else:
            splits = loaded.get(key)
            if splits is None:
                splits = load_source(
                    task.dataset, text_column=task.text_column, label_column=None, seed=split_seed
                )
            splits = _regression_target(splits, task, where)
        out[task.name] = _subsample_task(splits, task, split_seed)
    return {t.name: out[t.name] for t in tasks}


def _regression_target(splits: DatasetDict, task: TaskConfig, where: str) -> DatasetDict:
    columns = splits["train"].column_names
    if task.label_column not in columns:
        raise DataError(
            f"{where} has no labels: no column {task.label_column!r} for its regression target; "
            f"available columns: {', '.join(c for c in columns if c != 'text')}"
        )
    result = {}
    for split, ds in splits.items():
        values = [_to_float(v) for v in ds[task.label_column]]
        keep = [i for i, v in enumerate(values) if v is not None]
        if not keep:
            raise DataError(
                f"{where} has no labels: column {task.label_column!r} holds no numbers in {split}"
            )
        if len(keep) < len(values):
            logger.warning(
                "%s: %d %s rows without a numeric target dropped", where, len(values) - len(keep), split
            )
        ds = ds.select(keep)
        ds = ds.remove_columns([c for c in ds.column_names if c != "text"])
        result[split] = ds.add_column("label", [values[i] for i in keep]).cast_column(
            "label", Value("float32")
        )
    train = np.asarray(result["train"]["label"], dtype=np.float64)
    task.target_mean, task.target_std = float(train.mean()), float(train.std() or 1.0)
    return DatasetDict(result)


def _to_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _subsample_task(splits: DatasetDict, task: TaskConfig, seed: int) -> DatasetDict:
    limits = {
        "train": task.max_train_samples,
        "validation": task.max_eval_samples,
        "test": task.max_eval_samples,
    }
    return DatasetDict(
        {
            s: ds.shuffle(seed=seed).select(range(limits[s])) if limits[s] and len(ds) > limits[s] else ds
            for s, ds in splits.items()
        }
    )


# ------------------------------------------------------------------------------------------- encoding


def encode_task(ds, task: TaskConfig, task_id: int, tokenizer, max_length: int):
    """Tokenized rows with `labels` (int class, multi-hot floats or a standardised float) and `task_ids`."""

    def tokenize(batch):
        out = tokenizer(list(batch["text"]), truncation=True, max_length=max_length)
        if task.type == "multilabel":
            hot = np.zeros((len(batch["labels"]), task.num_outputs), dtype=np.float32)
            for i, ids in enumerate(batch["labels"]):
                hot[i, list(ids)] = 1.0
            out["labels"] = hot.tolist()
        elif task.type == "regression":
            out["labels"] = [(float(y) - task.target_mean) / task.target_std for y in batch["label"]]
        else:
            out["labels"] = list(batch["label"])
        out["task_ids"] = [task_id] * len(out["input_ids"])
        return out

    return ds.map(tokenize, batched=True, remove_columns=ds.column_names, desc=f"tokenize {task.name}")


def encode_tasks(
    splits: dict[str, DatasetDict], tasks: Sequence[TaskConfig], tokenizer, split: str, max_length: int
):
    """name -> encoded `split` of each task, task ids in the order of `tasks`."""
    return {
        t.name: encode_task(splits[t.name][split], t, i, tokenizer, max_length) for i, t in enumerate(tasks)
    }


class MultiTaskDataset(TorchDataset):
    """The tasks' encoded datasets behind one index: rows of task t are offsets[t] .. offsets[t+1]-1."""

    def __init__(self, datasets: dict[str, Any]):
        self.names = list(datasets)
        self.datasets = list(datasets.values())
        self.sizes = [len(d) for d in self.datasets]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> dict:
        t = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.datasets[t][int(index - self.offsets[t])]


# ------------------------------------------------------------------------------------------- sampling


def task_probabilities(sizes: Sequence[int], strategy: str, temperature: float = 1.0) -> np.ndarray:
    """Probability of drawing each task's next batch (round_robin: the long-run share, uniform)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if strategy == "proportional":
        weights = sizes
    elif strategy == "temperature":
        weights = sizes ** (1.0 / temperature)
    elif strategy == "round_robin":
        weights = np.ones_like(sizes)
    else:
        raise ConfigError(f"unknown task sampling {strategy!r}; choose one of {', '.join(SAMPLING)}")
    return weights / weights.sum()


class MultiTaskBatchSampler(Sampler[list[int]]):
    """Batches of indices into a `MultiTaskDataset`, each batch from a single task.

    Pass as `DataLoader(batch_sampler=...)`; under `accelerate launch` Accelerate shards whole batches
    across processes, so every batch stays single-task. Each pass (`__iter__`) uses a fresh seeded order.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        batch_size: int,
        strategy: str = "proportional",
        temperature: float = 1.0,
        seed: int = 0,
        num_batches: int | None = None,
    ):
        if strategy not in SAMPLING:
            raise ConfigError(f"unknown task sampling {strategy!r}; choose one of {', '.join(SAMPLING)}")
        if strategy == "temperature" and not temperature > 0:
            raise ConfigError(f"sampling temperature must be > 0, got {temperature}")
        self.sizes = list(sizes)
        self.batch_size = batch_size
        self.strategy = strategy
        self.probabilities = task_probabilities(self.sizes, strategy, temperature)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.num_batches = num_batches or sum(math.ceil(n / batch_size) for n in self.sizes)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1  # a second pass without set_epoch still gets a new order
        orders = [rng.permutation(n) for n in self.sizes]
        cursors = [0] * len(self.sizes)
        if self.strategy == "round_robin":
            picks = np.arange(self.num_batches) % len(self.sizes)
        else:
            picks = rng.choice(len(self.sizes), size=self.num_batches, p=self.probabilities)
        for t in picks:
            if cursors[t] >= self.sizes[t]:  # this task's data ran out: reshuffle and start again
                orders[t], cursors[t] = rng.permutation(self.sizes[t]), 0
            rows = orders[t][cursors[t] : cursors[t] + self.batch_size]
            cursors[t] += len(rows)
            yield (rows + self.offsets[t]).tolist()


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

    def task_index(self, name: str) -> int:
        return [t.name for t in self.tasks].index(name)

    def pool(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, **kwargs)
        if self.pooling == "pooler":
            if getattr(out, "pooler_output", None) is None:
                raise ModelError(
                    f"{type(self.base_encoder).__name__} has no pooler output; use pooling: mean"
                )
            return out.pooler_output
        mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1)
        hidden = out.last_hidden_state
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

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

        Needs `pooling="pooler"` and an architecture whose classifier is one linear layer on the pooled
        output (BERT family). Regression outputs are rescaled to the original target units.
        """
        task = self.tasks[self.task_index(name)]
        if self.pooling != "pooler":
            raise ModelError(
                f"task {name!r} cannot be exported with pooling {self.pooling!r}; use pooling: pooler"
            )
        encoder = self.base_encoder
        if hasattr(self.encoder, "get_base_model"):
            encoder = copy.deepcopy(self.encoder).merge_and_unload()
        problem = {"classification": "single_label_classification", "multilabel": "multi_label_classification",
                   "regression": "regression"}[task.type]  # fmt: skip
        names = task.label_names if task.type != "regression" else [task.label_column]
        config = copy.deepcopy(encoder.config)
        config.num_labels = task.num_outputs
        config.id2label = dict(enumerate(names))
        config.label2id = {n: i for i, n in enumerate(names)}
        config.problem_type = problem
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


def references(task: TaskConfig, ds) -> list:
    """The raw targets of a loaded (not encoded) split of `task`."""
    return list(ds["labels"] if task.type == "multilabel" else ds["label"])


def adapt_encoder(
    model: MultiTaskModel, strategy: str, lora_r=8, lora_alpha=16, lora_dropout=0.1, target_modules=None
):
    """`full`: everything trains; `frozen`: only the heads; `lora`: peft LoRA on the shared encoder + heads."""
    if strategy == "full":
        return model
    if strategy == "frozen":
        model.encoder.requires_grad_(False)
        return model
    if strategy != "lora":
        raise ConfigError(f"multi-task training supports --strategy full, frozen or lora, not {strategy!r}")
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules,
    )
    try:
        model.encoder = get_peft_model(model.encoder, config)
    except ValueError as err:
        raise ModelError(
            f"LoRA cannot be applied to the encoder: {str(err).strip().splitlines()[0]}"
        ) from err
    return model
