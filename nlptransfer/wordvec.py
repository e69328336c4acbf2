"""The word-vector classifier architecture (model_type `nlptransfer_wordvec`): static word vectors carried
into a domain classifier.

    WordVectorsModel                    embeddings (one static vector per word of a word-level vocabulary)
    WordVectorsForSequenceClassification
        = embeddings -> ["bag": nothing | "cnn": 1-D convolutions + ReLU] -> mean/max pooling over the
          non-pad tokens -> dropout -> [Linear + ReLU + dropout] -> Linear `classifier` -> logits

The backbone (`base_model`, prefix `wordvec`) holds only the embeddings, so `--strategy frozen` keeps the
word vectors fixed while the (optional) convolutions and the MLP train, and `full` fine-tunes the vectors
too. A checkpoint of the bare `WordVectorsModel` (what `nlptransfer.embeddings.word_vectors` writes from
GloVe, a vectors file or domain vectors) loads into the classifier with a new head, like any pretrained
encoder. Importing this module registers both classes with the transformers Auto classes;
`import nlptransfer` imports it as soon as transformers is imported (see `nlptransfer/__init__.py`), so saved
models load with plain transformers and `pipeline()`, never with `trust_remote_code`. Like
`nlptransfer.pooled`, it imports only torch, transformers and light nlptransfer modules.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from nlptransfer.errors import ModelError
from nlptransfer.losses import pooled
from nlptransfer.pooled import classification_loss

WORDVEC_TYPE = "nlptransfer_wordvec"
WORDVEC_POOLINGS = ("mean", "max")
ENCODERS = ("bag", "cnn")


class WordVectorsConfig(PreTrainedConfig):
    """Word-level vocabulary of `vocab_size` words with `embedding_dim`-d vectors, and the head on them.

    `sentence_encoder`: "bag" (pool the word vectors themselves) or "cnn" (`cnn_channels` filters of each width in
    `cnn_kernel_sizes`, ReLU, then pooling); `pooling`: mean or max over the non-pad tokens;
    `head_hidden_size`: width of the MLP's hidden layer (0: a linear head); `embedding_init_std`: the
    standard deviation of randomly initialised vectors (set to the pretrained vectors' own when built from
    them, so a random-init control has the same scale); `word_vectors_source`: where the vectors came from.
    """

    model_type = WORDVEC_TYPE

    vocab_size: int = 2
    embedding_dim: int = 50
    pad_token_id: int | None = 0
    pooling: str = "mean"
    sentence_encoder: str = "bag"
    cnn_channels: int = 100
    cnn_kernel_sizes: list[int] | tuple[int, ...] = (3, 4, 5)
    head_hidden_size: int = 128
    classifier_dropout: float = 0.2
    embedding_init_std: float = 0.3
    initializer_range: float = 0.02
    word_vectors_source: str = ""

    @property
    def hidden_size(self) -> int:
        """The width of the pooled sentence vector the head reads."""
        if self.sentence_encoder == "cnn":
            return self.cnn_channels * len(self.cnn_kernel_sizes)
        return self.embedding_dim


def check_head_settings(config: WordVectorsConfig) -> None:
    """One ModelError line for a pooling or encoder this architecture does not have."""
    if config.pooling not in WORDVEC_POOLINGS:
        raise ModelError(
            f"--pooling {config.pooling} does not apply to a word-vector model (no [CLS] token, no pooler); "
            f"use --pooling {' or '.join(WORDVEC_POOLINGS)} (or auto)"
        )
    if config.sentence_encoder not in ENCODERS:
        raise ModelError(
            f"unknown word-vector encoder {config.sentence_encoder!r}; use one of {', '.join(ENCODERS)}"
        )


class WordVectorsPreTrainedModel(PreTrainedModel):
    config_class = WordVectorsConfig
    base_model_prefix = "wordvec"

    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):
            if getattr(module.weight, "_is_hf_initialized", False):
                return  # loaded from a checkpoint
            nn.init.normal_(module.weight, mean=0.0, std=self.config.embedding_init_std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        else:
            super()._init_weights(module)


class WordVectorsModel(WordVectorsPreTrainedModel):
    """The backbone: the word vectors. `last_hidden_state` = the vectors of the input words."""

    def __init__(self, config: WordVectorsConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(
            config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
        )
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs) -> BaseModelOutput:
        if inputs_embeds is None:
            if input_ids is None:
                raise ModelError("a word-vector model needs input_ids (or inputs_embeds)")
            inputs_embeds = self.embeddings(input_ids)
        return BaseModelOutput(last_hidden_state=inputs_embeds)


class WordVectorsForSequenceClassification(WordVectorsPreTrainedModel):
    """Pooled word vectors (optionally after 1-D convolutions) -> MLP -> logits; head modules `convs`,
    `hidden`, `dropout` and `classifier` (the last one named like BERT's head)."""

    def __init__(self, config: WordVectorsConfig):
        super().__init__(config)
        check_head_settings(config)
        self.num_labels = config.num_labels
        self.wordvec = WordVectorsModel(config)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.cnn_channels, k, padding=k // 2)
            for k in (config.cnn_kernel_sizes if config.sentence_encoder == "cnn" else ())
        )
        self.dropout = nn.Dropout(config.classifier_dropout)
        width = config.hidden_size
        self.hidden = nn.Linear(width, config.head_hidden_size) if config.head_hidden_size > 0 else None
        self.classifier = nn.Linear(config.head_hidden_size or width, config.num_labels)
        self.post_init()

    def get_input_embeddings(self):
        return self.wordvec.embeddings

    def set_input_embeddings(self, value):
        self.wordvec.embeddings = value

    def sentence_vectors(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> torch.Tensor:
        """[batch, hidden_size]: what the MLP reads."""
        if input_ids is not None and input_ids.shape[1] == 0:  # empty texts: one pad token, all masked
            input_ids = torch.full(
                (input_ids.shape[0], 1), self.config.pad_token_id or 0, device=input_ids.device
            )
            attention_mask = torch.zeros_like(input_ids)
        hidden = self.wordvec(input_ids=input_ids, inputs_embeds=inputs_embeds).last_hidden_state
        if attention_mask is None and input_ids is not None and self.config.pad_token_id is not None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        if self.convs:
            if attention_mask is not None:  # pad positions read as zeros into the convolutions
                hidden = hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)
            length = hidden.shape[1]
            x = hidden.transpose(1, 2)
            hidden = torch.cat([torch.relu(conv(x))[..., :length] for conv in self.convs], dim=1).transpose(
                1, 2
            )
        vectors = pooled(hidden, attention_mask, self.config.pooling)
        if self.config.pooling == "max" and attention_mask is not None:  # rows with no token: zeros
            vectors = vectors * (attention_mask.sum(1, keepdim=True) > 0).to(vectors.dtype)
        return vectors

    def forward(
        self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **kwargs
    ) -> SequenceClassifierOutput:
        x = self.dropout(self.sentence_vectors(input_ids, attention_mask, inputs_embeds))
        if self.hidden is not None:
            x = self.dropout(torch.relu(self.hidden(x)))
        logits = self.classifier(x)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(WORDVEC_TYPE, WordVectorsConfig, exist_ok=True)
AutoModel.register(WordVectorsConfig, WordVectorsModel, exist_ok=True)
AutoModelForSequenceClassification.register(
    WordVectorsConfig, WordVectorsForSequenceClassification, exist_ok=True
)
