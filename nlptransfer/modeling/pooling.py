"""Sentence pooling for every head nlptransfer builds, `auto` pooling, and the pooled classifier architecture.

Poolings (`--pooling`, `ModelArguments.pooling`):
- `pooler`: the model's own transformers classification head (for BERT-family models: [CLS] -> the
  pretrained pooler's dense + tanh). The saved model is a plain `AutoModelForSequenceClassification`.
- `cls`: the first attended token's last hidden state; `mean` / `max`: the attention-masked mean / max of
  the last hidden states (`losses.pooled`, the one pooling function). These heads use
  `PooledForSequenceClassification` (model_type `nlptransfer_pooled`), registered with the transformers
  Auto classes when `nlptransfer.modeling` is imported (`import nlptransfer` then `pipeline(...)`), so saved
  models load with plain transformers and without `trust_remote_code`.
- `auto` (`resolve_pooling`), decided once per run from files only (never the network):
  1. a sentence-transformers checkpoint (`modules.json` naming a Pooling module, e.g. `1_Pooling/config.json`):
     its pooling mode (`pooling_mode_mean_tokens` -> mean, `_cls_token` -> cls, `_max_tokens` -> max; with
     several modes on, mean > cls > max, since one head reads one vector);
  2. a saved `nlptransfer_pooled` classifier: the pooling it was trained with;
  3. a checkpoint whose weights hold a pooler (`*pooler.dense.weight`, plain BERT-style models): pooler;
  4. weights without a pooler: mean (a pooler would start random; mean of the pretrained token states
     is the best untrained sentence vector);
  5. a Hub id whose files are not in the local cache: pooler (the plain transformers format), with a
     warning saying so.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import SequenceClassifierOutput

from nlptransfer.config import POOLINGS
from nlptransfer.errors import ConfigError, ModelError
from nlptransfer.losses import pooled

logger = logging.getLogger("nlptransfer")

MODEL_TYPE = "nlptransfer_pooled"
# The encoders whose peft default target modules the pooled architecture inherits (peft looks them up by
# model_type, and ours is MODEL_TYPE): the union of theirs, so LoRA & co. need no --target_modules.
_ENCODER_SIZES = ("hidden_size", "num_hidden_layers", "num_attention_heads")
_PEFT_ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "mpnet")


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)} (--pooling)")


# ----------------------------------------------------------------------------------------------
# pooling


def pool(outputs, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """[batch, hidden] sentence vectors from an encoder's outputs under `pooling` (pooler/cls/mean/max)."""
    if pooling == "pooler":
        features = getattr(outputs, "pooler_output", None)
        if features is None:
            raise ModelError("this encoder has no pooler output; use --pooling mean (or cls, max)")
        return features
    return pooled(outputs.last_hidden_state, attention_mask, pooling)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """The loss transformers' sequence classifiers compute for `config.problem_type` (set from the labels
    when None): MSE for regression, cross-entropy for single-label, BCE-with-logits for multi-label."""
    num_labels = config.num_labels
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if num_labels == 1:
            return MSELoss()(logits.squeeze(), labels.squeeze())
        return MSELoss()(logits, labels)
    if config.problem_type == "single_label_classification":
        return CrossEntropyLoss()(logits.view(-1, num_labels), labels.view(-1))
    return BCEWithLogitsLoss()(logits, labels.to(logits.dtype))


# ----------------------------------------------------------------------------------------------
# the pooled classifier architecture


class PooledConfig(PreTrainedConfig):
    """A classifier = `encoder` (any AutoModel's config, a sub-config) + `pooling` + dropout + linear head."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: PreTrainedConfig | dict | None = None
    pooling: str = "mean"
    classifier_dropout: float | None = None

    # The encoder's sizes, read (and, for layer-dropping distillation, written) through the classifier's
    # config as on any transformers classifier. No vocab_size: peft would then compare it with the base's
    # by loading the base's config.json as this class.
    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    @hidden_size.setter
    def hidden_size(self, value: int) -> None:
        self.encoder.hidden_size = value

    @property
    def num_hidden_layers(self) -> int:
        return self.encoder.num_hidden_layers

    @num_hidden_layers.setter
    def num_hidden_layers(self, value: int) -> None:
        self.encoder.num_hidden_layers = value

    @property
    def num_attention_heads(self) -> int:
        return self.encoder.num_attention_heads

    @num_attention_heads.setter
    def num_attention_heads(self, value: int) -> None:
        self.encoder.num_attention_heads = value

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """The encoder's config: what reads the text (peft's prompt tuning sizes its embeddings from it)."""
        return self.encoder

    def to_dict(self) -> dict:
        """With the encoder's sizes at the top level too, where peft's prompt learning reads them."""
        out = super().to_dict()
        for key in _ENCODER_SIZES:
            if isinstance(out.get("encoder"), dict) and key in out["encoder"]:
                out[key] = out["encoder"][key]
        return out


class PooledForSequenceClassification(PreTrainedModel):
    """`classifier(dropout(pool(encoder(...))))`: the head is named `classifier` (and `dropout`), like
    BERT's, so peft's SEQ_CLS `modules_to_save` saves it with an adapter and cached features train it."""

    config_class = PooledConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: PooledConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.encoder = AutoModel.from_config(config.encoder)
        rate = config.classifier_dropout
        if rate is None:
            rate = getattr(config.encoder, "hidden_dropout_prob", None)
        self.dropout = nn.Dropout(0.1 if rate is None else rate)
        self.classifier = nn.Linear(config.encoder.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module):
        if module is self.classifier:
            std = getattr(self.config.encoder, "initializer_range", 0.02)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.encoder.set_input_embeddings(value)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        inputs_embeds=None,
        labels=None,
        output_hidden_states=None,
        output_attentions=None,
        return_dict=None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        given = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
            "output_hidden_states": output_hidden_states,
            "output_attentions": output_attentions,
        }
        outputs = self.encoder(**{k: v for k, v in given.items() if v is not None}, return_dict=True)
        mask = attention_mask
        if mask is not None and inputs_embeds is not None and mask.shape[1] != inputs_embeds.shape[1]:
            mask = None  # a peft soft prompt prepended tokens the mask does not cover
        logits = self.classifier(self.dropout(pool(outputs, mask, self.config.pooling)))
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )


def _register() -> None:
    AutoConfig.register(MODEL_TYPE, PooledConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(PooledConfig, PooledForSequenceClassification, exist_ok=True)
    try:
        from peft.utils import constants
    except ImportError:  # pragma: no cover - peft is a dependency
        return
    for name in dir(constants):
        mapping = getattr(constants, name)
        if not (name.startswith("TRANSFORMERS_MODELS_TO_") and isinstance(mapping, dict)):
            continue
        union: list[str] = []
        for encoder in _PEFT_ENCODERS:
            value = mapping.get(encoder)
            if isinstance(value, list):
                union += [v for v in value if v not in union]
        if union:
            mapping.setdefault(MODEL_TYPE, union)


_register()


def pooled_classifier(
    encoder: PreTrainedModel, pooling: str, **label_config
) -> PooledForSequenceClassification:
    """A new `PooledForSequenceClassification` around a loaded (pretrained) `encoder`; its weights are
    kept as they are, only the head is new. `label_config`: num_labels, id2label, label2id, problem_type."""
    config = PooledConfig(encoder=encoder.config, pooling=pooling, **label_config)
    model = PooledForSequenceClassification(config)
    model.encoder = encoder
    model.config.encoder = encoder.config
    model.config._name_or_path = encoder.config._name_or_path  # the base an adapter records
    model.name_or_path = encoder.name_or_path
    return model


# ----------------------------------------------------------------------------------------------
# auto


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _st_pooling(folder: Path) -> str | None:
    """The pooling of a sentence-transformers checkpoint (modules.json + its Pooling module's config)."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list):
        return None
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            spec = _read_json(folder / str(module.get("path", "")) / "config.json")
            if not isinstance(spec, dict):
                return None
            for mode in ("mean", "cls", "max"):
                key = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}.get(
                    mode, "pooling_mode_max_tokens"
                )
                if spec.get(key):
                    return mode
    return None


def _has_pooler(folder: Path) -> bool | None:
    """Whether the folder's safetensors weights hold a pooler; None when there are none to read."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                if any("pooler.dense" in key for key in f.keys()):
                    return True
        except (OSError, ValueError, RuntimeError):
            return None
    return False


def _local_folder(name: str) -> Path | None:
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    try:  # a Hub id already in the local cache: read its files there, never download
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(name, "config.json")
    except (ImportError, ValueError, OSError):
        return None
    return Path(config).parent if isinstance(config, str) else None


def resolve_pooling(name_or_path: str, pooling: str = "auto") -> tuple[str, str]:
    """(pooling, why): `pooling` unless it is "auto", which is decided as the module docstring says.

    `name_or_path` is the model as resolved (an embedded alias already mapped to its folder)."""
    check_pooling(pooling)
    if pooling != "auto":
        return pooling, "set by --pooling"
    name = str(name_or_path)
    folder = _local_folder(name)
    if folder is None:
        return "pooler", (
            f"{name!r} is not a local folder and not in the local Hub cache, so its sentence-transformers "
            "pooling config could not be read; using the plain transformers head (pass --pooling mean if it "
            "is a sentence-transformers model)"
        )
    mode = _st_pooling(folder)
    if mode is not None:
        return mode, "the checkpoint's sentence-transformers pooling config"
    config = _read_json(folder / "config.json")
    if (
        isinstance(config, dict)
        and config.get("model_type") == MODEL_TYPE
        and config.get("pooling") in POOLINGS
    ):
        return config["pooling"], "the pooling this classifier was trained with"
    has_pooler = _has_pooler(folder)
    if has_pooler:
        return "pooler", "a plain transformers checkpoint with a pretrained pooler"
    if has_pooler is False:
        return "mean", "the checkpoint has no pretrained pooler and no sentence-transformers config"
    return "pooler", "no safetensors weights to inspect; using the plain transformers head"


def resolve_run_pooling(model_args) -> str:
    """Resolve `model_args.pooling` ("auto" -> a concrete pooling) once at the start of a run, in place,
    so config.yaml records the value used; logs it in one line."""
    from nlptransfer import assets  # an embedded alias -> its folder, as modeling.load.resolve does

    choice, why = resolve_pooling(
        assets.resolve_model(str(model_args.model_name_or_path)), model_args.pooling
    )
    if model_args.pooling == "auto" and "not a local folder" in why:
        logger.warning("pooling: %s (%s)", choice, why)
    else:
        logger.info("pooling: %s (%s)", choice, why)
    model_args.pooling = choice
    return choice


def model_pooling(model) -> str:
    """The pooling a built classifier reads: its `nlptransfer_pooled` config's, else "pooler" (the model's
    own transformers head). Works through a peft wrapper."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) == MODEL_TYPE:
        return config.pooling
    return "pooler"
