"""nlptransfer: transfer learning for NLP on the Hugging Face stack.

The public API is imported lazily, so `python -m nlptransfer.assets` starts without loading torch.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Public name -> the module (under nlptransfer) that defines it; imported on first access.
_EXPORTS = {
    "AssetError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
    "NlpTransferError": "errors",
    "OutputDirError": "errors",
    "DataArguments": "config",
    "ModelArguments": "config",
    "RecipeParser": "config",
    "RunArguments": "config",
    "TransferArguments": "config",
    "TransferTrainer": "trainers.transfer",
    "TransferTrainingArguments": "trainers.transfer",
    "TranslationTransferTrainer": "trainers.translation",
    "TranslationTrainingArguments": "trainers.translation",
    "MultiTaskTrainer": "trainers.multitask",
    "MultiTaskTrainingArguments": "trainers.multitask",
    "DistillationTrainer": "trainers.distillation",
    "DistillationTrainingArguments": "trainers.distillation",
    "ContrastiveTrainer": "trainers.contrastive",
    "ContrastiveTrainingArguments": "trainers.contrastive",
    "DomainAdversarialConfig": "trainers.adaptation",
    "DomainAdversarialTrainer": "trainers.adaptation",
    "FeatureAlignmentConfig": "trainers.adaptation",
    "FeatureAlignmentTrainer": "trainers.adaptation",
    "ImportanceWeightedTrainer": "trainers.adaptation",
    "ImportanceWeightingConfig": "trainers.adaptation",
    "MultiTaskModel": "modeling.multitask",
    "load_source": "data",
    "extend_vocabulary": "embeddings",
    "mine_domain_vocabulary": "embeddings",
    "tokenizer_fertility": "embeddings",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'nlptransfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


# ----------------------------------------------------------------------------------------------
# The pooled classifier architecture (`nlptransfer.pooled`, model_type "nlptransfer_pooled") is registered
# with the transformers Auto classes as soon as both nlptransfer and transformers are imported, in either
# order, so `import nlptransfer` + `pipeline("text-classification", model=dir)` loads it (no remote code)
# while `python -m nlptransfer.assets` still starts without importing torch.


def _register_pooled() -> None:
    importlib.import_module(".pooled", __name__)
    importlib.import_module(
        ".wordvec", __name__
    )  # the word-vector classifier (model_type nlptransfer_wordvec)


class _AfterTransformers(importlib.abc.MetaPathFinder):
    """Registers the pooled architecture right after `transformers` itself is first imported."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "transformers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _register_pooled()

        spec.loader.exec_module = exec_module
        return spec


if "transformers" in sys.modules:
    _register_pooled()
elif not any(isinstance(f, _AfterTransformers) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterTransformers())
