"""Multi-task learning, the data side: task specs, each task's splits and targets, encoding, batch sampling.

    tasks = parse_tasks([{"name": "movies", "dataset": "vader-movies"},
                         {"name": "rating", "dataset": "vader-movies", "type": "regression",
                          "label_column": "score"}])
    splits = load_tasks(tasks)                       # name -> DatasetDict(train/validation/test)
    train = MultiTaskDataset(encode_tasks(splits, tasks, tokenizer, "train", max_length))

Task types: `classification` (single label), `multilabel` (a multi-hot target) and `regression` (one
number, standardised with the training mean/std: `target_mean`, `target_std`). `max_train_samples` /
`max_eval_samples` cap a task's splits with the one seeded subsample (`nlptransfer.data.splits`),
stratified by class for classification tasks, random for multi-label and regression tasks.

Sampling (`MultiTaskBatchSampler`): every batch comes from one task. `proportional` draws task t with
probability n_t / sum(n); `temperature` with n_t**(1/T) normalised (T=1 is proportional, large T tends to
uniform; Arivazhagan et al. 2019 use T=5); `round_robin` cycles the tasks in order. An epoch has as many
batches as one pass over every task's data (sum of ceil(n_t / batch)); a task whose batches run out is
reshuffled and starts again.

The model (shared encoder, one head per task) is `nlptransfer.modeling.multitask.MultiTaskModel`.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import DatasetDict, Value
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from nlptransfer.data.labels import is_multilabel, label_names
from nlptransfer.data.load import load_source
from nlptransfer.data.splits import subsample
from nlptransfer.errors import ConfigError, DataError

logger = logging.getLogger("nlptransfer")

TASK_TYPES = ("classification", "multilabel", "regression")
SAMPLING = ("proportional", "temperature", "round_robin")
# A task name becomes a folder (`tasks/<name>/`) and a metric prefix: a safe identifier, never a path.
TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


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
        given = repr(specs) if len(repr(specs)) <= 60 else repr(specs)[:57] + "..."
        raise ConfigError(
            "tasks must be a non-empty list of {name, dataset, type, text_column, label_column, weight}, "
            f"got {given} (a JSON list on the command line; see recipes/multitask/*.yaml)"
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
        name = spec["name"]
        if not isinstance(name, str | int) or isinstance(name, bool) or not TASK_NAME.fullmatch(str(name)):
            raise ConfigError(
                f"tasks[{i}] has name {name!r}; a task name is used as a folder name, so use 1-64 letters, "
                "digits, '_' or '-' starting with a letter or digit (e.g. movie_rating)"
            )
        task = TaskConfig(**{k: v for k, v in spec.items() if k != "label_names"})
        task.name = str(task.name)
        if task.type not in TASK_TYPES:
            raise ConfigError(
                f"task {task.name!r} has unknown type {task.type!r}; choose one of {', '.join(TASK_TYPES)}"
            )
        if any(t.name == task.name for t in tasks):
            raise ConfigError(f"task name {task.name!r} is used twice; give every task a unique name")
        if (
            not isinstance(task.weight, int | float)
            or isinstance(task.weight, bool)
            or not 0 < task.weight < math.inf
        ):
            raise ConfigError(f"task {task.name!r} has weight {task.weight!r}; use a positive number")
        for key in ("max_train_samples", "max_eval_samples"):  # 0 fell back to the default, "100" crashed
            value = getattr(task, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(
                    f"task {task.name!r} has {key} {value!r}; use a positive whole number of rows, or leave it out"
                )
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
    """Cap the task's splits (`max_train_samples`, `max_eval_samples`): a seeded random draw per split."""
    limits = {
        "train": task.max_train_samples,
        "validation": task.max_eval_samples,
        "test": task.max_eval_samples,
    }
    return DatasetDict(
        {s: subsample(ds, limits[s] or None, seed, label_column=None) for s, ds in splits.items()}
    )


def references(task: TaskConfig, ds) -> list:
    """The raw targets of a loaded (not encoded) split of `task`."""
    return list(ds["labels"] if task.type == "multilabel" else ds["label"])


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
