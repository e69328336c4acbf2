"""`ContrastiveTrainer`: SetFit-style contrastive fine-tuning of a sentence encoder from few labelled examples.

1. Pairs (`contrastive_pairs`): for each of `contrastive_iterations` iterations, every training example is
   paired with one other example of its class (label 1.0) and one example of another class (label 0.0):
   2 x iterations x n pairs, half positive, never an example with itself, seeded.
2. Loss (`losses.cosine_similarity_loss`, sentence-transformers' CosineSimilarityLoss): MSE between the
   cosine of the two texts' pooled embeddings and the pair's label. The embedding is the classifier's own
   sentence vector: its backbone's output under the classifier's pooling (`modeling.pooling.model_pooling`,
   `pool`: mean for MiniLM), so it tunes exactly what the head will read. Any strategy that trains
   backbone weights works: `full`, and the adapters peft injects into the backbone (`lora`, ...).
3. Head (`fit_logistic_head`): scikit-learn's logistic regression on the tuned embeddings of the training
   examples, copied into the classifier's linear head. The model stays a plain classifier of the project
   (`nlptransfer_pooled` for mean/cls/max pooling), so `nlptransfer predict` and `pipeline()` load it.

    pairs = contrastive_pairs(train["label"], iterations=20, seed=42)
    trainer = ContrastiveTrainer(model=model, args=ContrastiveTrainingArguments("out", learning_rate=2e-5),
                                 train_dataset=train, processing_class=tokenizer, max_length=128)
    trainer.train()
    fit_logistic_head(model, embed_texts(model, tokenizer, train["text"]), train["label"], seed=42)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from nlptransfer.errors import ConfigError, DataError, ModelError
from nlptransfer.inference import predict_logits
from nlptransfer.losses import cosine_similarity_loss
from nlptransfer.modeling.pooling import model_pooling, pool
from nlptransfer.trainers.contrastive.config import ContrastiveTrainingArguments
from nlptransfer.trainers.transfer import TransferTrainer
from nlptransfer.wordvec import WORDVEC_TYPE

logger = logging.getLogger("nlptransfer")

SIDES = ("a_", "b_")


# ------------------------------------------------------------------------------------------ pairs


def contrastive_pairs(labels: Sequence[int], iterations: int, seed: int) -> list[tuple[int, int, float]]:
    """(i, j, label) index pairs: per iteration, each example i with one other example of its class
    (label 1.0) and one example of another class (label 0.0); shuffled, seeded. One `DataError` line when
    a class has a single example (no positive partner) or there is only one class (no negative)."""
    if iterations < 1:
        raise ConfigError(f"contrastive_iterations={iterations} must be >= 1")
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise DataError(
            "contrastive pairs need training examples of at least 2 classes (different = dissimilar); "
            "add examples of another class or use --method finetune"
        )
    if counts.min() < 2:
        raise DataError(
            f"class {classes[counts.argmin()]!r} has {counts.min()} training example: contrastive pairs need "
            "at least 2 per class (same = similar); use --examples_per_class 2 or more"
        )
    rng = np.random.default_rng(seed)
    same = {c: np.flatnonzero(y == c) for c in classes}
    other = {c: np.flatnonzero(y != c) for c in classes}
    pairs: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i, c in enumerate(y):
            partners = same[c][same[c] != i]
            pairs.append((i, int(rng.choice(partners)), 1.0))
            pairs.append((i, int(rng.choice(other[c])), 0.0))
    return [pairs[k] for k in rng.permutation(len(pairs))]


def pair_dataset(texts: Sequence[str], pairs: Sequence[tuple[int, int, float]]) -> Dataset:
    """The pairs as rows of `text_a`, `text_b`, `label` (float)."""
    texts = list(texts)  # a datasets Column reads Arrow on every index
    return Dataset.from_dict(
        {
            "text_a": [texts[i] for i, _, _ in pairs],
            "text_b": [texts[j] for _, j, _ in pairs],
            "label": [float(s) for _, _, s in pairs],
        }
    )


class PairCollator:
    """Tokenizes both sides of a batch of pairs: `a_input_ids`, `a_attention_mask`, ..., `b_...`, `labels`."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for side, column in zip(SIDES, ("text_a", "text_b"), strict=True):
            encoded = self.tokenizer(
                [r[column] for r in rows],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            batch.update({side + k: v for k, v in encoded.items()})
        batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.float32)
        return batch


# -------------------------------------------------------------------------------------- embeddings


def backbone_of(model: nn.Module) -> nn.Module:
    """The encoder inside a classifier (through a peft wrapper: its injected adapters stay active)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(base, getattr(base, "base_model_prefix", ""), None)
    if not isinstance(backbone, nn.Module) or backbone is base:
        raise ModelError(
            f"{type(base).__name__} has no separate encoder (base_model_prefix); contrastive fine-tuning "
            "needs a *ForSequenceClassification model"
        )
    return backbone


def sentence_embedding(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """[batch, hidden]: what the classifier's head reads, before its dropout (the classifier's pooling of
    its encoder's output)."""
    outputs = backbone_of(model)(**inputs, return_dict=True)
    return pool(outputs, inputs.get("attention_mask"), model_pooling(model))


class SentenceEncoder(nn.Module):
    """A classifier's sentence embedding in `predict_logits`'s shape (the embedding goes out as `.logits`),
    so prediction's length sorting, batching and order restoring serve embeddings too."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, **batch) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=sentence_embedding(self.model, batch))


def embed_texts(
    model: nn.Module, tokenizer, texts: Sequence[str], max_length: int = 128, batch_size: int = 64
) -> np.ndarray:
    """float32 [len(texts), hidden] sentence embeddings (eval mode, no dropout), row i for texts[i]."""
    if not texts:
        raise DataError("no texts to embed; the training split is empty")
    was_training = model.training
    try:
        return predict_logits(SentenceEncoder(model), tokenizer, list(texts), batch_size, max_length, "embed")
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------------------- head


def classifier_head(
    model: nn.Module, option: str = "--method logreg/contrastive", instead: str = "--method finetune"
) -> list[nn.Linear]:
    """The linear layer(s) of the classifier's head `classifier` (under peft: the original and the trained
    copy), each [num_labels, hidden], reading the sentence embedding (`sentence_embedding`) itself, so a
    regression on that embedding can be copied into them. Otherwise one line naming `option` (what copies
    the regression: "--method logreg", "--lp_ft") and the fix (`instead`: the other way out)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = getattr(base, "classifier", None)
    config = base.config
    num_labels = config.num_labels
    linears = [] if head is None else [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears or any(m.out_features != num_labels for m in linears):
        raise ModelError(
            f"{type(base).__name__}'s head is not one linear layer named classifier; the logistic regression "
            f"of {option} cannot be copied into it (use --pooling mean, cls or max, or {instead})"
        )
    if getattr(config, "model_type", None) == WORDVEC_TYPE:  # the pooled vectors -> [convs] -> [MLP] -> head
        layers = []
        if config.sentence_encoder != "bag":
            layers.append(("1-D convolutions", "--wordvec_encoder bag"))
        if config.head_hidden_size:
            layers.append((f"a {config.head_hidden_size}-unit hidden layer", "--wordvec_hidden_size 0"))
        if layers:
            raise ConfigError(
                f"{option} copies a logistic regression on the pooled word vectors into the head, but this "
                f"head has {' and '.join(what for what, _ in layers)} before its output layer; pass "
                f"{' '.join(fix for _, fix in layers)}, or {instead}"
            )
    width = getattr(config, "hidden_size", None)  # what the encoder's pooled output holds
    if isinstance(width, int) and any(m.in_features != width for m in linears):
        raise ModelError(
            f"{option} copies a logistic regression on the {width}-d sentence embedding into the head, but "
            f"{type(base).__name__}'s head reads {linears[0].in_features} numbers; use --pooling mean, cls "
            f"or max, or {instead}"
        )
    return linears


def fit_logistic_head(
    model: nn.Module,
    features: np.ndarray,
    labels: Sequence[int],
    seed: int,
    balanced: bool = False,
    max_iter: int = 1000,
) -> dict[str, float]:
    """Fit scikit-learn's `LogisticRegression` on `features` and copy it into the classifier's linear head,
    so the model's argmax is the regression's prediction. Two classes (one coefficient row w, bias b) become
    the rows -w/2 and +w/2 (softmax of these = the regression's sigmoid); a label of the model absent from
    `labels` (e.g. not in --train_labels) gets weight 0 and a bias far below the others: never predicted.
    `balanced`: inverse-frequency class weights (scikit-learn's "balanced", as --class_weighted_loss). Returns the regression's training accuracy."""
    from sklearn.linear_model import LogisticRegression  # scikit-learn is slow to import

    linears = classifier_head(model)
    check_feature_width(linears, features)
    y = np.asarray(labels)
    present = np.unique(y)
    regression = LogisticRegression(
        max_iter=max_iter, random_state=seed, class_weight="balanced" if balanced else None
    ).fit(features, y)
    coef, intercept = regression.coef_, regression.intercept_
    if len(present) == 2:
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    num_labels, hidden = linears[0].weight.shape
    weight = np.zeros((num_labels, hidden), dtype=np.float32)
    bias = np.full(num_labels, float(intercept.min()) - 1e4, dtype=np.float32)
    weight[present] = coef
    bias[present] = intercept
    for linear in linears:
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(bias))
    return {"logreg_train_accuracy": float(regression.score(features, y))}


def check_feature_width(linears: Sequence[nn.Linear], features: np.ndarray) -> None:
    """One line (not numpy's broadcast error) when the features are not as wide as what the head reads."""
    if features.ndim != 2 or features.shape[1] != linears[0].in_features:
        raise ModelError(
            f"the sentence embeddings have {features.shape[-1]} numbers but the head reads "
            f"{linears[0].in_features}; a logistic regression on them cannot be copied into it (train the "
            "head by fine-tuning: --method finetune without --lp_ft)"
        )


# ----------------------------------------------------------------------------------------- trainer


class ContrastiveTrainer(TransferTrainer):
    """Contrastive fine-tuning of the classifier's encoder on pairs of its training examples.

    `train_dataset`: labelled rows with `text` and `label`; the trainer generates the pairs
    (`contrastive_pairs`, `args.contrastive_iterations`, seeded with `args.seed`) and tokenizes them per
    batch (`PairCollator`, `max_length`). The head does not train here (`fit_logistic_head` sets it).
    """

    args: ContrastiveTrainingArguments

    def __init__(self, *args, max_length: int = 128, **kwargs):
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if not isinstance(training_args, ContrastiveTrainingArguments):
            raise TypeError("ContrastiveTrainer needs ContrastiveTrainingArguments")
        labelled = kwargs.pop("train_dataset", None)
        if labelled is None or not {"text", "label"} <= set(labelled.column_names):
            raise DataError("ContrastiveTrainer needs a train_dataset with text and label columns")
        self.pairs = contrastive_pairs(
            labelled["label"], training_args.contrastive_iterations, training_args.seed
        )
        tokenizer = kwargs.get("processing_class")
        kwargs.setdefault("data_collator", PairCollator(tokenizer, max_length))
        super().__init__(*args, train_dataset=pair_dataset(labelled["text"], self.pairs), **kwargs)
        if not any(p.requires_grad for p in backbone_of(self.model).parameters()):
            raise ConfigError(
                "contrastive fine-tuning trains the encoder, but no encoder weight is trainable under this "
                "strategy; use --strategy full or lora (or --method logreg for frozen features)"
            )
        logger.info(
            "contrastive pairs: %d (%d positive) from %d examples x %d iterations",
            len(self.pairs),
            sum(1 for p in self.pairs if p[2] == 1.0),
            len(labelled),
            training_args.contrastive_iterations,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        sides = [{k[len(s) :]: v for k, v in inputs.items() if k.startswith(s)} for s in SIDES]
        a, b = (sentence_embedding(model, side) for side in sides)
        loss = cosine_similarity_loss(a, b, inputs["labels"])
        return (loss, {"a": a, "b": b}) if return_outputs else loss
