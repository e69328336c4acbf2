"""A recipe's --help: its own options grouped first, then the commonest training options, not the 100+ other
TrainingArguments (Hub, FSDP, DeepSpeed...); --help_all lists every option."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest
from transformers import Seq2SeqTrainingArguments, TrainingArguments

from nlptransfer import cli
from nlptransfer.cli.run import recipe_names
from nlptransfer.config_parser import COMMON_TRAINING

RECIPES = recipe_names()


def _help(recipe: str, flag: str, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.cli(["run", recipe, flag])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def _options(text: str) -> set[str]:
    """The options the help lists (each at the start of its line)."""
    return set(re.findall(r"^  (--\w+)", text, flags=re.M))


def _groups(text: str) -> list[str]:
    return re.findall(r"^(\S[^\n]*):$", text, flags=re.M)


def test_every_recipe_is_covered():
    assert len(RECIPES) >= 7 and "sentiment" in RECIPES


@pytest.mark.parametrize("recipe", RECIPES)
def test_help_lists_the_recipes_own_options_first_then_the_common_training_ones(recipe, capsys):
    text = _help(recipe, "--help", capsys)
    parser = __import__(f"nlptransfer.recipes.{recipe}", fromlist=["make_parser"]).make_parser()
    # transformers' options (Seq2SeqTrainingArguments: the translation child's base) are not the recipe's own
    inherited = {f.name for f in dataclasses.fields(Seq2SeqTrainingArguments)}
    own = {f.name for d in parser.dataclass_types for f in dataclasses.fields(d) if f.init} - inherited
    listed = _options(text)
    assert {f"--{name}" for name in own} <= listed  # every option the recipe and its trainer define
    assert {f"--{name}" for name in COMMON_TRAINING} <= listed
    for hidden in ("--push_to_hub", "--fsdp", "--deepspeed", "--hub_model_id", "--ddp_backend"):
        assert hidden not in listed, hidden
    assert "--help_all" in listed and "--config" in listed
    assert len(text.splitlines()) < 400, len(
        text.splitlines()
    )  # was 795; the own groups (few-shot, word vectors) ~250
    assert "--model-name-or-path" not in text and "--learning-rate" not in text  # each option once
    groups = _groups(text)
    training = "training options (the commonest; --help_all lists every one)"
    assert groups[-1] == training  # the recipe's dataclasses first, in the order it parses them
    assert groups[1:-1] == [d.__name__ for d in parser.dataclass_types]
    assert "(default: None)" not in text.split("\n\n")[2]  # --config: no default to show


def test_help_shows_the_recipes_yaml_defaults(capsys):
    text = _help("sentiment", "--help", capsys)
    assert re.search(r"--output_dir VALUE\s+.*?\(default:\s+outputs/sentiment-minilm-full\)", text, re.S)


@pytest.mark.parametrize("recipe", ["sentiment", "translation_pair"])
def test_help_all_lists_every_training_argument(recipe, capsys):
    text = _help(recipe, "--help_all", capsys)
    listed = _options(text)
    every = {f"--{f.name}" for f in dataclasses.fields(TrainingArguments) if f.init}
    assert every <= listed, sorted(every - listed)[:5]
    assert len(text.splitlines()) > len(_help(recipe, "--help", capsys).splitlines()) + 300


def test_module_help_is_the_same(capsys):
    from nlptransfer.recipes import sentiment

    with pytest.raises(SystemExit):
        sentiment.main(["--help"])
    assert capsys.readouterr().out == _help("sentiment", "--help", capsys)


def test_a_flag_after_help_all_is_not_needed_to_parse(capsys):
    """--help_all is a help action, not a setting: a normal parse does not carry it."""
    from nlptransfer.recipes import sentiment

    parsed = sentiment.make_parser().parse(["--max_steps", "3"])
    assert parsed[-1].max_steps == 3
    assert not any(hasattr(obj, "help_all") or hasattr(obj, "config") for obj in parsed)


def _module_help(cache, *flags: str, importtime: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "NLPTRANSFER_CACHE": str(cache), "COLUMNS": "100"}
    python = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    return subprocess.run(
        [*python, "-m", "nlptransfer.recipes.sentiment", *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_second_help_imports_no_torch_and_prints_the_same(tmp_path):
    first = _module_help(tmp_path, "--help")
    assert first.returncode == 0 and "ModelArguments:" in first.stdout
    again = _module_help(tmp_path, "--help", importtime=True)
    assert again.returncode == 0 and again.stdout == first.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines() if "|" in line}
    assert not {"torch", "transformers", "datasets", "peft"} & imported
    # --help_all is its own text; --config FILE --help shows that file's values: never from the cache
    assert _module_help(tmp_path, "--help_all").stdout.count("\n") > first.stdout.count("\n") + 300
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output_dir: outputs/from-my-config\n", encoding="utf-8")
    assert "outputs/from-my-config" in _module_help(tmp_path, "--config", str(cfg), "--help").stdout
