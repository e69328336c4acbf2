"""`MultiTaskTrainer`: train a `MultiTaskModel` (shared encoder, one head per task) with the `Trainer`.

Every training batch comes from one task (`MultiTaskBatchSampler`: proportional, temperature or round-robin
sampling); each task's loss is scaled by its `weight` and, with `loss_weighting="uncertainty"`, by a learned
exp(-s_t) plus the regulariser s_t (Kendall, Gal & Cipolla 2018; s_t = log variance, one per task, trained
with the model at `uncertainty_learning_rate`, no weight decay). `task_batches` counts the training batches each
task got (what a compute-matched single-task control is given). `evaluate()` scores every task's validation set with
that task's metrics (`eval_<task>_<metric>`) and adds `eval_combined`, the mean of the tasks' primary
metrics (macro-F1, micro-F1 for multi-label, Pearson r for regression): use it as `metric_for_best_model`.
It is a `TransferTrainer`, so layer-wise learning-rate decay and gradual unfreezing apply to the encoder.

    from nlptransfer.data.multitask import MultiTaskDataset, encode_tasks, load_tasks, parse_tasks
    from nlptransfer.modeling.multitask import MultiTaskModel
    from nlptransfer.trainers.multitask import MultiTaskTrainer, MultiTaskTrainingArguments
    trainer = MultiTaskTrainer(
        model=model, args=MultiTaskTrainingArguments("out", task_sampling="temperature", sampling_temperature=2),
        train_dataset=MultiTaskDataset(encode_tasks(splits, tasks, tok, "train", 128)),
        eval_dataset=encode_tasks(splits, tasks, tok, "validation", 128),  # name -> dataset
        processing_class=tok)

`fit_multitask(model, tasks, train, validation, tok, training_args, seed)` does the same in one call
(checkpoints in a scratch folder) and returns the train metrics.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, set_seed

from nlptransfer.data.multitask import MultiTaskBatchSampler, MultiTaskDataset, TaskConfig
from nlptransfer.errors import ConfigError
from nlptransfer.modeling.multitask import task_metrics
from nlptransfer.trainers.multitask.config import MultiTaskTrainingArguments
from nlptransfer.trainers.transfer import TransferTrainer

logger = logging.getLogger("nlptransfer")


class MultiTaskTrainer(TransferTrainer):
    """A `Trainer` for `MultiTaskModel`; see the module docstring.

    `train_dataset` must be a `MultiTaskDataset`; `eval_dataset` a dict task name -> encoded dataset (the
    rows carry `task_ids`), or None.
    """

    args: MultiTaskTrainingArguments

    def __init__(self, *args, **kwargs):
        if kwargs.get("data_collator") is None and kwargs.get("processing_class") is not None:
            kwargs["data_collator"] = DataCollatorWithPadding(kwargs["processing_class"])
        super().__init__(*args, **kwargs)
        if self.train_dataset is not None and not isinstance(self.train_dataset, MultiTaskDataset):
            raise ConfigError("MultiTaskTrainer needs train_dataset=MultiTaskDataset({task name: dataset})")
        self.model_accepts_loss_kwargs = False  # task losses are per-batch means
        names = [t.name for t in self.accelerator.unwrap_model(self.model).tasks]
        self.task_batches: dict[str, int] = dict.fromkeys(names, 0)
        self.log_vars = None
        if self.args.loss_weighting == "uncertainty":
            self.log_vars = torch.nn.Parameter(torch.zeros(len(names), device=self.args.device))

    def create_optimizer(self, model=None):
        """The encoder's and heads' optimizer, plus the uncertainty log-variances as their own group."""
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh and self.log_vars is not None:
            optimizer.add_param_group(
                {"params": [self.log_vars], "weight_decay": 0.0, "lr": self.args.uncertainty_learning_rate}
            )
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The task's (weighted) loss; counts the batch for its task while training."""
        task = int(inputs["task_ids"][0])
        if model.training:
            name = list(self.task_batches)[task]
            self.task_batches[name] += 1
        if self.log_vars is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs)
        s = self.log_vars[task]
        loss = torch.exp(-s) * outputs.loss + s
        return (loss, outputs) if return_outputs else loss

    def uncertainty_weights(self) -> dict[str, float] | None:
        """Task name -> the learned exp(-s) (None with fixed weighting)."""
        if self.log_vars is None:
            return None
        return {
            n: round(float(torch.exp(-v.detach())), 4)
            for n, v in zip(self.task_batches, self.log_vars, strict=True)
        }

    def get_train_dataloader(self) -> DataLoader:
        """Batches from one task at a time (`MultiTaskBatchSampler`), prepared by Accelerate."""
        dataset: MultiTaskDataset = self.train_dataset
        sampler = MultiTaskBatchSampler(
            dataset.sizes,
            self._train_batch_size,
            self.args.task_sampling,
            self.args.sampling_temperature,
            seed=self.args.seed,
        )
        logger.info(
            "task sampling %s: %s",
            self.args.task_sampling,
            ", ".join(f"{n} {p:.2f}" for n, p in zip(dataset.names, sampler.probabilities, strict=True)),
        )
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Every task's validation metrics (`<prefix>_<task>_<metric>`) and `<prefix>_combined`."""
        datasets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if not isinstance(datasets, dict):
            raise ConfigError("MultiTaskTrainer.evaluate needs a dict task name -> encoded dataset")
        model = self.accelerator.unwrap_model(self.model)
        results, primary = {}, []
        saved = self.compute_metrics
        try:
            for name, ds in datasets.items():
                task = model.tasks[model.task_index(name)]
                self.compute_metrics = _metrics_fn(task)
                results.update(super().evaluate(ds, ignore_keys, f"{metric_key_prefix}_{name}"))
                primary.append(results[f"{metric_key_prefix}_{name}_{task.primary_metric}"])
        finally:
            self.compute_metrics = saved
        combined = {f"{metric_key_prefix}_combined": float(np.mean(primary))}
        self.log(combined)
        results.update(combined)
        return results


def _metrics_fn(task):
    """compute_metrics for one task's `Trainer.evaluate` (logits -> the same metrics as `predict_task`)."""

    pending: list[tuple[np.ndarray, np.ndarray]] = []

    def compute(eval_pred, compute_result: bool | None = None):
        logits = _numpy(
            eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        )
        labels = _numpy(eval_pred.label_ids)
        if compute_result is not None:  # --batch_eval_metrics: batches until compute_result=True
            pending.append((logits, labels))
            if not compute_result:
                return {}
            logits, labels = (np.concatenate(part) for part in zip(*pending, strict=True))
            pending.clear()
        if task.type == "classification":
            return task_metrics(task, logits.argmax(-1), labels)
        if task.type == "multilabel":
            return task_metrics(task, (logits > 0).astype(int), [np.flatnonzero(r > 0.5) for r in labels])
        scale = lambda v: v.reshape(-1) * task.target_std + task.target_mean  # noqa: E731
        return task_metrics(task, scale(logits), scale(labels))

    return compute


def _numpy(value) -> np.ndarray:
    """Trainer outputs as numpy: arrays as they are, torch tensors (batch_eval_metrics) detached to CPU."""
    if hasattr(value, "detach"):
        return value.detach().float().cpu().numpy()
    return np.asarray(value)


def fit_multitask(
    model,
    tasks: Sequence[TaskConfig],
    train: dict[str, Any],
    validation: dict[str, Any],
    tokenizer,
    training_args: MultiTaskTrainingArguments,
    seed: int,
) -> dict:
    """Train `model` on `tasks` (`train` / `validation`: task name -> encoded split, from `encode_tasks`) with
    a `MultiTaskTrainer` seeded with `seed`; checkpoints go to a scratch folder, never the run's output
    directory. Returns the train metrics with `wall_seconds`, `steps` (optimizer steps, from the Trainer's state),
    `task_batches` (training batches per task), `uncertainty_weights` (if learned) and the `log_history`."""
    set_seed(seed)
    with tempfile.TemporaryDirectory(prefix="nlptransfer-mt-") as scratch:
        args = replace(training_args, output_dir=scratch, seed=seed)
        trainer = MultiTaskTrainer(
            model=model,
            args=args,
            train_dataset=MultiTaskDataset({t.name: train[t.name] for t in tasks}),
            eval_dataset={t.name: validation[t.name] for t in tasks},
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        output = trainer.train()
        result = {
            **output.metrics,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "steps": trainer.state.global_step,
            "task_batches": dict(trainer.task_batches),
            "log_history": list(trainer.state.log_history),
        }
        if weights := trainer.uncertainty_weights():
            result["uncertainty_weights"] = weights
        return result
