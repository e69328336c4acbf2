"""Config parsing: every shipped YAML parses, defaults < YAML < CLI, unknown keys name the nearest key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nlptransfer import ConfigError, TransferTrainingArguments
from nlptransfer.recipes import (
    distill,
    domain_adaptation,
    domain_pretraining,
    multitask,
    sentiment,
    text_classification,
    translation_pair,
)

ROOT = Path(__file__).resolve().parents[1]
# recipes/accelerate/ holds `accelerate launch` configs, loaded by accelerate in test_reliability.py.
YAMLS = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if p.parent.name != "accelerate")
RECIPE_PARSERS = {
    "sentiment": sentiment.make_parser,
    "text_classification": text_classification.make_parser,
    "translation_pair": translation_pair.make_parser,
    "domain_pretraining": domain_pretraining.make_parser,
    "domain_adaptation": domain_adaptation.make_parser,
    "multitask": multitask.make_parser,
    "distill": distill.make_parser,
}
# Where each recipe's arguments name its data: dataset, the translation child pair, the DAPT corpus,
# the adaptation source, the multi-task task list.
SOURCE_FIELDS = ("dataset", "child_dataset", "corpus", "source", "tasks")
DEFAULT_YAMLS = {
    sentiment: "recipes/sentiment/minilm_full.yaml",
    text_classification: "recipes/text_classification/minilm_pubmed_pubtype.yaml",
    translation_pair: "recipes/translation_pair/marian_es_it_en.yaml",
    domain_pretraining: "recipes/domain_pretraining/minilm_pubmed_dapt.yaml",
    domain_adaptation: "recipes/domain_adaptation/minilm_frozen.yaml",
    multitask: "recipes/multitask/minilm_vader.yaml",
    distill: "recipes/distill/minilm_vader.yaml",
}


def test_there_are_yamls_for_each_strategy():
    names = {p.stem for p in (ROOT / "recipes" / "sentiment").glob("*.yaml")}
    assert {"minilm_full", "minilm_lora", "minilm_frozen"} <= names


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_parses(path):
    recipe = path.parent.name
    assert recipe in RECIPE_PARSERS, f"recipes/{recipe}/ has no recipe parser in this test"
    header = path.read_text(encoding="utf-8").splitlines()[:6]
    assert any(f"nlptransfer.recipes.{recipe}" in line for line in header), (
        "YAML header must show its command"
    )
    parsed = RECIPE_PARSERS[recipe]().parse(["--config", str(path)])
    # Any of the parsed dataclasses may hold the data source and the strategy (recipes group them differently).
    fields = {name: value for obj in parsed for name, value in vars(obj).items()}
    source = next((fields[k] for k in SOURCE_FIELDS if fields.get(k)), None)
    assert parsed[-1].output_dir and source, f"no output_dir or data source ({SOURCE_FIELDS}) in {path}"
    assert fields.get("strategy", "full") in {"full", "frozen", "lora", "ia3"}


@pytest.mark.parametrize("recipe", list(DEFAULT_YAMLS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_no_argument_defaults_match_the_default_yaml(recipe):
    default = recipe.make_parser().parse([])
    from_yaml = recipe.make_parser().parse(["--config", str(ROOT / DEFAULT_YAMLS[recipe])])
    for a, b in zip(default, from_yaml, strict=True):
        if isinstance(a, TransferTrainingArguments):
            a, b = a.to_dict(), b.to_dict()
        assert a == b


def test_cli_overrides_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategy: lora\nlora_r: 4\nlearning_rate: 1.0e-3\n", encoding="utf-8")
    _, _, transfer, _, training = sentiment.make_parser().parse(["--config", str(cfg), "--lora_r", "16"])
    assert transfer.strategy == "lora" and transfer.lora_r == 16 and training.learning_rate == 1e-3


@pytest.mark.parametrize(
    ("yaml_text", "argv", "match"),
    [
        ("stratgy: lora\n", [], "unknown config key 'stratgy'.*did you mean 'strategy'"),
        ("", ["--learning_rat", "1e-3"], "unknown config key 'learning_rat'.*did you mean 'learning_rate'"),
        ("", ["--strat", "full"], "did you mean 'strategy'"),  # no silent abbreviations
        ("strategy: bitfit\n", [], "unknown strategy 'bitfit'; choose one of full, frozen"),
        ("", ["--strategy", "bitfit"], "invalid choice: 'bitfit'"),
        ("", ["--learning_rate", "fast"], "invalid float value: 'fast'"),
        ("- a\n- b\n", [], "must hold a mapping"),
        ("", ["--layerwise_lr_decay", "1.5"], r"layerwise_lr_decay=1.5 must be in \(0, 1\]"),
        ("", ["--validation_fraction", "0"], "validation_fraction=0.0 must be between 0 and 1"),
    ],
)
def test_bad_config(tmp_path, yaml_text, argv, match):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as err:
        sentiment.make_parser().parse(["--config", str(cfg), *argv])
    assert "\n" not in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found; pass an existing YAML"):
        sentiment.make_parser().parse(["--config", str(tmp_path / "nope.yaml")])


def test_help_documents_every_field(capsys):
    parser = sentiment.make_parser()
    for dtype in parser.dataclass_types:
        own = {f.name for f in dataclasses.fields(dtype)}
        if dtype is TransferTrainingArguments:  # only our additions; the rest is transformers' own help
            own -= {f.name for f in dataclasses.fields(dtype.__mro__[1])}
        for f in dataclasses.fields(dtype):
            if f.name in own:
                assert f.metadata.get("help"), f"{dtype.__name__}.{f.name} has no help text"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in (
        "--strategy",
        "--layerwise_lr_decay",
        "--gradual_unfreezing_steps",
        "--text_column",
        "--config",
    ):
        assert name in out
