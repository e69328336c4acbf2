"""`TransferTrainer`: `transformers.Trainer` with the classic fine-tuning tricks of transfer learning.

- Layer-wise learning-rate decay (discriminative learning rates, Howard & Ruder 2018; Clark et al. 2020):
  the head trains at `learning_rate`, the layer below at `lr * decay`, ... the embeddings at
  `lr * decay**(n_layers + 1)`.
- Gradual unfreezing (ULMFiT): only the head trains at first; every `gradual_unfreezing_steps` optimizer
  steps one more layer group, top down, becomes trainable.
- Optional frozen embeddings and a class-weighted loss for imbalanced labels.
- L2-SP (Li et al. 2018, `l2sp_weight` W): the training loss gets W/2 * ||theta - theta_0||^2 over the
  trainable pretrained (encoder) weights, theta_0 a frozen copy taken when the trainer is built (same device);
  the new head is not pulled anywhere. Plain models only (an adapter's theta_0 is implicit: it starts at 0).

All knobs live in `TransferTrainingArguments` (`config.py`); device placement stays with the Trainer's
Accelerate. Subclasses with a loss of their own take a `FineTuningArguments` (no class-weighted loss).

    from nlptransfer import TransferTrainer, TransferTrainingArguments
    args = TransferTrainingArguments("out", layerwise_lr_decay=0.9, gradual_unfreezing_steps=50)
    trainer = TransferTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
"""

from __future__ import annotations

import logging
import re

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from nlptransfer.errors import ConfigError
from nlptransfer.trainers.progress import one_progress_bar
from nlptransfer.trainers.tie_break import TieBreakCallback
from nlptransfer.trainers.transfer.config import FineTuningArguments, TransferTrainingArguments

logger = logging.getLogger("nlptransfer")

_LAYER_INDEX = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")


def layer_groups(model: torch.nn.Module) -> list[list[str]]:
    """Parameter names grouped bottom-up: [embeddings, layer 0, ..., layer n-1, head (everything above)].

    Works for wrapped (peft) models too, since it only reads parameter names.
    """
    names = [n for n, _ in model.named_parameters()]
    indices = [int(m.group(1)) for n in names if (m := _LAYER_INDEX.search(n))]
    n_layers = max(indices) + 1 if indices else 0
    groups: list[list[str]] = [[] for _ in range(n_layers + 2)]
    for name in names:
        match = _LAYER_INDEX.search(name)
        if match:
            groups[int(match.group(1)) + 1].append(name)
        elif "embed" in name or "shared" in name.split("."):
            groups[0].append(name)
        else:
            groups[-1].append(name)
    return groups


class GradualUnfreezingCallback(TrainerCallback):
    """Unfreeze one more layer group (top down) every `every` optimizer steps."""

    def __init__(self, trainer: TransferTrainer, every: int):
        self.trainer = trainer
        self.every = every

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer.unfreeze_top(1 + state.global_step // self.every)


class TransferTrainer(Trainer):
    """A `Trainer` for transfer fine-tuning; see the module docstring.

    Args beyond `Trainer`'s:
        class_weights: per-class loss weights (tensor of shape [num_labels]); computed from the training
            labels when `args.class_weighted_loss` is set and this is None.
    """

    args: FineTuningArguments

    def __init__(self, *args, class_weights: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        one_progress_bar(self)
        self.add_callback(TieBreakCallback())  # equal metrics: the lower validation loss is the best
        targs = self.args
        if not isinstance(targs, FineTuningArguments):
            raise TypeError(
                "TransferTrainer needs TransferTrainingArguments (from nlptransfer import TransferTrainingArguments)"
            )
        weighted = isinstance(targs, TransferTrainingArguments) and targs.class_weighted_loss
        if class_weights is None and weighted:
            class_weights = balanced_class_weights(self.train_dataset)
        self.class_weights = class_weights
        # The Trainer assumes a model whose forward takes **kwargs normalises its loss by `num_items_in_batch`
        # itself. transformers' sequence-classification heads take **kwargs but return a per-batch mean (and
        # so does our weighted loss); believing otherwise, the Trainer skips its division by
        # gradient_accumulation_steps and multiplies the loss by the number of DDP processes (seen: a doubled
        # train_loss under `accelerate launch` with 2 processes). Trust only a model that declares it.
        unwrapped = self.accelerator.unwrap_model(self.model)
        base = unwrapped.get_base_model() if hasattr(unwrapped, "get_base_model") else unwrapped
        if class_weights is not None or getattr(base, "accepts_loss_kwargs", None) is not True:
            self.model_accepts_loss_kwargs = False

        self._prepare(self.model)
        if targs.gradual_unfreezing_steps:
            self.add_callback(GradualUnfreezingCallback(self, targs.gradual_unfreezing_steps))

    def _prepare(self, model: torch.nn.Module) -> None:
        """Layer groups, frozen embeddings, what may train, the first unfrozen group: of the model given at
        init, and again of each one a `model_init` builds (`train()` of a hyperparameter search)."""
        self._groups = layer_groups(model)
        params = dict(model.named_parameters())
        if self.args.freeze_embeddings:
            for name in self._groups[0]:
                params[name].requires_grad = False
        # Parameters the strategy allowed to train; gradual unfreezing never touches the others.
        self._trainable = {n for n, p in params.items() if p.requires_grad}
        if not self._trainable:
            raise ValueError("the model has no trainable parameters; check the strategy and freeze options")
        if self.args.gradual_unfreezing_steps:
            self.unfreeze_top(1, model)
        # L2-SP's reference is the starting point of this model (a search's model_init builds a new one)
        self.l2sp_reference: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        if getattr(self.args, "l2sp_weight", 0.0) > 0:
            if type(self).compute_loss is not TransferTrainer.compute_loss:
                raise ConfigError(
                    f"--l2sp_weight is added to TransferTrainer's loss; {type(self).__name__} computes its own: "
                    "drop --l2sp_weight"
                )
            self.l2sp_reference = l2sp_reference(self.accelerator.unwrap_model(model), self._trainable)
            self.model_accepts_loss_kwargs = False  # one penalty per micro-batch, averaged like the loss

    def l2sp_distance(self) -> float:
        """||theta - theta_0||^2 over the L2-SP weights now (0.0 without L2-SP)."""
        with torch.no_grad():
            return float(l2sp_penalty(self.l2sp_reference)) if self.l2sp_reference else 0.0

    def call_model_init(self, trial=None):
        model = super().call_model_init(trial)
        if hasattr(self, "_trainable"):  # not the first model (Trainer.__init__): prepared like it
            self._prepare(model)
        return model

    def unfreeze_top(self, k: int, model: torch.nn.Module | None = None) -> None:
        """Make the top `k` layer groups trainable (within what the strategy allows), the rest frozen."""
        params = dict((self.model if model is None else model).named_parameters())
        n = len(self._groups)
        for depth, names in enumerate(self._groups):
            for name in names:
                if name in self._trainable:
                    params[name].requires_grad = depth >= n - k

    def create_optimizer(self, model=None):
        """AdamW (or `args.optim`) with one parameter group per layer depth and weight-decay setting."""
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        decay = self.args.layerwise_lr_decay
        if decay == 1.0 and not self.args.gradual_unfreezing_steps:
            return super().create_optimizer(model)
        decay_names = set(self.get_decay_parameter_names(opt_model))
        params = dict(opt_model.named_parameters())
        top = len(self._groups) - 1
        param_groups = []
        for depth, names in enumerate(self._groups):
            # Include frozen-for-now parameters of gradual unfreezing: AdamW skips them while grad is None.
            names = [n for n in names if n in self._trainable and n in params]
            lr = self.args.learning_rate * decay ** (top - depth)
            for wd_names, wd in (
                ([n for n in names if n in decay_names], self.args.weight_decay),
                ([n for n in names if n not in decay_names], 0.0),
            ):
                if wd_names:
                    param_groups.append(
                        {"params": [params[n] for n in wd_names], "weight_decay": wd, "lr": lr}
                    )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(param_groups, lr=self.args.learning_rate, **optimizer_kwargs)
        logger.info(
            "discriminative learning rates: head %.2e ... embeddings %.2e over %d groups",
            self.args.learning_rate,
            self.args.learning_rate * decay**top,
            len(self._groups),
        )
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = self.task_loss(model, inputs, return_outputs, num_items_in_batch)
        if not (self.l2sp_reference and model.training):  # evaluation loss: the task's alone
            return result
        penalty = 0.5 * self.args.l2sp_weight * l2sp_penalty(self.l2sp_reference)
        return (result[0] + penalty, result[1]) if return_outputs else result + penalty

    def task_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss, or the class-weighted cross-entropy with `class_weights`."""
        if self.class_weights is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits
        weights = self.class_weights.to(device=logits.device, dtype=logits.dtype)
        if labels.dtype.is_floating_point and labels.shape == logits.shape:  # multi-label
            loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), pos_weight=weights)
        else:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), weight=weights)
        return (loss, outputs) if return_outputs else loss


def l2sp_reference(
    model: torch.nn.Module, trainable: set[str] | None = None
) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """(parameter, frozen copy) for every trainable pretrained weight of a plain classifier: the parameters
    under its `base_model_prefix` (the encoder; the new head is not one of them). `trainable`: the names
    allowed to train (default: those with requires_grad now)."""
    if hasattr(model, "get_base_model"):
        raise ConfigError(
            "--l2sp_weight needs a plain model (--strategy full or bitfit): an adapter starts at zero, so its "
            "theta_0 is implicit and --weight_decay already pulls it there"
        )
    prefix = getattr(model, "base_model_prefix", "") + "."
    reference = [
        (p, p.detach().clone())
        for name, p in model.named_parameters()
        if (name in trainable if trainable is not None else p.requires_grad) and name.startswith(prefix)
    ]
    if not reference:
        raise ConfigError(
            "--l2sp_weight penalises the pretrained weights, but none of them trains under this strategy; "
            "use --strategy full or bitfit, or drop --l2sp_weight"
        )
    return reference


def l2sp_penalty(reference: list[tuple[torch.nn.Parameter, torch.Tensor]]) -> torch.Tensor:
    """||theta - theta_0||^2 summed over `l2sp_reference` pairs (differentiable in theta)."""
    return torch.stack([(p - p0).pow(2).sum() for p, p0 in reference]).sum()


def balanced_class_weights(dataset, label_column: str = "labels") -> torch.Tensor:
    """Loss weights from the training labels.

    Single-label: inverse frequency n / (k * count_c), scikit-learn's 'balanced' scheme (absent classes 1).
    Multi-label (multi-hot rows): BCE `pos_weight` = negatives / positives per label, so a rare label's
    positives weigh as much as its negatives (labels never positive get 1).
    """
    # scikit-learn is imported when used: importing the trainers stays ~1.5 s faster.
    from sklearn.utils.class_weight import compute_class_weight

    column = label_column if label_column in dataset.column_names else "label"
    rows = [np.asarray(v) for v in dataset[column]]  # any format: lists, numpy or torch (0-d or 1-d)
    if rows and rows[0].ndim == 1:  # multi-hot rows
        targets = np.stack(rows).astype(np.float64)
        positives = targets.sum(0)
        weights = np.where(positives > 0, (len(targets) - positives) / np.maximum(positives, 1), 1.0)
        return torch.tensor(weights, dtype=torch.float32)
    labels = [int(v) for v in rows]
    feature = dataset.features.get(column)
    num_classes = getattr(feature, "num_classes", None) or (max(labels) + 1)
    present = sorted(set(labels))
    weights = compute_class_weight("balanced", classes=np.array(present), y=np.array(labels))
    out = torch.ones(num_classes)
    for c, w in zip(present, weights, strict=True):
        out[c] = float(w)
    return out
