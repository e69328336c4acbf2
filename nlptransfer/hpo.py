"""Hyperparameter search of the classification recipes (`--hpo_trials N`): `Trainer.hyperparameter_search`
with optuna, then the best trial's settings train the run.

    space = check_hpo(compare_args, transfer_args, training_args, fewshot)   # None without --hpo_trials
    check_hpo_splits(splits)                                                  # a validation split to tune on
    with RunWriter.from_training_args(...) as run:
        model, record = tune(run, space, model_args, transfer_args, training_args, splits, names, tokenizer)
        fit = fit_classifier(model, ...)        # the run itself, with the best trial's settings

The space (recipes/hpo_space.yaml per strategy, or the user's `hpo_space`) maps a training option, or an
adapter option of the strategy (lora_r, lora_alpha, lora_dropout: read from the trial by the `model_init`
that builds each trial's model), to {type: float|int|categorical, low, high, log, choices}. Each trial
trains on the training split with the run's seed and reports the validation metric after each evaluation;
optuna's TPE sampler (seeded with --seed) proposes, its MedianPruner stops trials below the median.
Every trial is listed in hpo_trials.csv and drawn in hpo_trials.png.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import logging
import math
import tempfile
from typing import Any

import yaml
from datasets import DatasetDict
from transformers import set_seed

from nlptransfer.config import default_config, read_yaml, user_set
from nlptransfer.config_training import unknown_metric
from nlptransfer.config_values import field_types
from nlptransfer.errors import ConfigError, DataError, NlpTransferError, typed_first_line
from nlptransfer.features import freeze_backbone_eval
from nlptransfer.modeling import build_classifier
from nlptransfer.paths import expand_user
from nlptransfer.reporting import csv_text
from nlptransfer.reporting.figures import hpo_figure
from nlptransfer.strategies import TABLE
from nlptransfer.training import classifier_trainer, encode

logger = logging.getLogger("nlptransfer")

FILE = "hpo_space.yaml"
KINDS = ("float", "int", "categorical")
SPEC_KEYS = {"type", "low", "high", "log", "choices"}
# Training options a search must not change: where the run goes, what it is judged on, its seed.
FIXED = frozenset(
    {
        "output_dir",
        "overwrite_output_dir",
        "resume",
        "resume_from_checkpoint",
        "keep_checkpoints",
        "report_to",
        "eval_strategy",
        "save_strategy",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "seed",
        "verbose",
    }
)
SUGGESTED = ("learning_rate", "num_train_epochs", "warmup_steps", "weight_decay")
# Values torch, the DataLoader or peft reject only once a trial runs (a traceback after the output directory
# was made), or that the options' own checks refuse: each end of a range and each choice is checked first.
LIMITS = {
    "learning_rate": (lambda v: v > 0, "above 0"),
    "num_train_epochs": (lambda v: v > 0, "above 0"),
    "weight_decay": (lambda v: v >= 0, "at least 0"),
    "warmup_steps": (lambda v: v >= 0, "at least 0"),
    "adam_beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "adam_epsilon": (lambda v: v >= 0, "at least 0"),
    "per_device_train_batch_size": (lambda v: v >= 1, "at least 1"),
    "per_device_eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "gradient_accumulation_steps": (lambda v: v >= 1, "at least 1"),
    "dataloader_num_workers": (lambda v: v >= 0, "at least 0"),
    "lora_r": (lambda v: v >= 1, "at least 1"),
    "lora_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
}
INSTALL = "pip install 'nlptransfer[hpo]'"


def model_keys(strategy: str) -> list[str]:
    """The TransferArguments options of `strategy` a trial may set (lora_r, lora_alpha, ...)."""
    options = TABLE[strategy].options.values()
    return [k for k in ("lora_r", "lora_alpha", "lora_dropout") if k in options]


def check_hpo(compare_args, transfer_args, training_args, fewshot) -> dict[str, dict] | None:
    """The checked search space of `--hpo_trials` (None without it); a one-line ConfigError for options
    that cannot go with a search, a bad space, or optuna missing. Call before any work."""
    if compare_args.hpo_trials is None:
        if "hpo_space" in user_set(compare_args) and compare_args.hpo_space is not None:
            raise ConfigError("--hpo_space applies to --hpo_trials N only; add --hpo_trials or drop it")
        return None
    if compare_args.compare:
        raise ConfigError("--hpo_trials and --compare both train many models; pass one of them")
    if fewshot.method != "finetune":
        raise ConfigError(
            f"--hpo_trials tunes the fine-tuning of --strategy; --method {fewshot.method} does not use it "
            "(drop --hpo_trials or use --method finetune)"
        )
    if training_args.resume:
        raise ConfigError("--hpo_trials cannot --resume a run; drop --resume (the search starts over)")
    if training_args.world_size > 1:
        raise ConfigError("--hpo_trials runs its trials in one process; start it without accelerate launch")
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError(f"--hpo_trials needs optuna, which is not installed: {INSTALL}")
    return check_space(
        _space_source(compare_args.hpo_space, transfer_args.strategy), transfer_args, training_args
    )


def check_hpo_splits(splits) -> None:
    """A search tunes on the validation split: refuse data without one (one line)."""
    if "validation" not in splits or len(splits["validation"]) == 0:
        raise DataError(
            "--hpo_trials needs a validation split to tune on; this data has none: pass "
            "--validation_fraction 0.1 (or drop --hpo_trials)"
        )


def _space_source(value, strategy: str) -> Any:
    """The user's space (a mapping, JSON text or a YAML file), else the shipped one of `strategy`."""
    if value is None:
        spaces = read_yaml(default_config(FILE)).get("spaces") or {}
        return spaces.get(strategy, spaces.get("other"))
    if isinstance(value, dict):
        return value
    text = str(value).strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"--hpo_space is not valid JSON ({err.msg}); pass a mapping or a YAML file"
            ) from err
    path = expand_user(text, what=f"--hpo_space {text!r}")  # `hpo_space: ~/space.yaml` in a YAML config
    try:
        found = path.is_file()
    except OSError:  # e.g. a name too long for the filesystem
        found = False
    if not found:
        raise ConfigError(f"--hpo_space {text!r} is neither a YAML file nor JSON text; pass one of them")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:  # unreadable (permissions), or not YAML
        raise ConfigError(f"--hpo_space file {text!r} is not readable YAML ({type(err).__name__})") from err


def check_space(space: Any, transfer_args, training_args) -> dict[str, dict]:
    """`space` checked: every key a training option (or an adapter option of the strategy), every spec a
    valid distribution. Returns {param: spec} with defaults filled in (log false)."""
    if not isinstance(space, dict) or not space:
        raise ConfigError("hpo_space must map parameters to {type, low, high | choices}, e.g. learning_rate")
    training = {f.name for f in dataclasses.fields(training_args) if f.init} - FIXED
    adapters = model_keys(transfer_args.strategy)
    checked = {}
    for key, spec in space.items():
        key = str(key)
        if key not in training and key not in adapters:
            _key_error(key, training, adapters, transfer_args.strategy)
        checked[key] = _check_spec(key, spec)
        owner = type(transfer_args) if key in adapters else type(training_args)
        accepts, kind = field_types([owner], key), checked[key]["type"]
        wanted = {float} if kind == "float" else {int, float}
        if kind != "categorical" and accepts and not wanted & accepts:
            fix = "type: int" if int in accepts else "type: categorical with its choices"
            names = " or ".join(sorted(t.__name__ for t in accepts))
            raise ConfigError(f"hpo_space {key!r}: the option takes {names}, not {kind} values; use {fix}")
        if key in adapters:
            _check_adapter_values(key, checked[key], transfer_args, accepts)
        else:
            _check_training_values(key, checked[key], getattr(training_args, key))
    return checked


def _values(spec: dict) -> list[tuple[str, Any]]:
    """(what, value) of every value a trial may take that can be checked: the range's ends, or each choice."""
    if spec["type"] == "categorical":
        return [("choice", c) for c in spec["choices"]]
    return [("low", spec["low"]), ("high", spec["high"])]


def _check_limit(key: str, value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is not a finite number; give a number")
    if key not in LIMITS:
        return
    within, bound = LIMITS[key]
    try:
        ok = within(value)
    except TypeError:  # a string where a number belongs
        ok = False
    if not ok:
        raise ConfigError(f"{where} is out of range: {key} must be {bound}; narrow the search to such values")


def _check_training_values(key: str, spec: dict, current: Any) -> None:
    """Each value a trial may set on training option `key`, cast as the Trainer casts it (to the type of the
    option's value, a float for a float range), within LIMITS; null is never a trial's value (the Trainer's
    cast fails on it)."""
    for what, value in _values(spec):
        where = f"hpo_space {key!r}: {what} {value!r}"
        if value is None:
            raise ConfigError(
                f"hpo_space {key!r}: a {what} is null, which no trial can set (the Trainer casts each value "
                "to the option's type); list only values of the option"
            )
        cast = float if spec["type"] == "float" else type(current) if current is not None else None
        if cast is not None:
            try:
                value = cast(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{where} is not a {cast.__name__}, the option's type; list only values it takes"
                ) from None
        _check_limit(key, value, where)


def _check_adapter_values(key: str, spec: dict, transfer_args, accepts: set) -> None:
    """Each value a trial may set on adapter option `key` (lora_r, ...): of the option's type as given (the
    trial's model is built with it uncast), within LIMITS and accepted by the arguments' own checks."""
    for what, value in _values(spec):
        where = f"hpo_space {key!r}: {what} {value!r}"
        types = tuple(accepts | ({int} if float in accepts else set()))
        if isinstance(value, bool) or (types and not isinstance(value, types)):
            names = " or ".join(sorted(t.__name__ for t in accepts))
            raise ConfigError(f"{where} is not a {names}, the option's type; list only values it takes")
        _check_limit(key, value, where)
        try:
            dataclasses.replace(transfer_args, **{key: value})  # TransferArguments' own checks
        except (TypeError, ValueError) as err:  # ConfigError included
            raise ConfigError(f"{where} is refused: {err}") from None


def _key_error(key: str, training: set[str], adapters: list[str], strategy: str) -> None:
    close = difflib.get_close_matches(key, sorted(training) + adapters, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if key in ("lora_r", "lora_alpha", "lora_dropout"):
        takers = ", ".join(name for name in TABLE if key in model_keys(name))
        raise ConfigError(
            f"hpo_space key {key!r} applies to --strategy {takers}, not {strategy}; valid keys: the training "
            f"options (see --help_all), e.g. {', '.join(SUGGESTED)}"
        )
    extra = f", and for --strategy {strategy}: {', '.join(adapters)}" if adapters else ""
    if key in FIXED:
        raise ConfigError(
            f"hpo_space key {key!r} cannot be searched (the run fixes it); valid keys: the other training "
            f"options (see --help_all), e.g. {', '.join(SUGGESTED)}{extra}"
        )
    raise ConfigError(
        f"hpo_space key {key!r} is not a training argument{hint}; valid keys: the training options (see "
        f"--help_all) but the run's own (output_dir, seed, eval_strategy, ...), e.g. {', '.join(SUGGESTED)}"
        f"{extra}"
    )


def _check_spec(key: str, spec: Any) -> dict:
    where = f"hpo_space {key!r}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping like {{type: float, low: 1.0e-5, high: 1.0e-4}}")
    unknown = sorted(set(map(str, spec)) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}; use {', '.join(sorted(SPEC_KEYS))}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}: type {kind!r} is not one of {', '.join(KINDS)}")
    if kind == "categorical":
        choices = spec.get("choices")
        ok = isinstance(choices, list) and choices
        if not ok or not all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            raise ConfigError(f"{where}: categorical needs choices: a non-empty list of numbers or strings")
        return {"type": kind, "choices": list(choices)}
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    number = int if kind == "int" else int | float
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, number):
            raise ConfigError(f"{where}: {name} must be {'an integer' if kind == 'int' else 'a number'}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false")
    if low >= high:
        raise ConfigError(f"{where}: low={low} must be below high={high}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0 (low={low})")
    return {"type": kind, "low": low, "high": high, "log": log}


def suggest(trial, space: dict[str, dict]) -> dict[str, Any]:
    """The trial's value of every parameter (optuna returns the same value when asked again)."""
    out = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            out[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            out[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
        else:
            out[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=spec["log"])
    return out


def objective_metric(training_args) -> tuple[str, str]:
    """(the validation metric the search optimises, "maximize" | "minimize"): --metric_for_best_model,
    else macro-F1."""
    metric = (training_args.metric_for_best_model or "f1_macro").removeprefix("eval_")
    better = training_args.greater_is_better
    if better is None:
        better = not metric.endswith("loss")
    return metric, "maximize" if better else "minimize"


def startup_trials(n_trials: int) -> int:
    """Random trials before TPE models the results: half the search, 3 to 10 (optuna's default)."""
    return min(10, max(3, n_trials // 2))


def tune(
    run,
    space: dict[str, dict],
    model_args,
    transfer_args,
    training_args,
    splits: DatasetDict,
    label_names: list[str],
    tokenizer,
    *,
    n_trials: int,
    multilabel: bool = False,
):
    """Search, write hpo_trials.csv/.png through `run`, set the best trial's values on `training_args` and
    `transfer_args` (so the run and its config.yaml use them) and return (a fresh model built with them
    and the run's seed, `{"hpo": summary}` for metrics.json)."""
    import optuna

    metric, direction = objective_metric(training_args)
    adapters = [k for k in space if k in model_keys(transfer_args.strategy)]
    problem = "multi_label_classification" if multilabel else "single_label_classification"

    def model_init(trial=None):
        values = suggest(trial, space) if trial is not None else {}
        adapter = dataclasses.replace(transfer_args, **{k: values[k] for k in adapters if k in values})
        model = build_classifier(model_args, adapter, label_names, problem_type=problem)
        if transfer_args.strategy == "frozen":  # as fit_classifier does; trials run the backbone each step
            freeze_backbone_eval(model)
        return model

    def compute_objective(metrics: dict[str, float]) -> float:
        if f"eval_{metric}" not in metrics:
            raise unknown_metric(metric, metrics)
        return float(metrics[f"eval_{metric}"])

    if training_args.eval_strategy == "no":
        logger.warning("--eval_strategy no: each trial is scored once at its end, none is pruned")
    settings = read_yaml(default_config(FILE)).get("pruner") or {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.InMemoryStorage()
    logger.info(
        "hyperparameter search: %d trials over %s (validation %s)", n_trials, ", ".join(space), metric
    )
    subset = DatasetDict(train=splits["train"], validation=splits["validation"])
    encoded = encode(subset, tokenizer, model_args.max_length, multilabel, len(label_names))
    with tempfile.TemporaryDirectory(prefix="nlptransfer-hpo-") as work_dir:
        args = dataclasses.replace(
            training_args,
            output_dir=work_dir,
            save_strategy="no",
            load_best_model_at_end=False,
            report_to="none",
            resume_from_checkpoint=None,
        )
        for key, spec in space.items():  # the Trainer casts each value to the option's current type
            if spec["type"] == "float" and key not in adapters:
                setattr(args, key, float(getattr(args, key)))
        kwargs = {"model": None, "model_init": model_init}
        trainer = classifier_trainer(
            None, tokenizer, args, encoded, label_names, multilabel, trainer_kwargs=kwargs
        )
        quiet = QuietFailedTrials()
        optuna_log = logging.getLogger("optuna.study._optimize")
        optuna_log.addFilter(quiet)
        try:
            trainer.hyperparameter_search(
                hp_space=lambda trial: {k: v for k, v in suggest(trial, space).items() if k not in adapters},
                compute_objective=compute_objective,
                n_trials=n_trials,
                direction=direction,
                backend="optuna",
                study_name="nlptransfer",
                storage=storage,
                # TPE's default is 10 random trials first: a search of 8 would be random search only
                sampler=optuna.samplers.TPESampler(
                    seed=training_args.seed, n_startup_trials=startup_trials(n_trials)
                ),
                pruner=optuna.pruners.MedianPruner(**settings),
            )
        except NlpTransferError:
            raise
        except (TypeError, ValueError) as err:  # a value torch, the DataLoader or peft refuse mid-trial
            raise trial_failure(storage, err) from err
        finally:
            optuna_log.removeFilter(quiet)
    study = optuna.load_study(study_name="nlptransfer", storage=storage)
    rows = trial_rows(study, metric, list(space))
    run.write_text("hpo_trials.csv", csv_text(rows))
    if run.is_main:
        run.write_bytes("hpo_trials.png", hpo_figure(rows, f"validation_{metric}", direction == "maximize"))
    best = study.best_trial
    apply_params(best.params, space, transfer_args, training_args, adapters)
    set_seed(training_args.seed)  # the run's model, as a run without the search builds it
    model = build_classifier(model_args, transfer_args, label_names, problem_type=problem)
    summary = {
        "trials": len(rows),
        "pruned": sum(r["state"] == "PRUNED" for r in rows),
        "metric": f"validation_{metric}",
        "direction": direction,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
    }
    logger.info(
        "best of %d trials: #%d, validation %s %.4f, %s",
        len(rows),
        best.number,
        metric,
        best.value,
        best.params,
    )
    return model, {"hpo": summary}


class QuietFailedTrials(logging.Filter):
    """Drops optuna's log of a trial that raised (its traceback, then "failed with value None"): the search
    stops there, in one line naming the trial (`trial_failure`); --debug shows the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and not record.getMessage().endswith("failed with value None.")


def trial_failure(storage, err: Exception) -> ConfigError:
    """The one line for a trial that raised (a value the space allows but the training refuses): the trial's
    number and parameters, and the first line of the error (--debug shows the traceback)."""
    import optuna

    try:
        trials = optuna.load_study(study_name="nlptransfer", storage=storage).trials
    except (KeyError, ValueError):  # the search failed before its study was made
        trials = []
    which = "the hyperparameter search"
    if trials:
        values = ", ".join(f"{k}={v!r}" for k, v in trials[-1].params.items())
        which = f"hyperparameter search trial {trials[-1].number} ({values or 'no parameters yet'})"
    first = typed_first_line(err)
    return ConfigError(
        f"{which} failed ({first[:300]}); narrow hpo_space to values the options take (--debug shows the "
        "traceback)"
    )


def trial_rows(study, metric: str, params: list[str]) -> list[dict]:
    """One row per trial: number, state (COMPLETE, PRUNED, FAIL), the validation metric (a pruned trial's
    last reported value), seconds, then each parameter."""
    rows = []
    for trial in study.trials:
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        seconds = trial.duration.total_seconds() if trial.duration is not None else None
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                f"validation_{metric}": value,
                "seconds": None if seconds is None else round(seconds, 1),
                **{name: trial.params.get(name) for name in params},
            }
        )
    return rows


def apply_params(
    params: dict[str, Any], space: dict[str, dict], transfer_args, training_args, adapters
) -> None:
    """The trial's values set on the run's arguments, cast as the trial's were: float parameters to float,
    the others to the option's type (what `Trainer.hyperparameter_search` does)."""
    for key, value in params.items():
        target = transfer_args if key in adapters else training_args
        old = getattr(target, key)
        if space[key]["type"] == "float":
            value = float(value)
        elif old is not None:
            value = type(old)(value)
        setattr(target, key, value)
