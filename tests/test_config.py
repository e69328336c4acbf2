"""Config parsing: every shipped YAML parses, each recipe's defaults are its YAML, defaults < YAML < CLI,
unknown keys name the nearest key, a trainer's config takes only the flags the trainer honours."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from transformers import TrainingArguments

from nlptransfer import ConfigError
from nlptransfer.config import config_to_dict, configs_dir
from nlptransfer.errors import run_cli
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
YAMLS = sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate")
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
    domain_pretraining: "recipes/domain_pretraining/minilm_pubmed_tapt.yaml",
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


def _recipe_id(recipe) -> str:
    return recipe.__name__.rsplit(".", 1)[-1]


def test_configs_dir_is_the_repository_recipes_folder():
    assert configs_dir() == ROOT / "recipes"


@pytest.mark.parametrize("recipe", list(DEFAULT_YAMLS), ids=_recipe_id)
def test_no_argument_run_has_the_default_yaml_values(recipe):
    parsed = config_to_dict(*recipe.make_parser().parse([]))
    values = yaml.safe_load((ROOT / DEFAULT_YAMLS[recipe]).read_text(encoding="utf-8"))
    for key, value in values.items():
        expected = [] if (key, value) == ("report_to", "none") else json.loads(json.dumps(value))
        assert parsed[key] == expected, key


@pytest.mark.parametrize("recipe", list(DEFAULT_YAMLS), ids=_recipe_id)
def test_the_parser_reads_its_default_yaml(recipe, tmp_path, monkeypatch):
    """No DEFAULTS dict: the defaults are whatever the recipe's YAML in the configs folder says."""
    name = DEFAULT_YAMLS[recipe].removeprefix("recipes/")
    edited = yaml.safe_load((ROOT / DEFAULT_YAMLS[recipe]).read_text(encoding="utf-8"))
    edited.update(output_dir=str(tmp_path / "from-the-yaml"), seed=7)
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(yaml.safe_dump(edited), encoding="utf-8")
    monkeypatch.setattr("nlptransfer.config_parser.configs_dir", lambda: tmp_path)
    training = recipe.make_parser().parse([])[-1]
    assert training.output_dir == str(tmp_path / "from-the-yaml") and training.seed == 7
    # dataclass defaults < the recipe's YAML < --config < flags
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 8\n", encoding="utf-8")
    assert recipe.make_parser().parse(["--config", str(cfg)])[-1].seed == 8
    assert recipe.make_parser().parse(["--config", str(cfg), "--seed", "9"])[-1].seed == 9


def test_missing_defaults_file_is_one_line(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "recipes" / "distill", tmp_path / "distill")  # not the sentiment defaults
    monkeypatch.setattr("nlptransfer.config_parser.configs_dir", lambda: tmp_path)
    with pytest.raises(ConfigError, match="default settings .*sentiment/minilm_full.yaml are missing") as err:
        sentiment.make_parser()
    assert "\n" not in str(err.value)


def test_config_with_equals_sign_and_only_once(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategy: lora\nlora_r: 4\n", encoding="utf-8")
    transfer = sentiment.make_parser().parse([f"--config={cfg}", "--lora_r", "16"])[2]
    assert transfer.strategy == "lora" and transfer.lora_r == 16
    with pytest.raises(ConfigError, match="--config given 2 times") as err:
        sentiment.make_parser().parse(["--config", str(cfg), f"--config={cfg}"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="--config needs a YAML file path"):
        sentiment.make_parser().parse(["--config", "--lora_r", "16"])


@pytest.mark.parametrize(
    "flag",
    ["--layerwise_lr_decay", "--gradual_unfreezing_steps", "--class_weighted_loss", "--freeze_embeddings"],
)
def test_translation_rejects_transfer_trainer_flags(flag, tmp_path, capsys):
    """TranslationTransferTrainer does not honour TransferTrainer's knobs: an unknown key, not ignored."""
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(translation_pair.main, [flag, "1", "--output_dir", str(out)])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert re.search(f"unknown config key '{flag[2:]}'", errors[0]) and not out.exists()


@pytest.mark.parametrize(
    ("recipe", "flag"),
    [
        (distill, "--class_weighted_loss"),
        (multitask, "--class_weighted_loss"),
        (domain_pretraining, "--layerwise_lr_decay"),
        (domain_pretraining, "--gradual_unfreezing_steps"),
    ],
    ids=lambda v: v if isinstance(v, str) else _recipe_id(v),
)
def test_flags_the_trainer_ignores_are_unknown_keys(recipe, flag):
    with pytest.raises(ConfigError, match=f"unknown config key '{flag[2:]}'"):
        recipe.make_parser().parse([flag, "1"])


def test_cli_overrides_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("strategy: lora\nlora_r: 4\nlearning_rate: 1.0e-3\n", encoding="utf-8")
    parsed = sentiment.make_parser().parse(["--config", str(cfg), "--lora_r", "16"])
    transfer, training = parsed[2], parsed[-1]
    assert transfer.strategy == "lora" and transfer.lora_r == 16 and training.learning_rate == 1e-3


@pytest.mark.parametrize("recipe", sorted(RECIPE_PARSERS))
def test_output_dir_under_home_is_expanded_and_an_unknown_user_is_one_line(recipe, tmp_path, monkeypatch):
    """transformers expands `~/x` but leaves `~nouser/x` as it is: a folder literally named "~nouser" in the
    working directory. Every recipe's parser expands it itself, or says in one line that it cannot."""
    monkeypatch.setenv("HOME", str(tmp_path))
    parsed = RECIPE_PARSERS[recipe]().parse(["--output_dir", "~/runs/x"])
    assert parsed[-1].output_dir == str(tmp_path / "runs" / "x")
    with pytest.raises(
        ConfigError, match=r"--output_dir '~nlptransfer-no-such-user/x': cannot expand"
    ) as err:
        RECIPE_PARSERS[recipe]().parse(["--output_dir", "~nlptransfer-no-such-user/x"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("yaml_text", "argv", "match"),
    [
        ("stratgy: lora\n", [], "unknown config key 'stratgy'.*did you mean 'strategy'"),
        ("", ["--learning_rat", "1e-3"], "unknown config key 'learning_rat'.*did you mean 'learning_rate'"),
        ("", ["--strat", "full"], "did you mean 'strategy'"),  # no silent abbreviations
        ("strategy: adapterx\n", [], "'strategy'.* value 'adapterx'; expected one of full, frozen"),
        ("", ["--strategy", "adapterx"], "invalid choice: 'adapterx'"),
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


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("learning_rate: null\n", r"'learning_rate'.* value null \(null is not allowed\); expected a finite"),
        ("learning_rate: .nan\n", r"'learning_rate'.* value nan; expected a finite number"),
        ("learning_rate: .inf\n", r"'learning_rate'.* value inf; expected a finite number"),
        ("learning_rate: fast\n", r"'learning_rate'.* value 'fast'; expected a finite number"),
        ("per_device_train_batch_size: 8.5\n", r"'per_device_train_batch_size'.* 8.5 \(has a fraction\)"),
        ("max_steps: 2.5\n", r"'max_steps'.* value 2.5 \(has a fraction\); expected an integer"),
        ("max_steps: true\n", r"'max_steps'.* value True \(a yes/no value.*expected an integer"),
        ("seed: -1\n", r"seed=-1 must be between 0 and 2\*\*32 - 1"),
        ("seed: 4294967296\n", r"seed=4294967296 must be between 0"),
        ("output_dir: ''\n", "output_dir is empty"),
        ("report_to: wandb\n", "report_to wandb: not installed here"),
        ("logging_steps: -5\n", r"logging_steps=-5(.0)? must be >= 0"),
        ("seed: null\n", r"'seed'.* value null"),
        ("split_seed: -3\n", r"split_seed=-3 must be >= 0"),
        ("lora_r: [1, 2]\n", r"'lora_r'.* \(a list is not allowed\); expected an integer"),
        ("overwrite_output_dir: maybe\n", r"'overwrite_output_dir'.* 'maybe'; expected true or false"),
        ("eval_strategy: no\n", r"'eval_strategy'.* value False \(a yes/no value; quote it"),
        ("max_length: {a: 1}\n", r"'max_length'.* \(a mapping is not allowed\)"),
        ("validation_fraction: true\n", r"'validation_fraction'.* True .*expected a finite number"),
        (
            "target_modules: [query, {a: 1}]\n",
            r"'target_modules'.* value \{'a': 1\}; expected a list of text",
        ),
    ],
)
def test_yaml_values_are_type_checked_like_flags(tmp_path, yaml_text, match):
    """Issue 15 #11: YAML values went to the dataclasses unchecked (argparse converts only string
    defaults): `max_steps: true` trained one step, `learning_rate: null` / `.nan` crashed."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as err:
        sentiment.make_parser().parse(["--config", str(cfg)])
    assert "\n" not in str(err.value)


def test_yaml_values_convert_like_flags(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "learning_rate: 1e-3\nmax_steps: 3.0\nvalidation_fraction: null\neval_datasets: vader-nyt\n"
        "overwrite_output_dir: yes\nstrategy: lora\neval_strategy: 'no'\n",
        encoding="utf-8",
    )
    parsed = sentiment.make_parser().parse(["--config", str(cfg)])
    data, transfer, training = parsed[1], parsed[2], parsed[-1]
    assert training.learning_rate == 1e-3 and training.max_steps == 3 and type(training.max_steps) is int
    assert data.validation_fraction is None and data.eval_datasets == ["vader-nyt"]
    assert training.overwrite_output_dir is True and transfer.strategy == "lora"
    assert training.eval_strategy == "no"


@pytest.mark.parametrize("argv", [["--learning_rate", "nan"], ["--seed", "-1"], ["--max_steps", "true"]])
def test_flags_refuse_the_same_values(argv):
    with pytest.raises(ConfigError) as err:
        sentiment.make_parser().parse(argv)
    assert "\n" not in str(err.value)


def test_yaml_type_error_through_main_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("max_steps: true\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        run_cli(sentiment.main, ["--config", str(cfg), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error:") and "max_steps" in err[0]
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found; pass an existing YAML"):
        sentiment.make_parser().parse(["--config", str(tmp_path / "nope.yaml")])


def test_help_documents_every_field(capsys):
    parser = sentiment.make_parser()
    for dtype in parser.dataclass_types:
        own = {f.name for f in dataclasses.fields(dtype)}
        if issubclass(dtype, TrainingArguments):  # only our additions; the rest is transformers' own help
            own -= {f.name for f in dataclasses.fields(TrainingArguments)}
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


# ---- strategy-aware defaults (issue 16) ------------------------------------------------------------


def _strategy_run(argv):
    from nlptransfer.recipes.sentiment import make_parser
    from nlptransfer.strategy_defaults import apply_strategy_defaults

    parsed = make_parser().parse(argv)
    transfer_args, training_args = parsed[2], parsed[-1]
    changed = apply_strategy_defaults(transfer_args, training_args)
    return changed, training_args


def test_a_strategy_without_a_learning_rate_takes_its_own_default(tmp_path, caplog):
    from nlptransfer.strategy_defaults import strategy_table

    table = strategy_table()
    assert set(table) >= {"full", "frozen", "lora"} and table["full"] == {}
    with caplog.at_level("INFO", logger="nlptransfer"):
        changed, args = _strategy_run(["--strategy", "lora"])
    assert changed == {"learning_rate": table["lora"]["learning_rate"]} and args.learning_rate == 1e-3
    assert "--strategy lora: using its defaults --learning_rate 0.001" in caplog.text
    changed, args = _strategy_run(["--strategy", "frozen"])
    assert (args.learning_rate, args.num_train_epochs) == (1e-2, 10)
    changed, args = _strategy_run([])  # full: the recipe's own settings
    assert changed == {} and args.learning_rate == 5e-5


def test_every_strategy_but_full_has_its_own_learning_rate():
    """A strategy without a row would train an adapter or a head at full fine-tuning's rate and stall."""
    from nlptransfer.strategies import STRATEGIES
    from nlptransfer.strategy_defaults import strategy_table

    table = strategy_table()
    assert set(table) == set(STRATEGIES)
    assert all(table[s]["learning_rate"] >= 1e-4 for s in STRATEGIES if s != "full")


def test_a_users_own_setting_always_wins(tmp_path):
    changed, args = _strategy_run(["--strategy", "lora", "--learning_rate", "2e-4"])
    assert changed == {} and args.learning_rate == 2e-4
    (tmp_path / "mine.yaml").write_text("strategy: frozen\nlearning_rate: 3.0e-3\n")
    changed, args = _strategy_run(["--config", str(tmp_path / "mine.yaml")])
    assert args.learning_rate == 3e-3 and changed == {"num_train_epochs": 10}
    changed, args = _strategy_run(["--strategy", "frozen", "--max_steps", "5"])
    assert changed == {"learning_rate": 1e-2}  # --max_steps given: the epochs are not the budget


def test_compare_uses_the_same_per_strategy_settings():
    from nlptransfer.recipes.sentiment import make_parser
    from nlptransfer.strategy_defaults import strategy_settings

    training_args = make_parser().parse([])[-1]
    assert strategy_settings("lora", training_args) == {"learning_rate": 1e-3}
    assert strategy_settings("full", training_args) == {}
    assert strategy_settings("lora", training_args, adapter_lr=5e-4) == {"learning_rate": 5e-4}
    assert strategy_settings("full", training_args, adapter_lr=5e-4) == {}


@pytest.mark.parametrize(
    "argv, match",
    [
        # TrainingArguments raises FileNotFoundError (not ValueError) for a missing accelerator_config file
        (["--accelerator_config", ""], "invalid TransferTrainingArguments setting"),
        # torch's DataLoader and the Trainer's optimizer set-up rejected these only mid-run, with a traceback
        (["--dataloader_persistent_workers", "true"], "needs worker processes"),
        (["--dataloader_num_workers", "-1"], "dataloader_num_workers=-1 must be >= 0"),
        (["--adam_beta1", "1.0"], r"adam_beta1=1.0 must be in \[0, 1\)"),  # found by test_properties
        (["--adam_beta2", "-0.5"], r"adam_beta2=-0.5 must be in \[0, 1\)"),
        (["--adam_epsilon", "-1"], "adam_epsilon=-1.0 must be >= 0"),
        (["--lr_scheduler_kwargs", "none"], "lr_scheduler_kwargs='none' must be a JSON object"),
        (["--optim_args", "~"], "--optim adamw_torch_fused --optim_args '~' cannot be used.*key=value"),
        (["--optim", "galore_adamw"], "--optim galore_adamw cannot be used.*galore_torch"),
    ],
)
def test_training_settings_that_failed_mid_run_fail_while_parsing(argv, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        sentiment.make_parser().parse(["--output_dir", str(tmp_path / "o"), *argv])


def test_optimizer_settings_that_work_still_parse(tmp_path):
    *_, args = sentiment.make_parser().parse(
        ["--output_dir", str(tmp_path / "o"), "--optim", "sgd", "--optim_args", "momentum=0.9"]
    )
    assert args.optim == "sgd" and args.optim_args == "momentum=0.9"


@pytest.mark.parametrize(
    "yaml_text, match",
    [
        ("dataset: {a: 1}\n", "config key 'dataset'.*a mapping is not allowed"),
        ("torch_compile_backend: []\n", "config key 'torch_compile_backend'.*a list is not allowed"),
    ],
)
def test_yaml_structure_only_where_the_field_takes_it(yaml_text, match, tmp_path):
    (tmp_path / "c.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        sentiment.make_parser().parse(["--config", str(tmp_path / "c.yaml")])


def test_yaml_task_list_still_parses(tmp_path):
    (tmp_path / "c.yaml").write_text("tasks:\n  - {name: a, dataset: x.csv}\n")
    _, mt, _, _ = multitask.make_parser().parse(["--config", str(tmp_path / "c.yaml")])
    assert mt.tasks == [{"name": "a", "dataset": "x.csv"}]


@pytest.mark.parametrize(
    "make_parser, argv, match",
    [
        (sentiment.make_parser, ["--torch_compile_backend", ".."], "'..' is not a torch.compile backend"),
        (sentiment.make_parser, ["--torch_compile_mode", "-1"], "'-1' is not a torch.compile mode"),
        (domain_pretraining.make_parser, ["--save_strategy", "best"], "needs --metric_for_best_model"),
        (sentiment.make_parser, ["--resume_from_checkpoint", "a/b"], "'a/b' is not a checkpoint folder"),
        (translation_pair.make_parser, ["--generation_config", "none"], "generation_config='none' is not"),
    ],
)
def test_settings_read_only_when_the_trainer_starts_are_checked_up_front(make_parser, argv, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        make_parser().parse(["--output_dir", str(tmp_path / "o"), *argv])


def test_trainer_debug_options_are_refused_in_one_line(tmp_path):
    """`debug: underflow_overflow` (YAML; `--debug` is run_cli's traceback switch) crashed mid-run."""
    (tmp_path / "c.yaml").write_text("debug: [underflow_overflow]\n")
    with pytest.raises(ConfigError, match="debug=underflow_overflow is not supported"):
        domain_pretraining.make_parser().parse(["--config", str(tmp_path / "c.yaml")])


@pytest.mark.parametrize("metric", ["f1_weighted", "eval_f1_weighted"])
def test_unknown_metric_names_the_metric_and_the_reported_ones(metric):
    """The tie-break callback and the hyperparameter search share this line; the eval_ prefix is never shown."""
    from nlptransfer.config_training import unknown_metric

    error = unknown_metric(metric, {"eval_loss": 0.5, "eval_f1_macro": 0.4, "epoch": 1.0})
    assert isinstance(error, ConfigError)
    assert str(error) == (
        "--metric_for_best_model f1_weighted is not a validation metric of this run; use one of loss, f1_macro"
    )
