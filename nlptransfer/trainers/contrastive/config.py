"""Configs of few-shot transfer: the recipes' few-shot options and `ContrastiveTrainer`'s arguments.

`FewShotArguments` is a plain dataclass of the classification recipes' parsers (sentiment,
text_classification); its defaults live in their YAML like every other option. `ContrastiveTrainingArguments`
is what `ContrastiveTrainer` takes: the fine-tuning knobs plus the number of pair iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nlptransfer.errors import ConfigError
from nlptransfer.trainers.transfer.config import FineTuningArguments

METHODS = ("finetune", "logreg", "contrastive")
CONTRASTIVE_FIELDS = ("contrastive_iterations", "contrastive_epochs", "contrastive_learning_rate")


@dataclass
class FewShotArguments:
    """How the classifier is trained from few labelled examples (any `--strategy` for finetune)."""

    method: str = field(
        default="finetune",
        metadata={
            "help": "finetune: train the model with --strategy (cross-entropy). logreg: scikit-learn logistic "
            "regression on the frozen encoder's pooled features (needs --strategy frozen). contrastive: "
            "SetFit-style contrastive fine-tuning of the encoder (--strategy full or lora) on pairs of the "
            "training examples (same label = similar), then logistic regression on the tuned embeddings. "
            "logreg and contrastive copy the regression into the classifier's linear head, so the saved "
            "model loads and predicts like any other run.",
            "choices": list(METHODS),
        },
    )
    examples_per_class: int | None = field(
        default=None,
        metadata={
            "help": "Few-shot: train on K examples of every class (stratified, drawn with --seed from the "
            "training split; replaces --max_train_samples). A class with fewer than K examples is an error."
        },
    )
    train_labels: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Train (and validate) on rows of these labels only, e.g. '--train_labels negative "
            "positive'; the model keeps every label of the dataset and is tested on all of them. Empty: all."
        },
    )
    contrastive_iterations: int = field(
        default=20,
        metadata={
            "help": "contrastive: pair iterations (SetFit's num_iterations); each iteration pairs every "
            "training example with one example of its class (label 1) and one of another class (label 0)."
        },
    )
    contrastive_epochs: float = field(
        default=1.0, metadata={"help": "contrastive: epochs over the generated pairs."}
    )
    contrastive_learning_rate: float = field(
        default=2e-5,
        metadata={
            "help": "contrastive: learning rate on the pairs (full: SetFit's 2e-5; adapters such as lora "
            "train few weights and want a larger one, e.g. 1e-3)."
        },
    )

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown method {self.method!r}; choose one of {', '.join(METHODS)} (--method)"
            )
        if self.examples_per_class is not None and self.examples_per_class < 1:
            raise ConfigError(
                f"examples_per_class={self.examples_per_class} must be a positive number of examples per "
                "class (e.g. --examples_per_class 16), or left unset for every example"
            )
        if self.contrastive_iterations < 1:
            raise ConfigError(f"contrastive_iterations={self.contrastive_iterations} must be >= 1 (e.g. 20)")
        if not self.contrastive_epochs > 0:
            raise ConfigError(f"contrastive_epochs={self.contrastive_epochs} must be > 0 (e.g. 1)")
        if not self.contrastive_learning_rate > 0:
            raise ConfigError(
                f"contrastive_learning_rate={self.contrastive_learning_rate} must be > 0 (e.g. 2e-5)"
            )
        if len(set(self.train_labels)) != len(self.train_labels):
            raise ConfigError(f"--train_labels {' '.join(self.train_labels)} names a label twice")


@dataclass
class ContrastiveTrainingArguments(FineTuningArguments):
    """`FineTuningArguments` plus the pair generation of `ContrastiveTrainer` (its loss is its own: cosine
    similarity, no class-weighted cross-entropy)."""

    contrastive_iterations: int = field(
        default=20,
        metadata={
            "help": "Pair iterations: each pairs every example with one of its class and one of another."
        },
    )

    def __post_init__(self):
        if self.contrastive_iterations < 1:
            raise ConfigError(f"contrastive_iterations={self.contrastive_iterations} must be >= 1")
        # The pair rows hold texts (tokenized per batch by the trainer's collator) and no token lengths:
        # the Trainer must keep their columns, and cannot group them by length.
        self.remove_unused_columns = False
        if self.train_sampling_strategy in ("group_by_length", "batch_rebalance"):
            self.train_sampling_strategy = "random"
        super().__post_init__()
