"""Sentence pooling for every head nlptransfer builds: `--pooling`, `auto`, building pooled classifiers.

Poolings (`--pooling`, `ModelArguments.pooling`):
- `pooler`: the model's own transformers classification head (for BERT-family models: [CLS] -> the
  pretrained pooler's dense + tanh). The saved model is a plain `AutoModelForSequenceClassification`.
- `cls`: the first attended token's last hidden state; `mean` / `max`: the attention-masked mean / max of
  the last hidden states (`losses.pooled`, the one pooling function). These heads use
  `PooledForSequenceClassification` (model_type `nlptransfer_pooled`, defined in `nlptransfer.pooled`),
  registered with the transformers Auto classes by `import nlptransfer` (then `pipeline(...)` loads it), so
  saved models load with plain transformers and without `trust_remote_code`.
- `auto` (`resolve_pooling`), decided once per run from files only (never the network):
  1. a sentence-transformers checkpoint (`modules.json` naming a Pooling module, e.g. `1_Pooling/config.json`):
     for `--strategy full` on a checkpoint that has pooler weights, the pooler (it trains; the output stays
     a plain transformers model); for every other strategy its pooling mode (`pooling_mode_mean_tokens` -> mean, `_cls_token` -> cls, `_max_tokens` -> max; with
     several modes on, mean > cls > max, since one head reads one vector);
  2. a saved `nlptransfer_pooled` classifier: the pooling it was trained with; a word-vector checkpoint
     (`nlptransfer_wordvec`): the pooling in its config (mean unless trained with max);
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

from transformers import PreTrainedModel

from nlptransfer.config import POOLINGS
from nlptransfer.errors import ConfigError
from nlptransfer.paths import expand_user
from nlptransfer.pooled import (
    MODEL_TYPE,
    PooledConfig,
    PooledForSequenceClassification,
    classification_loss,
    pool,
)
from nlptransfer.wordvec import WORDVEC_TYPE

logger = logging.getLogger("nlptransfer")

#: Strategies for which `auto` keeps a checkpoint's pretrained pooler even when its sentence-transformers
#: config says otherwise: full fine-tuning trains the pooler too, and its output is a plain transformers model
#: that `pipeline()` loads without nlptransfer. The head-only and adapter strategies leave the pooler as it
#: was pretrained (for all-MiniLM-L6-v2: never trained for its embeddings), so they read the mean.
FULL_KEEPS_POOLER = ("full",)

__all__ = [
    "MODEL_TYPE",
    "PooledConfig",
    "PooledForSequenceClassification",
    "check_pooling",
    "classification_loss",
    "feature_pooling",
    "model_pooling",
    "pool",
    "pooled_classifier",
    "resolve_pooling",
    "resolve_run_pooling",
]


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)} (--pooling)")


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
    model.freeze_unused_pooler()
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
    from safetensors import SafetensorError, safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                if any("pooler.dense" in key for key in f.keys()):
                    return True
        except (OSError, ValueError, RuntimeError, SafetensorError):
            return None  # unreadable weights: the loader reports them in one line
    return False


def _local_folder(name: str) -> Path | None:
    folder = expand_user(name)
    if folder.is_dir():
        return folder
    try:  # a Hub id already in the local cache: read its files there, never download
        from huggingface_hub import try_to_load_from_cache

        config = try_to_load_from_cache(name, "config.json")
    except (ImportError, ValueError, OSError):
        return None
    return Path(config).parent if isinstance(config, str) else None


def resolve_pooling(name_or_path: str, pooling: str = "auto", strategy: str | None = None) -> tuple[str, str]:
    """(pooling, why): `pooling` unless it is "auto", which is decided as the module docstring says.

    `name_or_path` is the model as resolved (an embedded alias already mapped to its folder); `strategy`
    the transfer strategy the head is built for (`full` keeps a pretrained pooler, see `FULL_KEEPS_POOLER`)."""
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
    if mode is not None and strategy in FULL_KEEPS_POOLER and _has_pooler(folder):
        return "pooler", (
            f"--strategy {strategy} trains the checkpoint's pooler with everything else, and the saved model "
            "stays a plain transformers classifier (measured: README, Transfer strategies)"
        )
    if mode is not None:
        return mode, "the checkpoint's sentence-transformers pooling config"
    config = _read_json(folder / "config.json")
    if (
        isinstance(config, dict)
        and config.get("model_type") in (MODEL_TYPE, WORDVEC_TYPE)
        and config.get("pooling") in POOLINGS
    ):
        return config["pooling"], "the pooling this classifier was trained with"
    has_pooler = _has_pooler(folder)
    if has_pooler:
        return "pooler", "a plain transformers checkpoint with a pretrained pooler"
    if has_pooler is False:
        return "mean", "the checkpoint has no pretrained pooler and no sentence-transformers config"
    return "pooler", "no safetensors weights to inspect; using the plain transformers head"


def resolve_run_pooling(model_args, strategy: str | None = None) -> str:
    """Resolve `model_args.pooling` ("auto" -> a concrete pooling for `strategy`) once at the start of a run,
    in place, so config.yaml records the value used; logs it in one line."""
    from nlptransfer import assets  # an embedded alias -> its folder, as modeling.load.resolve does

    choice, why = resolve_pooling(
        assets.resolve_model(str(model_args.model_name_or_path)), model_args.pooling, strategy
    )
    if model_args.pooling == "auto" and "not a local folder" in why:
        logger.warning("pooling: %s (%s)", choice, why)
    else:
        logger.info("pooling: %s (%s)", choice, why)
    model_args.pooling = choice
    return choice


def model_pooling(model) -> str:
    """The pooling a built classifier reads: its `nlptransfer_pooled` (or `nlptransfer_wordvec`) config's, else "pooler" (the model's
    own transformers head). Works through a peft wrapper."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) in (MODEL_TYPE, WORDVEC_TYPE):
        return config.pooling
    return "pooler"


def feature_pooling(name_or_path: str, pooling: str) -> str:
    """The pooling of sentence features that are useful before any training (domain distances, importance
    weights, transferability): the classifier's own `pooling` (resolved) unless it is the pooler, which
    full fine-tuning retrains (and all-MiniLM-L6-v2's was never trained for embeddings); then the pooling
    `auto` picks for a frozen backbone (mean for MiniLM; the pretrained pooler of a plain BERT)."""
    from nlptransfer import assets

    if pooling != "pooler":
        return pooling
    return resolve_pooling(assets.resolve_model(str(name_or_path)), "auto", "frozen")[0]
