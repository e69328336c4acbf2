"""The domain-adaptation recipe's own arguments (`python -m nlptransfer.recipes.domain_adaptation`).

Defaults live in recipes/domain_adaptation/*.yaml; these dataclass defaults only describe the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nlptransfer.adaptation import METHODS
from nlptransfer.errors import ConfigError
from nlptransfer.self_training import ALIGNS, BALANCES, SELF_TRAINING, SOURCE_TEACHER, check_options

VADER = ["vader-movies", "vader-tweets", "vader-amazon", "vader-nyt"]


@dataclass
class DomainAdaptationArguments:
    source: str = field(
        default="vader-movies", metadata={"help": "Labelled source domain: an embedded name or a local file."}
    )
    target: str = field(
        default="vader-tweets",
        metadata={
            "help": "Target domain: its train split is used without labels, its test split for evaluation."
        },
    )
    method: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={
            "help": f"Methods to run (several allowed), any of: {', '.join(METHODS)} (none = source only).",
            "aliases": ["--methods"],
        },
    )
    matrix: bool = field(
        default=False,
        metadata={"help": "Run every ordered source->target pair of --domains (cross_domain.md/.csv/.png)."},
    )
    domains: list[str] = field(default_factory=lambda: list(VADER), metadata={"help": "Domains of --matrix."})
    seeds: int = field(default=1, metadata={"help": "Seeds per method (mean +- std over them)."})
    text_column: str = field(default="text", metadata={"help": "Text column (local files)."})
    label_column: str = field(default="label", metadata={"help": "Label column (local files)."})
    split_seed: int = field(
        default=42, metadata={"help": "Seed of each domain's train/validation/test split."}
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use at most this many source (and unlabelled target) training texts."},
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Test on at most this many target texts (seeded subsample)."}
    )
    target_labelled_samples: int = field(
        default=200,
        metadata={
            "help": "Size of the lightly labelled target sample (from the target train split) used for LogME "
            "and the target-only baseline; never used by the adaptation methods."
        },
    )
    negative_transfer_guard: bool = field(
        default=True,
        metadata={
            "help": "Also train a target-only baseline on the labelled target sample and warn when a method "
            "that used the source scores below it."
        },
    )
    distance_samples: int = field(
        default=2000, metadata={"help": "Texts per domain for the MMD / proxy A-distance estimates."}
    )
    save_models: bool = field(
        default=True,
        metadata={"help": "Single-pair runs: save each method's first-seed model under models/<method>/."},
    )

    pseudo_threshold: float | None = field(
        default=None,
        metadata={
            "help": "self_training: add a target text when the teacher's top probability is >= this (0, 1]."
        },
    )
    pseudo_top_k: int | None = field(
        default=None,
        metadata={
            "help": "self_training: at most this many pseudo-labels per class (the most confident; with "
            "--pseudo_balance equal every class gets the same number, with proportional the total is capped at "
            "this x classes)."
        },
    )
    pseudo_balance: str = field(
        default="equal",
        metadata={
            "help": "self_training: equal (the same number of pseudo-labels per class) or proportional (the "
            "teacher's own class proportions; --pseudo_top_k then caps the total at top_k x classes).",
            "choices": list(BALANCES),
        },
    )
    self_training_rounds: int = field(
        default=2, metadata={"help": "self_training: rounds of pseudo-labelling and retraining (>= 1)."}
    )
    self_training_align: str = field(
        default="none",
        metadata={
            "help": "self_training: train every round with this alignment too (none, dann, coral, mmd).",
            "choices": list(ALIGNS),
        },
    )
    teacher: str = field(
        default=SOURCE_TEACHER,
        metadata={
            "help": "self_training: who labels the target first: source (the source-trained model), a "
            "trained classifier's run directory, or lexicon (VADER's rule-based scorer, sentiment labels)."
        },
    )
    guard_seed_std: float | None = field(
        default=None,
        metadata={
            "help": "Std over seeds of macro-F1 (measured elsewhere): lets the guard judge a one-seed run "
            "(tolerance 2*sqrt(2)*std); with >= 2 seeds it uses a paired t-test instead."
        },
    )

    def __post_init__(self):
        bad = [m for m in self.method if m not in METHODS]
        if bad or not self.method:
            raise ConfigError(
                f"unknown method {', '.join(map(repr, bad)) or '(none given)'}; choose from {', '.join(METHODS)} "
                "(--method)"
            )
        repeated = next((m for m in self.method if self.method.count(m) > 1), None)
        if repeated:
            raise ConfigError(f"--method lists {repeated!r} twice; give each method once")
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1")
        if self.target_labelled_samples < 10:
            raise ConfigError(f"target_labelled_samples={self.target_labelled_samples} must be >= 10")
        if self.matrix and len(set(self.domains)) < 2:
            raise ConfigError("--matrix needs at least two --domains")
        for name, example in (("max_train_samples", 2000), ("max_eval_samples", 1000)):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(
                    f"{name}={value} must be a positive number of texts, or left unset for all "
                    f"(e.g. --{name} {example})"
                )
        if self.distance_samples < 5:  # the proxy A-distance cross-validates over 5 folds
            raise ConfigError(
                f"distance_samples={self.distance_samples} must be >= 5 (texts per domain for the MMD and "
                "the 5-fold proxy A-distance, e.g. --distance_samples 2000)"
            )
        # The ranges are checked even when self_training is not run; a rule is needed only when it is.
        check_options(
            self.pseudo_threshold,
            self.pseudo_top_k,
            self.self_training_rounds,
            self.self_training_align,
            self.pseudo_balance,
            needs_rule=SELF_TRAINING in self.method,
        )
        if SELF_TRAINING not in self.method and self.teacher not in (SOURCE_TEACHER, ""):
            raise ConfigError(f"--teacher {self.teacher} labels targets for --method self_training; add it")
        if self.guard_seed_std is not None and not 0 <= self.guard_seed_std <= 0.5:
            raise ConfigError(
                f"guard_seed_std={self.guard_seed_std} must be between 0 and 0.5 (a std over seeds of "
                "macro-F1, a score in [0, 1]; e.g. --guard_seed_std 0.01)"
            )
