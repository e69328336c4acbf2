"""The YAML + CLI parser shared by every recipe (`RecipeParser`), and where the shipped YAMLs live.

YAML is the only source of defaults. A recipe builds a `RecipeParser` over its dataclasses naming its
default YAML (`RecipeParser([...], defaults="sentiment/minilm_full.yaml")`, a file of the shipped configs
folder, `configs_dir()`): that file is what the recipe runs with no arguments. `--config FILE` (or
`--config=FILE`, once) overrides it, command-line flags override both, and an unknown key (in a YAML or on
the command line) fails naming the nearest valid key. `--help` lists the recipe's own options, one group per
dataclass, then the commonest training options (`COMMON_TRAINING`); `--help_all` lists every option, the
whole of transformers' `TrainingArguments` included.

The argument dataclasses live in `nlptransfer.config`, which re-exports this module's public names.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from nlptransfer.config_values import field_types, finite_float, yaml_value
from nlptransfer.errors import ConfigError, first_line
from nlptransfer.help_cache import help_request, store_help
from nlptransfer.paths import expand_user


def configs_dir() -> Path | None:
    """The folder of shipped recipe YAMLs (`<recipe>/<name>.yaml`): `nlptransfer/configs/` in an installed
    package (pyproject maps the repository's `recipes/` there), else the source checkout's `recipes/`."""
    package = Path(__file__).resolve().parent
    for path in (package / "configs", package.parent / "recipes"):
        if path.is_dir() and any(path.glob("*/*.yaml")):
            return path
    return None


def default_config(name: str) -> Path:
    """The shipped YAML `name` (e.g. "sentiment/minilm_full.yaml"); a one-line `ConfigError` if missing."""
    root = configs_dir()
    if root is None or not (root / name).is_file():
        where = root / name if root is not None else f"recipes/{name} (no shipped configs folder found)"
        raise ConfigError(
            f"the recipe's default settings {where} are missing; reinstall nlptransfer or run from a checkout"
        )
    return root / name


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file holding a mapping of key: value pairs (empty file: {}); one-line `ConfigError` otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"config file {str(path)!r} is not valid UTF-8 YAML ({type(err).__name__}); fix its syntax"
        ) from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of key: value pairs")
    return data


USER_SET = "_nlptransfer_user_set"
FLAG_SET = "_nlptransfer_flag_set"

# The options of transformers' TrainingArguments that a recipe's --help lists; --help_all lists the rest
# (logging, Hub, FSDP, DeepSpeed, ...). Options a trainer config of nlptransfer adds are always listed.
COMMON_TRAINING = (
    "output_dir",
    "seed",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "eval_strategy",
    "save_strategy",
    "logging_steps",
    "report_to",
    "use_cpu",
)


def user_set(config: Any) -> frozenset[str]:
    """The fields of a parsed argument dataclass that the user set with --config or a flag (empty for one
    built in code): a recipe may then adapt a default (e.g. clamp --max_length) but never a user's value."""
    return getattr(config, USER_SET, frozenset())


def flag_set(config: Any) -> frozenset[str]:
    """The part of `user_set(config)` given as command-line flags (not by a --config file)."""
    return getattr(config, FLAG_SET, frozenset())


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` with YAML defaults and one-line errors.

    Precedence: dataclass defaults < the recipe's default YAML (`defaults`, a path under `configs_dir()`
    such as "sentiment/minilm_full.yaml") < `--config FILE` < command-line flags.
    """

    def __init__(self, dataclass_types, defaults: str | None = None, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # "--strat" must not silently mean "--strategy"
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("usage", "%(prog)s [--config YAML] [--option VALUE ...]")
        self.hidden: dict[argparse.Action, str] = {}  # the options only --help_all lists: their help text
        self.all_shown = False
        self.cache_help = False  # set by parse() for a bare --help / --help_all (see nlptransfer.help_cache)
        super().__init__(dataclass_types, **kwargs)
        self.recipe = defaults.split("/")[0] if defaults is not None else None
        self.defaults_file = default_config(defaults) if defaults is not None else None
        shipped = f" over the defaults in recipes/{defaults}" if defaults is not None else ""
        self.add_argument(
            "--config",
            metavar="YAML",
            default=argparse.SUPPRESS,  # read by _take_config before parsing; no "(default: None)" in --help
            help=f"YAML file of settings (e.g. recipes/<recipe>/*.yaml){shipped}; flags override it.",
        )
        self.add_argument(
            "--help_all",
            action=_HelpAll,
            help=f"List every option, the {len(self.hidden)} other TrainingArguments options included.",
        )
        for action in self._actions:
            if action.dest == "help":
                action.help = "List the recipe's options and the commonest training options."
        for action in self._actions:  # NaN / inf pass float(); no setting means them
            if action.type is float:
                action.type = finite_float
        if self.defaults_file is not None:
            self.set_defaults(**self._read_yaml(self.defaults_file))

    def _add_dataclass_arguments(self, dtype):
        """One help group per dataclass; a `TrainingArguments` subclass splits into the options nlptransfer
        adds, the commonest inherited ones (`COMMON_TRAINING`) and the rest, hidden until --help_all."""
        inherited = _library_fields(dtype)
        own = self.add_argument_group(f"{dtype.__name__}")
        common = self.add_argument_group("training options (the commonest; --help_all lists every one)")
        rest = self.add_argument_group("every other TrainingArguments option")
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            f.type = hints[f.name]  # as HfArgumentParser does: the resolved annotation
            group = own if f.name not in inherited else common if f.name in COMMON_TRAINING else rest
            added = len(self._actions)
            self._parse_dataclass_field(group, f)
            for action in self._actions[added + 1 :]:  # the --no_<name> of a bool that defaults to true
                action.help = f"Same as --{f.name} false."
            if group is rest:
                for action in self._actions[added:]:
                    self.hidden[action] = action.help
                    action.help = argparse.SUPPRESS

    def show_all(self) -> None:
        """Un-hide what only --help_all lists."""
        for action, text in self.hidden.items():
            action.help = text
        self.all_shown = True

    def print_help(self, file=None) -> None:
        text = self.format_help()
        if self.cache_help and self.recipe is not None:
            store_help(self.recipe, "help_all" if self.all_shown else "help", text)
        (file or sys.stdout).write(text)

    def error(self, message: str):  # argparse calls this on bad flags; make it a one-line ConfigError
        raise ConfigError(f"{message} (see --help)")

    def _valid_keys(self) -> list[str]:
        return [f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init]

    def _unknown(self, key: str, where: str) -> ConfigError:
        close = difflib.get_close_matches(key, self._valid_keys(), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else "see --help for the valid keys"
        return ConfigError(f"unknown config key {key!r} in {where}; {hint}")

    def parse(self, argv: Sequence[str] | None = None) -> tuple[Any, ...]:
        """The dataclasses, in order; `user_set(obj)` names the fields of each that the user set (--config
        or a flag), as opposed to the recipe's defaults."""
        argv = list(sys.argv[1:] if argv is None else argv)
        self.cache_help = help_request(argv) is not None
        config_path, argv = _take_config(argv)
        given: set[str] = set()
        if config_path is not None:
            from_file = self._read_yaml(config_path)
            self.set_defaults(**from_file)
            given |= set(from_file)
        flags = self._flags_given(argv)
        given |= flags
        args, remaining = self.parse_known_args(argv)
        for token in remaining:
            if token.startswith("--"):
                raise self._unknown(token[2:].split("=", 1)[0], "the command line")
        if remaining:
            raise ConfigError(
                f"unexpected argument {remaining[0]!r}; flags look like --name value (see --help)"
            )
        if isinstance(getattr(args, "output_dir", None), str) and args.output_dir.startswith("~"):
            # transformers leaves an unknown ~user as it is: a folder literally named "~nouser" in the cwd
            args.output_dir = str(expand_user(args.output_dir, what=f"--output_dir {args.output_dir!r}"))
        outputs = []
        for dtype in self.dataclass_types:
            keys = {f.name for f in dataclasses.fields(dtype) if f.init}
            try:
                outputs.append(dtype(**{k: v for k, v in vars(args).items() if k in keys}))
                object.__setattr__(outputs[-1], USER_SET, frozenset(keys & given))
                object.__setattr__(outputs[-1], FLAG_SET, frozenset(keys & flags))
            except ConfigError:
                raise
            except Exception as err:  # TrainingArguments also raises OSError, KeyError, ImportError...
                raise ConfigError(f"invalid {dtype.__name__} setting: {first_line(err)}") from err
        check_conflicts(*outputs)
        return tuple(outputs)

    def _flags_given(self, argv: Sequence[str]) -> set[str]:
        """The fields named by the flags in `argv` (`--x v`, `--x=v`, `--no_x`)."""
        options = self._option_string_actions
        return {
            options[token.split("=", 1)[0]].dest
            for token in argv
            if token.startswith("--") and token.split("=", 1)[0] in options
        }

    def _read_yaml(self, path: str | Path) -> dict[str, Any]:
        data = read_yaml(path)
        valid = set(self._valid_keys())
        for key in data:
            if key not in valid:
                raise self._unknown(str(key), str(path))
        return {key: self._yaml_value(key, value, str(path)) for key, value in data.items()}

    def _yaml_value(self, key: str, value: Any, where: str) -> Any:
        action = next(a for a in self._actions if a.dest == key)
        return yaml_value(key, value, where, action, field_types(self.dataclass_types, key))


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option once (`--name VALUE`, not also `--name-with-hyphens`), its help aligned at column 34,
    the default (the recipe's YAML value) after it."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=34)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0:  # --help, --help_all, --no_<name>: no value, no default to show
            return action.help
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        if action.nargs == 0:
            return ", ".join(action.option_strings) if action.dest == "help" else action.option_strings[0]
        return f"{action.option_strings[0]} {self._format_args(action, 'VALUE')}"


class _HelpAll(argparse.Action):
    """--help_all: the help with every option, then exit (as --help does)."""

    def __init__(self, option_strings, dest, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.show_all()
        parser.print_help()
        parser.exit()


def _library_fields(dtype) -> set[str]:
    """The fields `dtype` inherits from a dataclass outside nlptransfer (transformers' TrainingArguments)."""
    for base in dtype.__mro__[1:]:
        if dataclasses.is_dataclass(base) and not base.__module__.startswith("nlptransfer"):
            return {f.name for f in dataclasses.fields(base)}
    return set()


def _take_config(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the `--config FILE` / `--config=FILE` path or None, argv without it); one `--config` at most."""
    paths, rest = [], []
    tokens = iter(argv)
    for token in tokens:
        if token == "--config":
            value = next(tokens, None)
            if value is None or value.startswith("--"):
                raise ConfigError(
                    "--config needs a YAML file path (e.g. --config recipes/sentiment/minilm_full.yaml)"
                )
            paths.append(value)
        elif token.startswith("--config="):
            paths.append(token.removeprefix("--config="))
            if not paths[-1]:
                raise ConfigError(
                    "--config= needs a YAML file path (e.g. --config=recipes/sentiment/minilm_full.yaml)"
                )
        else:
            rest.append(token)
    if len(paths) > 1:
        raise ConfigError(
            f"--config given {len(paths)} times ({', '.join(paths)}); pass one YAML file and override "
            "single settings with flags"
        )
    return (paths[0] if paths else None), rest


#: CompareArguments' fields that only `--compare true` reads: (what they do, what a plain run uses instead).
COMPARE_ONLY = {
    "train_sizes": (
        "draws a learning curve",
        "for few-shot training use --examples_per_class 8 (or --max_train_samples N)",
    ),
    "compare_strategies": ("lists the strategies compared", "for one run use --strategy"),
    "seeds": ("repeats every compared method over seeds", "for one run's seed use --seed"),
    "scratch": (
        "adds the random-initialisation baseline",
        "for one run from random init use --from_scratch true",
    ),
    "compare_adapter_lr": (
        "sets the learning rate of the compared adapters",
        "for one run use --learning_rate",
    ),
}


def check_conflicts(*configs: Any) -> None:
    """Reject option combinations that each parse but cannot work together (one line, naming the fix)."""
    # Found by their fields (the parser does not import the dataclasses of nlptransfer.config, which
    # re-exports this module): TransferArguments, CompareArguments, a fine-tuning config of nlptransfer.trainers.
    transfer = next((c for c in configs if hasattr(c, "strategy") and hasattr(c, "peft_config")), None)
    unfreezing = next(
        (c.gradual_unfreezing_steps for c in configs if hasattr(c, "gradual_unfreezing_steps")), 0
    )
    # Gradual unfreezing re-freezes layer groups of the backbone: with only a head or adapters training it
    # does nothing (frozen) or silently starves the adapters of updates (peft).
    if transfer is not None and unfreezing and transfer.strategy != "full":
        raise ConfigError(
            f"--gradual_unfreezing_steps applies to --strategy full only, not {transfer.strategy!r}; "
            "drop it or use --strategy full"
        )
    compare = next((c for c in configs if hasattr(c, "compare_strategies")), None)
    # The comparison's own settings do nothing in a plain run: given as a flag without --compare true, say so
    # (not when a --config file sets them: recipes/sentiment/glove_*.yaml list compare_strategies for later)
    ignored = [key for key in COMPARE_ONLY if compare is not None and key in flag_set(compare)]
    if ignored and not compare.compare:
        what, instead = COMPARE_ONLY[ignored[0]]
        raise ConfigError(
            f"--{ignored[0]} {what} with --compare true and does nothing without it; add --compare true, or "
            f"{instead}"
        )
    if compare is not None and compare.compare and "peft" in compare.compare_strategies:
        if transfer is None or not transfer.peft_config:
            raise ConfigError(
                "--compare_strategies peft needs the method: add --strategy peft --peft_config FILE"
            )
