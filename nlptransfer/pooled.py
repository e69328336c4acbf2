"""The pooled classifier architecture (model_type `nlptransfer_pooled`) and the one `pool` function.

`PooledForSequenceClassification` = an encoder (any AutoModel, its config a sub-config) + `pooling`
(pooler/cls/mean/max: `pool`, over `losses.pooled`) + dropout + a linear head named `classifier`. Importing
this module registers it with the transformers Auto classes; `import nlptransfer` imports it as soon as
transformers is imported (see `nlptransfer/__init__.py`), so saved models load with plain transformers and
`pipeline()`, never with `trust_remote_code`. It imports only torch, transformers and light nlptransfer
modules (no peft, no nlptransfer.config): it may run while peft is itself importing transformers. Building,
`auto` and the recipes' side live in `nlptransfer.modeling.pooling`.
"""

from __future__ import annotations

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

from nlptransfer.errors import ModelError
from nlptransfer.losses import pooled

MODEL_TYPE = "nlptransfer_pooled"
_ENCODER_SIZES = ("hidden_size", "num_hidden_layers", "num_attention_heads")
# The encoders whose peft default target modules the pooled architecture inherits (peft looks them up by
# model_type, and ours is MODEL_TYPE): the union of theirs, so LoRA & co. need no --target_modules.
_PEFT_ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "deberta", "deberta-v2", "electra", "mpnet")


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
        self.freeze_unused_pooler()
        register_peft_targets()

    def freeze_unused_pooler(self) -> None:
        """cls/mean/max never read the encoder's pooler: its parameters get no gradient, which DDP (multi-GPU
        `accelerate launch`) refuses unless they are frozen. They stay in the weights, unchanged."""
        pooler = getattr(self.encoder, "pooler", None)
        if self.config.pooling != "pooler" and isinstance(pooler, nn.Module):
            for param in pooler.parameters():
                param.requires_grad_(False)

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


_peft_registered = False


def register_peft_targets() -> None:
    """peft's default target modules for MODEL_TYPE (peft looks them up by model_type): the union of the
    `_PEFT_ENCODERS`' (family-specific names: BERT's query/value, DeBERTa-v2's query_proj/value_proj, ...).
    Called when a pooled model is built (not at import: `nlptransfer.pooled` may be imported while peft
    itself is still importing transformers)."""
    global _peft_registered
    if _peft_registered:
        return
    _peft_registered = True
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


AutoConfig.register(MODEL_TYPE, PooledConfig, exist_ok=True)
AutoModelForSequenceClassification.register(PooledConfig, PooledForSequenceClassification, exist_ok=True)
