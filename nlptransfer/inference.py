"""Ordered batch prediction, probabilities and decisions: the one copy every predicting path uses.

`Trainer.predict` may return rows out of dataset order (with `train_sampling_strategy="group_by_length"`
it also length-groups evaluation batches in transformers 5). Anything that pairs a prediction with its
row goes through `predict_logits`, which sorts by length for speed and puts rows back in order.

    logits = predict_logits(model, tokenizer, texts)
    probs = probabilities(logits, multilabel)          # softmax, or a sigmoid per label
    preds = decide(probs, multilabel, thresholds)      # class ids, or a 0/1 matrix above the thresholds

Multi-label thresholds are tuned per label on validation with `tune_thresholds`.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import PartialState
from tqdm.auto import tqdm

__all__ = ["decide", "in_length_order", "predict_logits", "probabilities", "tune_thresholds"]


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
    return in_length_order(
        tokenizer,
        texts,
        batch_size,
        max_length,
        lambda batch: model(**batch.to(device)).logits.float().cpu().numpy(),
        desc=desc,
    )


def in_length_order(
    tokenizer,
    texts: list[str],
    batch_size: int,
    max_length: int,
    run,
    *,
    tensors: str = "pt",
    desc: str = "predict",
) -> np.ndarray:
    """`run(encoded batch) -> array` over batches of `texts` in length order (tokenized once, with truncation;
    each batch padded by `tokenizer.pad` as `tensors`), the rows put back in text order: the loop every
    back-end (PyTorch, ONNX) shares. Tokenizing once in one batched call, not again per batch, matters for
    a small model: it was 90% of a word-vector classifier's prediction time."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    keys = list(encoded.keys())
    chunks = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, leave=False):
        idx = order[start : start + batch_size]
        batch = tokenizer.pad({k: [encoded[k][i] for i in idx] for k in keys}, return_tensors=tensors)
        chunks.append(run(batch))
    sorted_rows = np.concatenate(chunks)
    rows = np.empty_like(sorted_rows)
    rows[order] = sorted_rows
    return rows


def probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """Softmax over the last axis (single-label), or an independent sigmoid per label (multi-label)."""
    if multilabel:
        return 1.0 / (1.0 + np.exp(-logits))
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def decide(
    probs: np.ndarray, multilabel: bool, thresholds: np.ndarray | list[float] | None = None
) -> np.ndarray:
    """Predictions from `probabilities`: the most probable class id per row (single-label), or a 0/1 matrix
    of the labels whose probability reaches its threshold (multi-label; one per label, default 0.5)."""
    if not multilabel:
        return probs.argmax(-1)
    cut = 0.5 if thresholds is None else np.asarray(thresholds, dtype=float)
    return (probs >= cut).astype(int)


def tune_thresholds(probs: np.ndarray, targets: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label threshold maximising that label's F1 on validation; 0.5 where a label has no positives."""
    from sklearn.metrics import f1_score

    grid = np.linspace(0.05, 0.95, 19) if grid is None else grid
    thresholds = np.full(probs.shape[1], 0.5)
    for j in range(probs.shape[1]):
        if targets[:, j].sum() == 0:
            continue
        scores = [f1_score(targets[:, j], probs[:, j] >= t, zero_division=0) for t in grid]
        thresholds[j] = float(grid[int(np.argmax(scores))])
    return thresholds
