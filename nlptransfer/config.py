"""The argument dataclasses shared by every recipe.

The parser over them (`RecipeParser`: YAML defaults < --config < flags, one-line errors) and the shipped
YAMLs (`configs_dir`, `default_config`, `read_yaml`, `user_set`, `flag_set`) live in
`nlptransfer.config_parser`; they are re-exported here, so `from nlptransfer.config import RecipeParser` works.

The trainer configs (`TransferTrainingArguments` and the others) live beside their trainers in
`nlptransfer/trainers/<method>/config.py`; they build on `RunArguments`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainingArguments

from nlptransfer.config_parser import USER_SET as USER_SET
from nlptransfer.config_parser import RecipeParser as RecipeParser
from nlptransfer.config_parser import check_conflicts as check_conflicts
from nlptransfer.config_parser import configs_dir as configs_dir
from nlptransfer.config_parser import default_config as default_config
from nlptransfer.config_parser import flag_set as flag_set
from nlptransfer.config_parser import read_yaml as read_yaml
from nlptransfer.config_parser import user_set as user_set
from nlptransfer.config_training import check_training_settings
from nlptransfer.errors import ConfigError
from nlptransfer.strategies import STRATEGIES, strategy_help

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
POOLINGS = ("auto", "pooler", "cls", "mean", "max")


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "Hub id or local directory. 'sentence-transformers/all-MiniLM-L6-v2' resolves to the "
            "embedded offline copy."
        },
    )
    max_length: int = field(default=128, metadata={"help": "Truncate inputs to this many tokens."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from the model repository to run. Off unless you ask."}
    )
    from_scratch: bool = field(
        default=False,
        metadata={"help": "Same architecture, random initialisation (the no-transfer control)."},
    )
    allow_pickle: bool = field(
        default=False,
        metadata={
            "help": "Allow loading pickled PyTorch weights (pytorch_model.bin), which can run arbitrary code "
            "when unpickled. Off: only safetensors weights load."
        },
    )
    pooling: str = field(
        default="auto",
        metadata={
            "help": "What every head reads: pooler (the model's own transformers head, BERT's pretrained "
            "pooler), cls (first token), mean or max (over the attention mask); auto: the checkpoint's "
            "sentence-transformers pooling if it has one, else pooler when it has a pretrained pooler, else "
            "mean (resolved once per run, recorded in config.yaml).",
            "choices": list(POOLINGS),
        },
    )

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)} (--pooling)"
            )
        if self.max_length < 8:
            raise ConfigError(
                f"max_length={self.max_length} is too small; use at least 8 (e.g. --max_length 128)"
            )


@dataclass
class DataArguments:
    dataset: str = field(
        default="vader-movies",
        metadata={
            "help": "Training data: an embedded name (e.g. vader-movies), a local .csv/.tsv/.json/.jsonl/"
            ".parquet/.txt file or folder, or a Hub id when online."
        },
    )
    eval_datasets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra datasets whose test split is scored too (cross-domain transfer); 'none' for none. "
            "Per entry: FILE:text=COL,label=COL,split=all|test (docs/evaluation.md)."
        },
    )
    eval_files: list[str] = field(
        default_factory=list,
        metadata={"help": "Labelled files scored whole (every row), e.g. a.csv b.csv:text=body,label=stars."},
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the input text."})
    label_column: str = field(default="label", metadata={"help": "Column holding the label."})
    validation_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Fraction of the training split held out for validation when the source has none "
            "(default: the dataset's protocol; 0.1 for local files)."
        },
    )
    test_fraction: float | None = field(
        default=None,
        metadata={
            "help": "Fraction held out for test when the source has no test split (default: the dataset's "
            "protocol: VADER 0.5 as in the paper, PubMed 0.2, local files 0.2)."
        },
    )
    normalize_labels: bool = field(
        default=False,
        metadata={
            "help": "Strip surrounding whitespace and casefold string labels, so 'Positive' and 'positive ' "
            "are one class. Off: such labels stay separate classes, with a warning naming them."
        },
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/validation/test split."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training examples (seeded subsample)."}
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Evaluate on at most this many examples per split (seeded subsample)."},
    )

    def __post_init__(self):
        if self.split_seed < 0:
            raise ConfigError(f"split_seed={self.split_seed} must be >= 0 (e.g. --split_seed 42)")
        if [d.lower() for d in self.eval_datasets] == ["none"]:
            self.eval_datasets = []
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"{name}={value} must be between 0 and 1 (e.g. --{name} 0.1)")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be a positive number of examples, or left unset")


@dataclass
class TransferArguments:
    strategy: str = field(
        default="full",
        metadata={
            "help": strategy_help(),
            "choices": list(STRATEGIES),
        },
    )
    target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": "Modules that get adapters (lora, dora, ia3, loha, lokr, vera, ln_tuning). Default: "
            "peft's choice for the architecture (ln_tuning: every LayerNorm)."
        },
    )
    peft_config: str | None = field(
        default=None,
        metadata={
            "help": "--strategy peft: a YAML/JSON file holding any peft config, e.g. {peft_type: LORA, r: 4, "
            "target_modules: [query, value]}; the task type is set by the recipe."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank: higher = more capacity, more parameters."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA input."})
    num_virtual_tokens: int = field(
        default=20, metadata={"help": "Virtual tokens of prompt_tuning / prefix_tuning."}
    )
    cache_features: bool = field(
        default=True,
        metadata={
            "help": "frozen: compute the frozen backbone's features once (cached on disk, keyed by model + "
            "data + pooling) and train the head on them; false runs the backbone every step."
        },
    )
    merge_adapters: bool = field(
        default=True,
        metadata={
            "help": "Strategies that merge (lora, dora, ia3, loha, lokr, vera): write the adapter merged into a plain transformers model at the top of "
            "output_dir (what pipeline() loads); the PEFT-format adapter is always saved in adapter/. "
            "false: only the adapter is written (small). Ignored by other strategies."
        },
    )

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)} (--strategy)"
            )
        if self.lora_r < 1:
            raise ConfigError(f"lora_r={self.lora_r} must be >= 1 (e.g. --lora_r 8)")
        if self.strategy == "peft" and not self.peft_config:
            raise ConfigError("--strategy peft needs --peft_config FILE (a YAML/JSON peft config)")
        if self.peft_config and self.strategy != "peft":
            raise ConfigError(
                f"--peft_config applies to --strategy peft, not {self.strategy!r}; add --strategy peft or "
                "drop --peft_config"
            )


@dataclass
class CompareArguments:
    compare: bool = field(
        default=False,
        metadata={
            "help": "Did transfer help? Train and test, on the same splits and seeds: TF-IDF + logistic "
            "regression, the same architecture from random init, and the pretrained model with each of "
            "--compare_strategies. Writes comparison.md/.csv/.png."
        },
    )
    compare_strategies: list[str] = field(
        default_factory=lambda: ["frozen", "lora", "full"],
        metadata={"help": "Transfer strategies to compare against the target-only baselines."},
    )
    seeds: int = field(default=3, metadata={"help": "Number of seeds per method (mean +- std over them)."})
    train_sizes: str = field(
        default="all",
        metadata={
            "help": "Comma-separated training-set sizes for a data-efficiency curve, e.g. 50,200,1000,all; "
            "or examples per class (single-label), e.g. 8/class,16/class,32/class."
        },
    )
    scratch: bool = field(
        default=True, metadata={"help": "Include the random-initialisation (no transfer) neural baseline."}
    )
    compare_adapter_lr: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of every compared strategy but full in --compare. Unset: each strategy's "
            "own default (recipes/strategy_defaults.yaml), as a single run with that --strategy takes; "
            "full and scratch use --learning_rate."
        },
    )
    hpo_trials: int | None = field(
        default=None,
        metadata={
            "help": "Hyperparameter search: N optuna trials (Trainer.hyperparameter_search, TPE seeded with "
            "--seed, median pruning on the validation metric); the best trial's settings then train the run. "
            "Writes hpo_trials.csv/.png. Unset: no search."
        },
    )
    hpo_space: dict | str | None = field(
        default=None,
        metadata={
            "help": "--hpo_trials: the search space, param: {type: float|int|categorical, low, high, log, "
            "choices} (a YAML mapping in --config, JSON text or a YAML file); unset: the strategy's space in "
            "recipes/hpo_space.yaml."
        },
    )

    def __post_init__(self):
        if self.hpo_trials is not None and not 1 <= self.hpo_trials <= 1000:
            raise ConfigError(
                f"hpo_trials={self.hpo_trials} must be between 1 and 1000 (e.g. --hpo_trials 20), or left unset"
            )
        bad = [s for s in self.compare_strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(
                f"unknown --compare_strategies {', '.join(bad)}; choose from {', '.join(STRATEGIES)}"
            )
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1 (3 or more give a noise estimate)")


@dataclass
class RunArguments(TrainingArguments):
    """`TrainingArguments` plus the run control every recipe honours (reusing an output directory, resuming).

    The base of every trainer config in `nlptransfer.trainers`, and the training arguments of a recipe that
    trains with a plain `Trainer` (domain_pretraining).
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow writing into an output directory that holds a previous run. Only files this "
            "tool wrote are replaced; nothing else is deleted."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue an interrupted run: if output_dir holds an unfinished run (run.json status "
            "'running') with checkpoint-* folders (--save_strategy steps|epoch), training resumes from the "
            "last complete checkpoint (weights, optimizer, scheduler, RNG and data order); nothing is deleted."
        },
    )
    verbose: bool = field(
        default=False,
        metadata={
            "help": "Show every library message and progress bar (dataset steps, weight loading). Off: one "
            "line per event and one progress bar for training and prediction."
        },
    )

    keep_checkpoints: bool = field(default=False, metadata={"help": "Keep checkpoint-*/ when the run ends."})

    def __post_init__(self):
        if not 0 <= self.seed < 2**32:  # torch/numpy seeds: 0 .. 2**32 - 1 (a larger one is a ValueError)
            raise ConfigError(f"seed={self.seed} must be between 0 and 2**32 - 1 (e.g. --seed 42)")
        if self.output_dir is not None and not str(self.output_dir).strip():  # '' would be the working dir
            raise ConfigError("output_dir is empty; pass the run's folder, e.g. --output_dir outputs/my-run")
        if self.save_on_each_node:
            # RunWriter writes on the global main process only (the Trainer's default `should_save`); with
            # this flag the Trainer would also save checkpoints on every other machine's first process:
            # racing writes into a shared output_dir, or checkpoints without run.json on a local one.
            raise ConfigError(
                "--save_on_each_node is not supported: the global main process (process 0 on machine 0) "
                "writes the run's files and checkpoints into one --output_dir; drop the flag and put "
                "--output_dir on a filesystem every machine sees"
            )
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError(
                f"num_train_epochs={self.num_train_epochs} trains nothing; pass --num_train_epochs > 0 "
                "or --max_steps > 0"
            )
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1 (e.g. --{name} 8)")
        for name in ("logging_steps", "save_steps", "eval_steps", "warmup_steps"):
            if getattr(self, name, None) is not None and getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0 (e.g. --{name} 50)")
        super().__post_init__()
        if self.dataloader_pin_memory and not accelerator_available():
            self.dataloader_pin_memory = False  # pinning needs an accelerator; torch warned every epoch
        check_training_settings(self)  # what the Trainer, DataLoader or torch.compile reject only mid-run


def accelerator_available() -> bool:
    """A GPU (or other torch accelerator) is present."""
    return torch.accelerator.is_available()


def config_to_dict(*configs: Any) -> dict[str, Any]:
    """All fields of the given argument dataclasses as one plain, YAML-serialisable dict."""
    out: dict[str, Any] = {}
    for cfg in configs:
        values = cfg.to_dict() if isinstance(cfg, TrainingArguments) else dataclasses.asdict(cfg)
        out.update(json.loads(json.dumps(values, default=str)))
    return out
