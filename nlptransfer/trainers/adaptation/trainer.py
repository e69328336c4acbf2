"""Unsupervised domain adaptation for text classifiers: labelled source, unlabelled target.

Three `TransferTrainer` subclasses, each with its own config (a `TransferTrainingArguments` subclass in
`config.py`; the losses are in `nlptransfer.losses`):

- `DomainAdversarialTrainer` + `DomainAdversarialConfig` (DANN, Ganin et al. 2016): a domain classifier
  reads the pooled representation through a gradient-reversal layer, so the encoder learns features the
  domain classifier cannot tell apart. The reversal coefficient follows the paper's schedule
  `reversal_weight * (2 / (1 + exp(-gamma * p)) - 1)`, p = training progress in [0, 1].
- `FeatureAlignmentTrainer` + `FeatureAlignmentConfig`: CORAL (Sun & Saenko 2016, matching second-order
  statistics) or multi-kernel MMD (Long et al. 2015, DAN) between the source and target representations
  of each batch, added to the classification loss with `adaptation_weight`.
- `ImportanceWeightedTrainer` + `ImportanceWeightingConfig`: instance-based transfer; each source example's
  loss is multiplied by an estimated density ratio p_target(x) / p_source(x) (`selection.importance_weights`:
  a logistic-regression domain classifier on frozen features, ratio p/(1-p), clipped, mean 1).

The first two train on batches that mix labelled source and unlabelled target rows: pass the tokenized
source as `train_dataset` and the tokenized target (no labels) as `target_dataset`; each source row is
paired with a random target row and `MixedDomainCollator` pads both into one batch of 2 x batch_size rows,
so the model runs one forward per step (as DDP wants). The pooled representation is read with a forward
pre-hook on the classification head (its input: the pooler output for BERT, the first token for RoBERTa
heads), which works for plain, peft-wrapped and DDP-wrapped models alike.

What is aligned (`align_on`): "pooled" (the head's input) when anything below the head trains
(`--strategy full|lora`); with a frozen backbone the pooled features cannot move, so "auto" aligns the
head's outputs (logits) instead, as Deep CORAL did on its last layer. Say which in any report.

    from nlptransfer.trainers.adaptation import DomainAdversarialConfig, DomainAdversarialTrainer
    args = DomainAdversarialConfig("out", reversal_weight=1.0, max_steps=300)
    trainer = DomainAdversarialTrainer(model=model, args=args, train_dataset=source_tok,
                                       target_dataset=target_tok, processing_class=tokenizer)
    trainer.train(); save_classifier(trainer.model, tokenizer, "out")  # an ordinary model

The DANN domain classifier is a training-time module: it is not part of the saved model (nor of Trainer
checkpoints; a resumed DANN run starts a fresh domain classifier).
"""

from __future__ import annotations

import dataclasses
import inspect
import logging

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, concatenate_datasets
from torch import nn
from transformers import DataCollatorWithPadding, default_data_collator

from nlptransfer.errors import DataError, ModelError
from nlptransfer.losses import coral_loss, dann_lambda, grad_reverse, mmd_loss
from nlptransfer.selection import importance_weights
from nlptransfer.trainers.adaptation.config import (
    DomainAdversarialConfig,
    FeatureAlignmentConfig,
    ImportanceWeightingConfig,
    MixedDomainConfig,
)
from nlptransfer.trainers.transfer import TransferTrainer

logger = logging.getLogger("nlptransfer")

TARGET_PREFIX = "target_"


# ----------------------------------------------------------------------------------------------
# data: mixed source/target batches


def _head_module(model: nn.Module) -> nn.Module:
    """The module that turns the pooled representation into logits (`classifier` or `score`)."""
    found = [(n, m) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] in ("classifier", "score")]
    if not found:
        raise ModelError(
            f"{type(model).__name__} has no 'classifier' or 'score' module to read the pooled representation "
            "from; use a *ForSequenceClassification model"
        )
    return min(found, key=lambda nm: len(nm[0]))[1]  # the outermost (a peft wrapper, if any)


def _input_columns(model: nn.Module, extra: set[str]) -> set[str]:
    forward = model.get_base_model().forward if hasattr(model, "get_base_model") else model.forward
    return set(inspect.signature(forward).parameters) | {"labels", "label"} | extra


def pair_with_target(source: Dataset, target: Dataset, seed: int = 42) -> Dataset:
    """Each source row gets a random target row (columns prefixed `target_`); length = len(source)."""
    if len(target) == 0:
        raise DataError("the target dataset has no rows; pass unlabelled target texts (target_dataset)")
    rng = np.random.default_rng(seed)
    reps = -(-len(source) // len(target))
    order = np.concatenate([rng.permutation(len(target)) for _ in range(reps)])[: len(source)]
    tgt = target.remove_columns([c for c in target.column_names if c in ("labels", "label")])
    tgt = tgt.select(order.tolist())
    tgt = tgt.rename_columns({c: TARGET_PREFIX + c for c in tgt.column_names})
    paired = concatenate_datasets([source, tgt], axis=1)
    # Keep the source's format (torch for cached features: no per-row python lists of floats to collate).
    return paired.with_format(source.format["type"]) if source.format["type"] else paired


class MixedDomainCollator:
    """Rows with `target_*` columns -> one batch: source rows, then target rows (labels -100), and a
    `domain` tensor (0 source, 1 target). Rows without target columns (evaluation) pass through."""

    def __init__(self, tokenizer=None):
        self.base = DataCollatorWithPadding(tokenizer) if tokenizer is not None else default_data_collator

    def __call__(self, rows: list[dict]) -> dict:
        if not rows or not any(k.startswith(TARGET_PREFIX) for k in rows[0]):
            return self.base(rows)
        source = [{k: v for k, v in r.items() if not k.startswith(TARGET_PREFIX)} for r in rows]
        label = source[0].get("labels")
        ignore = torch.tensor(-100) if isinstance(label, torch.Tensor) else -100  # same type as source labels
        target = [
            {
                **{k[len(TARGET_PREFIX) :]: v for k, v in r.items() if k.startswith(TARGET_PREFIX)},
                "labels": ignore,
            }
            for r in rows
        ]
        batch = self.base(source + target)
        batch["domain"] = torch.tensor([0] * len(source) + [1] * len(target))
        return batch


# ----------------------------------------------------------------------------------------------
# trainers


class _RepresentationHook:
    """Keeps the latest input of the classification head ([batch, hidden]; first token if [b, t, h])."""

    def __init__(self, module: nn.Module):
        self.value: torch.Tensor | None = None
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        x = args[0]
        self.value = x[:, 0] if x.dim() == 3 else x


class _MixedDomainTrainer(TransferTrainer):
    """Shared machinery: paired source/target data, the pooled-representation hook, loss logging."""

    args: MixedDomainConfig

    def __init__(self, *args, target_dataset: Dataset | None = None, **kwargs):
        train = kwargs.get("train_dataset")
        if target_dataset is None or train is None:
            raise DataError(
                f"{type(self).__name__} needs train_dataset (labelled source) and target_dataset (unlabelled "
                "target)"
            )
        model = kwargs.get("model") if "model" in kwargs else args[0]
        extra = {"features", "weight"}
        keep = _input_columns(model, extra)
        train = train.remove_columns([c for c in train.column_names if c not in keep])
        target_dataset = target_dataset.remove_columns(
            [c for c in target_dataset.column_names if c not in keep]
        )
        targs = kwargs.get("args")
        if targs is not None and targs.remove_unused_columns:  # the target_* columns must reach the collator
            kwargs["args"] = targs = dataclasses.replace(targs, remove_unused_columns=False)
        seed = targs.seed if targs is not None else 42
        kwargs["train_dataset"] = pair_with_target(train, target_dataset, seed=seed)
        if kwargs.get("eval_dataset") is not None:
            ev = kwargs["eval_dataset"]
            kwargs["eval_dataset"] = ev.remove_columns([c for c in ev.column_names if c not in keep])
        if kwargs.get("data_collator") is None:
            tok = kwargs.get("processing_class")
            kwargs["data_collator"] = MixedDomainCollator(tok if "input_ids" in train.column_names else None)
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, MixedDomainConfig):
            raise TypeError(f"{type(self).__name__} needs its config class ({self._config_name()})")
        self.model_accepts_loss_kwargs = False  # our loss is a per-batch mean
        head = _head_module(self.accelerator.unwrap_model(self.model))
        self._hook = _RepresentationHook(head)
        head_ids = {id(p) for p in head.parameters()}
        below = any(p.requires_grad and id(p) not in head_ids for p in self.model.parameters())
        align = self.args.align_on
        self.align_on = ("pooled" if below else "logits") if align == "auto" else align
        if self.align_on == "pooled" and not below:
            logger.warning(
                "align_on=pooled with nothing trainable below the head: the pooled features cannot move, "
                "the adaptation loss has no effect (use align_on auto/logits or --strategy full|lora)"
            )
        logger.info("%s adapts the %s representation", type(self).__name__, self.align_on)
        self._pending: dict[str, list[float]] = {}

    def _config_name(self) -> str:
        return (
            "DomainAdversarialConfig"
            if isinstance(self, DomainAdversarialTrainer)
            else "FeatureAlignmentConfig"
        )

    def _record(self, **values: float) -> None:
        for k, v in values.items():
            self._pending.setdefault(k, []).append(float(v))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._pending:
            logs.update({k: round(sum(v) / len(v), 4) for k, v in self._pending.items()})
            self._pending = {}
        super().log(logs, start_time)

    def adaptation_loss(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "domain" not in inputs:  # evaluation / prediction rows: the ordinary loss
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        domain = inputs.pop("domain")
        labels = inputs.pop("labels")
        outputs = model(**inputs)  # one forward over source + target rows
        logits = outputs.logits  # [2b, num_labels]
        src = domain == 0
        weights = None
        if self.class_weights is not None:
            weights = self.class_weights.to(device=logits.device, dtype=logits.dtype)
        cls_loss = F.cross_entropy(logits[src], labels[src], weight=weights)
        rep = self._hook.value if self.align_on == "pooled" else logits
        adapt = self.adaptation_loss(rep[src], rep[~src])
        loss = cls_loss + self.args.adaptation_weight * adapt
        self._record(source_loss=cls_loss.detach(), adaptation_loss=adapt.detach())
        return (loss, outputs) if return_outputs else loss


class DomainAdversarialTrainer(_MixedDomainTrainer):
    """DANN; see the module docstring. Logs `domain_accuracy` (0.5 = domains indistinguishable) and `grl_lambda`."""

    args: DomainAdversarialConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, DomainAdversarialConfig):
            raise TypeError("DomainAdversarialTrainer needs DomainAdversarialConfig")
        unwrapped = self.accelerator.unwrap_model(self.model)
        if self.align_on == "pooled":
            dim = getattr(_head_module(unwrapped), "in_features", None) or unwrapped.config.hidden_size
        else:
            dim = unwrapped.config.num_labels
        h = self.args.domain_hidden_size
        head = nn.Sequential(nn.Linear(dim, h), nn.ReLU(), nn.Dropout(0.1), nn.Linear(h, 1))
        # Its own DDP wrapper under `accelerate launch` (gradients all-reduced like the model's).
        self.domain_classifier = self.accelerator.prepare_model(head)
        self._domain_params = list(head.parameters())

    def create_optimizer(self, model=None):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh:
            optimizer.add_param_group(
                {"params": self._domain_params, "weight_decay": 0.0, "lr": self.args.learning_rate}
            )
        return optimizer

    def reversal_lambda(self) -> float:
        total = max(self.state.max_steps, 1)
        return self.args.reversal_weight * dann_lambda(self.state.global_step / total, self.args.lambda_gamma)

    def adaptation_loss(self, source, target):
        lambd = self.reversal_lambda()
        x = grad_reverse(torch.cat([source, target]), lambd)
        domain_logits = self.domain_classifier(x).squeeze(-1)  # [2b]
        y = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(domain_logits)
        loss = F.binary_cross_entropy_with_logits(domain_logits, y)
        acc = ((domain_logits > 0).to(y) == y).float().mean()
        self._record(domain_accuracy=acc.detach(), grl_lambda=lambd)
        return loss


class FeatureAlignmentTrainer(_MixedDomainTrainer):
    """CORAL or multi-kernel MMD alignment (`FeatureAlignmentConfig.alignment`)."""

    args: FeatureAlignmentConfig

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, FeatureAlignmentConfig):
            raise TypeError("FeatureAlignmentTrainer needs FeatureAlignmentConfig")

    def adaptation_loss(self, source, target):
        if self.args.alignment == "coral":
            return coral_loss(source.float(), target.float())
        return mmd_loss(source.float(), target.float(), kernel_num=self.args.mmd_kernels)


class ImportanceWeightedTrainer(TransferTrainer):
    """Source loss weighted per example by an estimated density ratio; see the module docstring.

    Pass `instance_weights` (one per `train_dataset` row), or `source_features` and `target_features`
    (frozen features, e.g. `features.extract_features`, of the same source rows and of target texts) and
    the weights are estimated with `selection.importance_weights`. `self.instance_weights` keeps them.
    """

    args: ImportanceWeightingConfig

    def __init__(
        self,
        *args,
        instance_weights: np.ndarray | None = None,
        source_features: np.ndarray | None = None,
        target_features: np.ndarray | None = None,
        **kwargs,
    ):
        targs = kwargs.get("args")
        if not isinstance(targs, ImportanceWeightingConfig):
            raise TypeError("ImportanceWeightedTrainer needs ImportanceWeightingConfig")
        if targs.remove_unused_columns:  # the weight column must reach compute_loss
            kwargs["args"] = targs = dataclasses.replace(targs, remove_unused_columns=False)
        train = kwargs.get("train_dataset")
        if train is None:
            raise DataError("ImportanceWeightedTrainer needs train_dataset (the labelled source)")
        if instance_weights is None:
            if source_features is None or target_features is None:
                raise DataError(
                    "ImportanceWeightedTrainer needs instance_weights, or source_features and target_features "
                    "to estimate them"
                )
            instance_weights = importance_weights(
                source_features,
                target_features,
                clip=targs.weight_clip,
                c=targs.domain_classifier_c,
                seed=targs.seed,
            )
        instance_weights = np.asarray(instance_weights, dtype=np.float32)
        if len(instance_weights) != len(train):
            raise DataError(
                f"{len(instance_weights)} importance weights for {len(train)} training rows; pass one per row"
            )
        model = kwargs.get("model") if "model" in kwargs else args[0]
        keep = _input_columns(model, {"features"})
        train = train.remove_columns([c for c in train.column_names if c not in keep])
        kwargs["train_dataset"] = train.add_column("weight", instance_weights.tolist())
        if kwargs.get("eval_dataset") is not None:
            ev = kwargs["eval_dataset"]
            kwargs["eval_dataset"] = ev.remove_columns([c for c in ev.column_names if c not in keep])
        if kwargs.get("data_collator") is None:
            tok = kwargs.get("processing_class")
            kwargs["data_collator"] = MixedDomainCollator(tok if "input_ids" in train.column_names else None)
        super().__init__(*args, **kwargs)
        self.instance_weights = instance_weights
        self.model_accepts_loss_kwargs = False
        logger.info(
            "importance weights: min %.3f, median %.3f, max %.3f (mean 1)",
            instance_weights.min(),
            float(np.median(instance_weights)),
            instance_weights.max(),
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if "weight" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        weight = inputs.pop("weight")
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits
        cw = (
            None
            if self.class_weights is None
            else self.class_weights.to(device=logits.device, dtype=logits.dtype)
        )
        per_example = F.cross_entropy(logits, labels, weight=cw, reduction="none")
        loss = (per_example * weight.to(per_example.dtype)).mean()
        return (loss, outputs) if return_outputs else loss
