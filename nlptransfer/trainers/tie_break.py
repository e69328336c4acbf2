"""Best-model selection with a tie-break: equal metrics (within `TIE_TOLERANCE`) are decided by validation loss.

The Trainer keeps the checkpoint whose `metric_for_best_model` is strictly better than the best so far. On a
small validation set macro-F1 moves in the 4th decimal between epochs while the loss moves a lot (seen: an
epoch with validation loss 0.604 kept over one with 0.264 for +0.0001 macro-F1). `TieBreakCallback` makes
the choice: a metric better by more than the tolerance wins; within the tolerance the lower `eval_loss`
wins. It runs in `on_evaluate`, before the Trainer compares, and steers that comparison through the public
`TrainerState.best_metric` (which it restores to the kept evaluation's value at the end of training), so
`best_global_step` / `best_model_checkpoint` / `load_best_model_at_end` follow its decision.

Every trainer of the project adds it (`TransferTrainer` and its subclasses, `TranslationTransferTrainer`).
"""

from __future__ import annotations

import math

from transformers import TrainerCallback

from nlptransfer.config_training import unknown_metric

TIE_TOLERANCE = 1e-4

__all__ = ["TIE_TOLERANCE", "TieBreakCallback", "is_better"]


def is_better(value: float, loss: float | None, best: tuple[float, float | None], greater: bool) -> bool:
    """Whether an evaluation (`value` of the selection metric, `loss`) beats `best` = (value, loss): by more
    than TIE_TOLERANCE on the metric, or, within it, by a lower loss (no loss on either side: no tie-break)."""
    best_value, best_loss = best
    if abs(value - best_value) > TIE_TOLERANCE:
        return value > best_value if greater else value < best_value
    return loss is not None and best_loss is not None and loss < best_loss


class TieBreakCallback(TrainerCallback):
    """See the module docstring. A no-op unless `metric_for_best_model` is set and is not the loss itself."""

    def __init__(self):
        self.best: tuple[float, float | None] | None = None
        self.training = False

    @staticmethod
    def _key(args) -> str | None:
        metric = args.metric_for_best_model
        if not metric or metric in ("loss", "eval_loss"):
            return None
        return metric if metric.startswith("eval_") else f"eval_{metric}"

    def on_train_begin(self, args, state, control, **kwargs):
        self.training, self.best, key = True, None, self._key(args)
        if key is None or state.best_global_step is None:
            return
        for entry in state.log_history:  # resumed: the best evaluation so far, from the restored state
            if entry.get("step") == state.best_global_step and key in entry:
                self.best = (float(entry[key]), entry.get("eval_loss"))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        key = self._key(args)
        if not self.training or key is None or not metrics:
            return
        if key not in metrics:  # the Trainer would raise a KeyError next, with a traceback
            raise unknown_metric(key, metrics)
        value, loss = float(metrics[key]), metrics.get("eval_loss")
        greater = bool(args.greater_is_better)
        if self.best is None or is_better(value, loss, self.best, greater):
            self.best = (value, loss)
            # the Trainer's strict comparison against +-inf accepts this evaluation as the new best
            state.best_metric = -math.inf if greater else math.inf
        else:
            # ... and against this evaluation's own value (or the better kept one) rejects it
            best_value = self.best[0]
            state.best_metric = max(value, best_value) if greater else min(value, best_value)

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False
        if self.best is not None:
            state.best_metric = self.best[0]
