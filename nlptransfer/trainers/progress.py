"""One progress bar per Trainer: the evaluation inside training does not open a second, nested bar.

A nested tqdm bar moves the cursor with terminal escape codes (written as `ESC[A` into a redirected log) and,
in a terminal, leaves a stack of finished bars behind. The training bar already shows where training is; the
evaluation's own line of metrics follows it. `trainer.predict` / `evaluate` outside training keep their bar.
"""

from __future__ import annotations

from transformers import ProgressCallback, Trainer


class OneProgressBar(ProgressCallback):
    """`ProgressCallback` without the evaluation bar while the training bar is open."""

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if self.training_bar is None:
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)


def one_progress_bar(trainer: Trainer) -> None:
    """Swap the Trainer's progress bar for `OneProgressBar` (nothing to swap with --disable_tqdm)."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(OneProgressBar())
