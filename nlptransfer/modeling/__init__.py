"""Models: loading (`load`: THE one from_pretrained path), classifiers (`classifier`: build, transfer
strategy, save, load a fine-tuned one), pooling (`pooling`: --pooling, `auto`, the pooled architecture), seq2seq (`seq2seq`) and multi-task (`multitask`) models.

The names most callers need are re-exported here: `from nlptransfer.modeling import build_classifier`.
"""

from nlptransfer.modeling.adapters import apply_strategy, check_targets, head_parameter_names
from nlptransfer.modeling.classifier import (
    build_classifier,
    count_parameters,
    load_classifier,
    load_trained_classifier,
    save_classifier,
)
from nlptransfer.modeling.load import (
    check_max_length,
    fit_max_length,
    load_config,
    load_model,
    load_peft_model,
    load_tokenizer,
    position_limit,
    resolve,
)
from nlptransfer.modeling.pooling import (
    PooledConfig,
    PooledForSequenceClassification,
    resolve_pooling,
    resolve_run_pooling,
)

__all__ = [
    "apply_strategy",
    "check_targets",
    "build_classifier",
    "count_parameters",
    "head_parameter_names",
    "load_classifier",
    "load_trained_classifier",
    "save_classifier",
    "check_max_length",
    "fit_max_length",
    "load_config",
    "load_model",
    "load_peft_model",
    "load_tokenizer",
    "position_limit",
    "resolve",
    "PooledConfig",
    "PooledForSequenceClassification",
    "resolve_pooling",
    "resolve_run_pooling",
]
