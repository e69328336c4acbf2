"""The docs against the code: every recipe, shipped config and `nlptransfer` subcommand is in docs/cli.md (and
README's tables), nothing there that the code lacks, and every flag docs/cli.md names is one the code accepts.
The lists come from the code (recipe discovery, the shipped configs, the CLI's subparsers), so a new recipe or
subcommand fails here until it is documented."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

from nlptransfer import cli
from nlptransfer.cli.run import recipe_names, shipped_configs

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """Every `nlptransfer <name>` the console script accepts, from its own parser."""
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _recipe_rows(text: str) -> dict[str, str]:
    """docs/cli.md's recipe table: recipe -> its row."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", text, flags=re.M)}


def test_the_code_has_recipes_and_subcommands():
    assert len(recipe_names()) >= 7 and {"run", "list", "predict"} <= set(_subcommands())


def test_every_recipe_and_shipped_config_is_in_the_cli_doc():
    rows = _recipe_rows(CLI_DOC)
    assert set(rows) == set(recipe_names())  # none missing, none that no longer exists
    for key in shipped_configs():
        recipe, name = key.split("/")
        if recipe in rows:  # recipes/accelerate/ holds `accelerate launch` configs, not a recipe's
            assert f"`{name}`" in rows[recipe], f"docs/cli.md: {key} missing from the {recipe} row"


def test_every_recipe_is_in_the_readme():
    listed = set(re.findall(r"python -m nlptransfer\.recipes\.(\w+)", README))
    assert set(recipe_names()) <= listed, sorted(set(recipe_names()) - listed)


def test_every_subcommand_has_a_section_in_the_cli_doc_and_a_row_in_the_readme():
    names = set(_subcommands())
    sections = set(re.findall(r"^## `nlptransfer (\w+)", CLI_DOC, flags=re.M))
    assert sections == names, f"missing: {sorted(names - sections)}, stale: {sorted(sections - names)}"
    rows = set(re.findall(r"^\| `nlptransfer (\w+)", README, flags=re.M))
    assert rows == names, f"missing: {sorted(names - rows)}, stale: {sorted(rows - names)}"


def _accepted_flags() -> set[str]:
    flags = set(cli.make_parser()._option_string_actions) | {"--debug"}
    for parser in _subcommands().values():
        flags |= set(parser._option_string_actions)
    for recipe in recipe_names():
        parser = importlib.import_module(f"nlptransfer.recipes.{recipe}").make_parser()
        parser.show_all()
        flags |= set(parser._option_string_actions)
    return flags


def test_every_flag_the_cli_doc_names_exists():
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_]*(?:-[a-z0-9_]+)*", CLI_DOC))
    unknown = named - _accepted_flags()
    assert not unknown, f"docs/cli.md names flags the code does not accept: {sorted(unknown)}"
    assert "--help_all" in named  # the recipes' full option list is documented
