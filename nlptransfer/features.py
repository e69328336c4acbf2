"""Cached backbone features for `--strategy frozen`: run the frozen backbone once, train the head many times.

With a frozen backbone, every epoch recomputes the same backbone outputs. `extract_features` computes
them once (cached on disk) and `train_head_on_features` trains the model's own head on them with the
Trainer, so the result is the same model as training the frozen model every step, many times faster.

    from nlptransfer.features import extract_features, freeze_backbone_eval, train_head_on_features
    model = build_classifier(model_args, TransferArguments(strategy="frozen"), label_names)
    train_x = extract_features(model, tokenizer, train["text"], max_length=model_args.max_length)
    eval_x = extract_features(model, tokenizer, validation["text"], max_length=model_args.max_length)
    output, metrics = train_head_on_features(
        model, train_x, train["label"], eval_features=eval_x, eval_labels=validation["label"],
        training_args=training_args, compute_metrics=compute_metrics,
    )
    save_classifier(model, tokenizer, output_dir)  # a plain BertForSequenceClassification

Pooling (`extract_features(pooling=...)`):
- `head` (default): exactly the tensor the classification head consumes: for BERT-family models the
  pooler output ([CLS] -> dense -> tanh), for `--pooling cls/mean/max` classifiers
  (`modeling.pooling.PooledForSequenceClassification`) that pooling of the last hidden states. Only these
  features can train the head (`train_head_on_features`).
- `pooler`, `mean`, `cls`, `max`: one pooling (`modeling.pooling.pool`), for feature-only uses (a
  logistic-regression probe, clustering); mean/cls/max work for any encoder, even a bare `AutoModel`.

Dropout, and why cached == per-step: a frozen backbone is a fixed feature extractor, so it runs in eval
mode (no dropout) in both paths. The Trainer puts the whole model in train mode at every step, which would
turn backbone dropout back on and make every epoch see different features; `freeze_backbone_eval(model)`
keeps the backbone in eval mode for the per-step path. The head's own dropout stays on in both paths (it
is part of the head), and with the same seed, data order and hyperparameters the two paths give the same
head weights up to float rounding (tests/test_features.py checks it).

Cache (`cache_dir()/features/<key>.npy`, float32 [n_texts, dim]): the key is a sha256 over the backbone's
state_dict (names, dtypes, shapes and bytes: changing any backbone weight, pooler included, changes it;
~0.1 s for MiniLM's 22M parameters), the backbone config minus head/label fields, the tokenizer (its
full `tokenizer.json` serialisation or vocabulary, and padding/truncation side), `max_length`, the pooling
and the texts in order. The head's weights are not in the key: training the head leaves the cache valid.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.trainer_utils import TrainOutput

from nlptransfer import assets
from nlptransfer.errors import ConfigError, DataError, ModelError, OutputDirError
from nlptransfer.inference import predict_logits
from nlptransfer.modeling.load import load_model, load_tokenizer
from nlptransfer.modeling.pooling import PooledForSequenceClassification, classification_loss, pool
from nlptransfer.paths import expand_user
from nlptransfer.runs import is_main_process, write_bytes_atomic
from nlptransfer.selection import rank_by_score
from nlptransfer.trainers import TransferTrainer, TransferTrainingArguments

logger = logging.getLogger("nlptransfer")

POOLINGS = ("head", "pooler", "mean", "cls", "max")

#: Classifiers whose forward is `classifier(dropout(base_model(...).pooler_output))` with the standard
#: regression / single-label / multi-label losses (checked against transformers 5.24). Others raise.
HEAD_ON_POOLER = frozenset(
    {
        "AlbertForSequenceClassification",
        "BertForSequenceClassification",
        "ErnieForSequenceClassification",
        "MegatronBertForSequenceClassification",
        "MobileBertForSequenceClassification",
        "RemBertForSequenceClassification",
    }
)

# Bump when the pooling code or the file format changes, so old cache files stop matching.
_CACHE_VERSION = 2
# Config fields of the head or of naming only: they do not change what the backbone computes.
_HEAD_CONFIG_KEYS = frozenset(
    {
        "id2label",
        "label2id",
        "num_labels",
        "problem_type",
        "architectures",
        "finetuning_task",
        "classifier_dropout",
        "classifier_dropout_prob",
        "_name_or_path",
        "transformers_version",
    }
)


# ----------------------------------------------------------------------------------------------
# the frozen backbone


def _backbone(model: nn.Module) -> nn.Module:
    return getattr(model, "base_model", model)


def head_pooling(model: nn.Module) -> str | None:
    """The pooling whose output `model`'s classification head reads (so its input can be cached): "pooler"
    for the BERT-family classifiers of `HEAD_ON_POOLER`, the configured one for the pooled architecture
    (`modeling.pooling.PooledForSequenceClassification`); None for any other head."""
    if type(model).__name__ in HEAD_ON_POOLER:
        return "pooler"
    if isinstance(model, PooledForSequenceClassification):
        return model.config.pooling
    return None


def _check_head_supported(model: nn.Module) -> str:
    name = type(model).__name__
    pooling = head_pooling(model)
    if pooling is None:
        raise ConfigError(
            f"feature caching is not supported for {name}: its head is not known to read one pooled vector "
            f"(supported: {', '.join(sorted(HEAD_ON_POOLER))} and --pooling cls/mean/max heads); "
            "pass --cache_features false"
        )
    return pooling


def _keep_eval(module: nn.Module, args) -> None:
    if module.training:
        module.eval()


def freeze_backbone_eval(model: PreTrainedModel) -> RemovableHandle:
    """Freeze `model.base_model` and keep it in eval mode (no dropout) even while the Trainer trains.

    `Trainer.training_step` calls `model.train()` at every step, so setting `.eval()` once is undone; a
    forward pre-hook on the backbone switches it (and only it) back to eval mode before each forward.
    The head (dropout + classifier) still trains in train mode. Use it on the per-step frozen path so that
    path computes the same features as the cache. Returns the hook handle (`handle.remove()` undoes the
    eval pinning, not the freezing). Hooks are not saved: the saved model is unaffected.
    """
    backbone = _backbone(model)
    if backbone is model:
        raise ModelError(
            f"{type(model).__name__} has no separate backbone (base_model is the model itself); "
            "freeze_backbone_eval needs a *ForSequenceClassification model"
        )
    for param in backbone.parameters():
        param.requires_grad_(False)
    backbone.eval()
    return backbone.register_forward_pre_hook(_keep_eval)


class _Pooled(nn.Module):
    """The backbone with one pooling, in `predict_logits`'s shape: the pooled features go out as `.logits`.

    This lets `predict_logits` do the length sorting, batching and order restoring for features too.
    """

    def __init__(self, backbone: nn.Module, pooling: str):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling

    def forward(self, **batch) -> SequenceClassifierOutput:
        out = self.backbone(
            **batch, return_dict=True
        )  # [batch, hidden]: what the head's dropout + linear read
        return SequenceClassifierOutput(logits=pool(out, batch.get("attention_mask"), self.pooling))


# ----------------------------------------------------------------------------------------------
# cache key


def _hash_tensor(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous().reshape(-1)
    h.update(f"{t.dtype}{tuple(tensor.shape)}".encode())
    h.update(t.view(torch.uint8).numpy())  # raw bytes of any dtype (bf16 has no numpy type)


def _tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # vocabulary, normaliser, pre-tokenizer, post-processor, added tokens
        spec = json.loads(backend.to_str())
        # Per-call state that every `tokenizer(...)` call rewrites; max_length is in the key separately.
        spec.pop("truncation", None)
        spec.pop("padding", None)
        spec = json.dumps(spec, sort_keys=True)
    else:
        spec = json.dumps(
            {"vocab": tokenizer.get_vocab(), "init": tokenizer.init_kwargs}, sort_keys=True, default=str
        )
    sides = f"{type(tokenizer).__name__}|{tokenizer.padding_side}|{tokenizer.truncation_side}"
    return hashlib.sha256((sides + spec).encode()).hexdigest()


def feature_cache_key(model: nn.Module, tokenizer, texts: list[str], pooling: str, max_length: int) -> str:
    """The sha256 that names the cache file of these features; see the module docstring."""
    h = hashlib.sha256(f"nlptransfer-features-v{_CACHE_VERSION}|{pooling}|{max_length}|".encode())
    backbone = _backbone(model)
    config = getattr(backbone, "config", None)
    if config is not None:
        cfg = {k: v for k, v in config.to_dict().items() if k not in _HEAD_CONFIG_KEYS}
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    h.update(type(backbone).__name__.encode())
    for name, tensor in backbone.state_dict().items():
        h.update(name.encode())
        _hash_tensor(h, tensor)
    h.update(_tokenizer_fingerprint(tokenizer).encode())
    h.update(struct.pack("<Q", len(texts)))
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        h.update(struct.pack("<Q", len(data)))  # length prefix: ["ab", "c"] != ["a", "bc"]
        h.update(data)
    return h.hexdigest()


def _load_cached(path: Path, n_rows: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        logger.warning("feature cache file %s is unreadable (%s); extracting again", path, err)
        return None
    if features.ndim != 2 or features.shape[0] != n_rows:
        logger.warning(
            "feature cache file %s has shape %s, not [%d, dim]; extracting again",
            path,
            features.shape,
            n_rows,
        )
        return None
    return features


def _save_cache(path: Path, features: np.ndarray) -> None:
    """Through the one atomic writer: a reader never sees a half-written cache file."""
    buffer = io.BytesIO()
    np.save(buffer, features, allow_pickle=False)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except (
        OutputDirError
    ) as err:  # the cache only saves time: a read-only or full disk must not stop training
        logger.warning("could not write the feature cache %s (%s); continuing without it", path, err)


# ----------------------------------------------------------------------------------------------
# extraction


def extract_features(
    model: nn.Module,
    tokenizer,
    texts: list[str],
    *,
    pooling: str = "head",
    batch_size: int = 64,
    max_length: int = 128,
    cache: Path | str | bool | None = None,
) -> np.ndarray:
    """Pooled backbone features of `texts`, float32 [len(texts), hidden], row i belonging to texts[i].

    Args:
        model: a `*ForSequenceClassification` (for pooling "head", one of `HEAD_ON_POOLER`) whose backbone
            is frozen; for "mean"/"cls" any encoder, a bare `AutoModel` included.
        pooling: "head" (what the classification head reads), "pooler", "mean", "cls" or "max"; see the
            module docstring. The cache key holds the pooling "head" resolves to.
        batch_size, max_length: batching and truncation, as in `predict_logits`.
        cache: folder of the `.npy` cache; None or True: `cache_dir() / "features"`; False: no disk cache.

    The backbone runs in eval mode under `torch.inference_mode`, texts sorted by length (little padding).
    A second call with the same model weights, tokenizer, texts, pooling and max_length reads the cache.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if pooling == "head":
        pooling = _check_head_supported(model)
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(
                f"texts[{i}] is {type(text).__name__}, not a string; drop or fill missing texts first"
            )

    path = None
    if cache is not False:
        folder = (
            assets.cache_dir() / "features"
            if cache in (None, True)
            else expand_user(cache, what=f"feature cache {str(cache)!r}")
        )
        path = folder / f"{feature_cache_key(model, tokenizer, texts, pooling, max_length)}.npy"
        cached = _load_cached(path, len(texts))
        if cached is not None:
            logger.info("feature cache hit: %s (%d x %d, pooling=%s)", path, *cached.shape, pooling)
            return cached

    backbone = _backbone(model)
    was_training = backbone.training
    logger.info("extracting %s features of %d texts (pooling=%s)", type(model).__name__, len(texts), pooling)
    try:
        if texts:
            features = predict_logits(
                _Pooled(backbone, pooling), tokenizer, texts, batch_size, max_length, desc="features"
            )
        else:
            features = np.zeros((0, backbone.config.hidden_size), dtype=np.float32)
    finally:
        backbone.train(was_training)
    features = np.ascontiguousarray(features, dtype=np.float32)
    if path is not None and is_main_process():
        _save_cache(path, features)
        logger.info("feature cache written: %s", path)
    return features


# ----------------------------------------------------------------------------------------------
# training the head


class FeatureHead(nn.Module):
    """The classification head of a BERT-family classifier as a model over cached features.

    Holds the model's own `dropout` and `classifier` modules (the same parameters, not copies, under the
    same names), so training this trains `model`'s head. `forward` mirrors the classifier's: dropout, linear,
    and the same loss for `config.problem_type` (set from the labels when None, as the model does).
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        _check_head_supported(model)
        self.config = model.config
        self.num_labels = model.config.num_labels
        self.dropout = model.dropout
        self.classifier = model.classifier

    # **kwargs like the model's own forward, so Trainer treats the loss identically (gradient accumulation
    # decides on whether forward accepts loss kwargs such as num_items_in_batch); they are ignored.
    def forward(
        self, features: torch.Tensor, labels: torch.Tensor | None = None, **kwargs
    ) -> SequenceClassifierOutput:
        logits = self.classifier(self.dropout(features))  # features: [batch, hidden] -> [batch, num_labels]
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def feature_dataset(features, labels, model: PreTrainedModel, which: str) -> Dataset:
    """`features` (from `extract_features(model, ..., pooling="head")`) and their `labels` as a torch-format
    dataset a `FeatureHead` of `model` trains on; `labels=None`: unlabelled rows (a target domain's).
    `which` names the rows in errors ("train", "eval", ...)."""
    features = np.asarray(features, dtype=np.float32)
    hidden = model.classifier.in_features
    if features.ndim != 2 or features.shape[1] != hidden:
        raise DataError(
            f"{which} features have shape {features.shape} but the head of {type(model).__name__} reads "
            f"[n, {hidden}]; extract them from this model with pooling='head'"
        )
    if labels is None:
        return Dataset.from_dict({"features": features}).with_format("torch")
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise DataError(
            f"{which} has {len(features)} feature rows but {len(labels)} labels; pass the labels of the same "
            "texts, in the same order"
        )
    ds = Dataset.from_dict({"features": features, "labels": labels})
    num_labels = model.config.num_labels
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) and num_labels > 1:
        # A ClassLabel like the tokenized datasets have, so class_weighted_loss counts every class.
        ds = ds.cast_column("labels", ClassLabel(num_classes=num_labels))
    return ds.with_format("torch")


def train_head_on_features(
    model: PreTrainedModel,
    train_features: np.ndarray,
    train_labels,
    *,
    training_args: TransferTrainingArguments,
    eval_features: np.ndarray | None = None,
    eval_labels=None,
    compute_metrics=None,
    class_weights: torch.Tensor | None = None,
    trainer_cls: type[TransferTrainer] = TransferTrainer,
    trainer_kwargs: dict | None = None,
) -> tuple[TrainOutput, dict[str, float]]:
    """Train `model`'s head on features from `extract_features(model, ..., pooling="head")`.

    A `TransferTrainer` trains a `FeatureHead` sharing the head's parameters, so the optimizer, scheduler,
    logging, evaluation and class weights are the Trainer's and `model` afterwards holds the trained head
    (save it with `save_classifier`). Use the same `training_args` as the per-step path. Returns the
    `TrainOutput` and the final evaluation metrics (`{}` without eval features).

    `trainer_cls` (a `TransferTrainer` subclass, e.g. a domain-adaptation trainer) and `trainer_kwargs`
    (extra keyword arguments of it, e.g. `target_dataset=feature_dataset(target_features, None, ...)`)
    replace the plain `TransferTrainer`.

    `train_sampling_strategy="group_by_length"` becomes random sampling here: the features have no length.
    """
    _check_head_supported(model)
    trainable = [n for n, p in _backbone(model).named_parameters() if p.requires_grad]
    if trainable:
        raise ConfigError(
            f"cached features need a frozen backbone, but {len(trainable)} backbone parameters are trainable "
            f"(e.g. {trainable[0]}); use --strategy frozen or pass --cache_features false"
        )
    train_ds = feature_dataset(train_features, train_labels, model, "train")
    eval_ds = None
    if eval_features is not None or eval_labels is not None:
        if eval_features is None or eval_labels is None:
            raise DataError("pass both eval_features and eval_labels, or neither")
        eval_ds = feature_dataset(eval_features, eval_labels, model, "eval")

    args = training_args
    if args.train_sampling_strategy in ("group_by_length", "batch_rebalance") or args.gradient_checkpointing:
        # Both need token sequences; one feature vector per text has neither length nor activations to save.
        args = copy.copy(training_args)
        if args.train_sampling_strategy in ("group_by_length", "batch_rebalance"):
            logger.info("cached features: train_sampling_strategy=%s -> random", args.train_sampling_strategy)
            args.train_sampling_strategy = "random"
        args.gradient_checkpointing = False

    head = FeatureHead(model)
    trainer = trainer_cls(
        **{
            "model": head,
            "args": args,
            "train_dataset": train_ds,
            "eval_dataset": eval_ds,
            "compute_metrics": compute_metrics,
            "class_weights": class_weights,
            **(trainer_kwargs or {}),  # may replace any of the above (e.g. the data collator)
        }
    )
    output = trainer.train()
    metrics = trainer.evaluate() if eval_ds is not None else {}
    # The Trainer may have moved the head to its device; keep the whole model on one device.
    device = next(_backbone(model).parameters()).device
    head.to(device)
    return output, metrics


# ----------------------------------------------------------------------------------------------
# which pretrained model?


def rank_models(
    model_names: Sequence[str],
    texts: Sequence[str],
    labels,
    *,
    score: str = "logme",
    pooling: str = "mean",
    max_length: int = 128,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> list[tuple[str, float]]:
    """Rank candidate pretrained models (Hub ids or local folders) for a labelled target sample, without
    fine-tuning: `score` (`selection.SCORES`) of each model's frozen `pooling` features. Best first.
    Models load through `nlptransfer.modeling.load` (safetensors only unless `allow_pickle`; remote code
    only if trusted)."""
    candidates = {}
    for name in model_names:
        tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
        model = load_model(AutoModel, name, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
        candidates[name] = extract_features(
            model, tokenizer, list(texts), pooling=pooling, max_length=max_length
        )
    return rank_by_score(candidates, labels, score)
