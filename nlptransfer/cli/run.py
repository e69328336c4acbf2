"""`nlptransfer run <recipe> [flags]`: the recipes (modules of `nlptransfer.recipes`) and the shipped configs."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from nlptransfer.cli.common import PROG, CliParser, help_formatter
from nlptransfer.errors import ConfigError
from nlptransfer.help_cache import answer_help

HELP = "run a recipe (python -m nlptransfer.recipes.<recipe>)"

EXAMPLES = """examples:
  nlptransfer run sentiment
  nlptransfer run sentiment --config recipes/sentiment/minilm_lora.yaml --output_dir outputs/lora
  nlptransfer run text_classification --dataset my.csv --text_column body --label_column topic
  nlptransfer run sentiment --help        # every option of the recipe

Same as `python -m nlptransfer.recipes.<recipe> [flags]`; flags override the --config YAML."""

NO_CONFIGS = (
    "no shipped configs found (the repository's recipes/ folder, installed as nlptransfer/configs/); "
    "reinstall nlptransfer or write your own YAML"
)


def recipe_names() -> list[str]:
    """Modules of `nlptransfer.recipes` (each has `main(argv)` and `make_parser()`)."""
    import nlptransfer.recipes as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def shipped_configs() -> dict[str, Path]:
    """`<recipe>/<name>` -> YAML path."""
    # Imported when used: nlptransfer.config loads transformers, and `nlptransfer --help` should stay fast.
    from nlptransfer.config import configs_dir

    root = configs_dir()
    if root is None:
        return {}
    return {f"{p.parent.name}/{p.stem}": p for p in sorted(root.glob("*/*.yaml"))}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `run` entry of `nlptransfer --help` (the recipe parses its own flags)."""
    p.add_argument("recipe", help=f"one of: {', '.join(recipe_names())}")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="the recipe's flags")


def run_recipe(argv: list[str]) -> object:
    """`argv` after `run`: the recipe name, then the recipe's own flags (given to its `main` untouched)."""
    if not argv or argv[0] in ("-h", "--help"):
        parser = CliParser(
            prog=f"{PROG} run",
            description="Run a recipe: nlptransfer run <recipe> [--config FILE] [flags]",
            epilog=f"recipes: {', '.join(recipe_names())}\n\n" + EXAMPLES,
            formatter_class=help_formatter,
        )
        parser.add_argument("recipe", choices=recipe_names())
        parser.add_argument("flags", nargs="*", help="the recipe's flags (nlptransfer run <recipe> --help)")
        if not argv:
            parser.error("run needs a recipe name, e.g. nlptransfer run sentiment")
        parser.print_help()
        return None
    name, rest = argv[0].replace("-", "_"), argv[1:]
    names = recipe_names()
    if name not in names:
        raise ConfigError(f"unknown recipe {argv[0]!r}; available recipes: {', '.join(names)}")
    answer_help(name, rest)  # a bare --help / --help_all printed before it imports torch, once cached
    module = importlib.import_module(f"nlptransfer.recipes.{name}")
    return module.main(rest)
