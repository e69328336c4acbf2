"""Ordered batch prediction.

`Trainer.predict` may return rows out of dataset order (with `train_sampling_strategy="group_by_length"`
it also length-groups evaluation batches in transformers 5). Anything that pairs a prediction with its
row goes through `predict_logits`, which sorts by length for speed and puts rows back in order.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import PartialState
from tqdm.auto import tqdm


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    tokenizer,
    texts: list[str],
    batch_size: int = 64,
    max_length: int = 128,
    desc: str = "predict",
) -> np.ndarray:
    """Logits for `texts`, shape [len(texts), num_labels], row i belonging to texts[i]."""
    device = PartialState().device
    model = model.to(device).eval()
    if not texts:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    # Sort by token count (one fast batched call) so each batch pads to nearly its own length.
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, leave=False):
        idx = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        ).to(device)
        chunks.append(model(**batch).logits.float().cpu().numpy())
    sorted_logits = np.concatenate(chunks)
    logits = np.empty_like(sorted_logits)
    logits[order] = sorted_logits
    return logits
