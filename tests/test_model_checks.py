"""Issue 15, the loading side: a model folder the tool cannot use as asked is one `error:` line (exit 2),
never a traceback or a silently wrong answer: no tokenizer files, truncated weights, not a classifier, bad
predict/explain numbers, --max_length beyond the model, an adapter's base model that moved."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
from tiny import DOMAIN, cli_error, sentiment_rows, tiny_model_dir, write_csv
from transformers import AutoTokenizer

from nlptransfer import ModelArguments, ModelError, TransferArguments, cli
from nlptransfer.config import user_set
from nlptransfer.errors import run_cli
from nlptransfer.modeling import build_classifier, load_tokenizer, save_classifier
from nlptransfer.recipes.sentiment import make_parser

LABELS = ["negative", "positive"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The tiny BERT with 64 positions, below the default --max_length 128 (the limit these tests check);
    conftest's run_dir is built from it here."""
    return tiny_model_dir(tmp_path_factory.mktemp("models"), positions=64)


_error = cli_error  # the one-line error helper (tiny.py)


def _without_tokenizer(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    for name in TOKENIZER_FILES:
        (dest / name).unlink(missing_ok=True)
    return dest


# ---- #7 a folder without tokenizer files ------------------------------------------------------


def test_folder_without_tokenizer_files_is_refused(model_dir, tmp_path):
    bare = _without_tokenizer(model_dir, tmp_path / "bare")
    with pytest.raises(ModelError, match="no tokenizer files"):
        load_tokenizer(bare)
    assert len(load_tokenizer(model_dir)) > 5  # a real one still loads


def test_predict_on_a_run_without_tokenizer_files_is_one_line(run_dir, tmp_path, capsys):
    bare = _without_tokenizer(run_dir, tmp_path / "bare")
    line = _error(capsys, ["predict", "--model", bare, "--text", "good movie"])
    assert "no tokenizer files" in line and str(bare) in line


# ---- #17 truncated safetensors ----------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 20])
def test_truncated_safetensors_is_one_line(run_dir, tmp_path, capsys, keep):
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    data = (run_dir / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    line = _error(capsys, ["predict", "--model", broken, "--text", "good movie"])
    assert "truncated or corrupt" in line and str(broken) in line
    with pytest.raises(ModelError, match="truncated or corrupt"):
        build_classifier(ModelArguments(str(broken)), TransferArguments(), LABELS)


# ---- #8 a model that is not a classifier -------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_dir(model_dir, tmp_path_factory):
    """A domain-pretraining output: a masked-LM checkpoint with its tokenizer, no classification head."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    out = tmp_path_factory.mktemp("mlm") / "mlm"
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig.from_pretrained(model_dir)).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("which", ["mlm", "encoder"])
def test_a_model_that_is_not_a_classifier_is_refused(mlm_dir, model_dir, capsys, command, which):
    pytest.importorskip("captum") if command == "explain" else None
    folder = mlm_dir if which == "mlm" else model_dir
    line = _error(capsys, [command, "--model", folder, "--text", "good movie"])
    assert "is not a trained classifier" in line
    assert ("BertForMaskedLM" if which == "mlm" else "BertModel") in line


def test_a_trained_classifier_still_predicts(run_dir):
    rows = cli.cli(["predict", "--model", str(run_dir), "--text", "good movie"])
    assert rows[0]["label"] in LABELS


# ---- #16 numbers that must be positive -----------------------------------------------------------


@pytest.mark.parametrize(
    "command,flag,value",
    [
        ("predict", "--batch_size", "0"),
        ("predict", "--batch_size", "-3"),
        ("predict", "--max_length", "0"),
        ("explain", "--steps", "0"),
        ("explain", "--steps", "-1"),
        ("explain", "--max_length", "0"),
    ],
)
def test_zero_or_negative_numbers_are_one_line(run_dir, capsys, command, flag, value):
    line = _error(capsys, [command, "--model", run_dir, "--text", "good movie", flag, value])
    assert f"{flag} {value}" in line and "at least 1" in line


# ---- #14 --max_length beyond the model's positions --------------------------------------------

LONG = " ".join(["good movie but the plot was dull"] * 30)  # ~210 tokens; the tiny model takes 64


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_max_length_above_the_position_limit_is_one_line(run_dir, capsys, command):
    line = _error(capsys, [command, "--model", run_dir, "--text", LONG, "--max_length", "100"])
    assert "--max_length 100" in line and "64 positions" in line and "--max_length 64 or less" in line


def test_long_texts_are_truncated_to_the_model_limit_by_default(run_dir):
    # the run saved no max_length: the default 128 is above the tiny model's 64 positions
    rows = cli.cli(["predict", "--model", str(run_dir), "--text", LONG, "--text", "good"])
    assert [r["label"] in LABELS for r in rows] == [True, True]
    pytest.importorskip("captum")
    assert cli.cli(["explain", "--model", str(run_dir), "--text", LONG, "--steps", "2"])["label"] in LABELS


def test_check_max_length(model_dir):
    from transformers import AutoConfig, RobertaConfig

    from nlptransfer import ConfigError
    from nlptransfer.modeling import check_max_length, position_limit

    config = AutoConfig.from_pretrained(model_dir)
    check_max_length(config, 64)
    for bad in (65, 0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--max_length"):
            check_max_length(config, bad)
    assert position_limit(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512


# ---- #6 an adapter's base model is recorded so that it loads from any directory -------------------


@pytest.fixture()
def adapter_run(model_dir, tmp_path, monkeypatch):
    """An adapter-only run trained from the base given as a path relative to the working directory."""
    work = tmp_path / "work"
    shutil.copytree(model_dir, work / "models" / "base")
    monkeypatch.chdir(work)
    transfer = TransferArguments(strategy="lora", target_modules=["query", "value"])
    model = build_classifier(ModelArguments("models/base"), transfer, LABELS)
    save_classifier(model, AutoTokenizer.from_pretrained("models/base"), work / "run", merge_adapters=False)
    return work


def _recorded(folder: Path) -> str:
    import json

    return json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]


def test_adapter_records_the_base_as_an_absolute_path(adapter_run, tmp_path, monkeypatch):
    base = adapter_run / "models" / "base"
    assert _recorded(adapter_run / "run") == str(base.resolve())
    assert _recorded(adapter_run / "run" / "adapter") == str(base.resolve())
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "models").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    rows = cli.cli(["predict", "--model", str(adapter_run / "run"), "--text", "good movie"])
    assert rows[0]["label"] in LABELS


def test_adapter_whose_base_moved_is_one_line(adapter_run, capsys):
    base = adapter_run / "models" / "base"
    shutil.move(base, adapter_run / "models" / "moved")
    line = _error(capsys, ["predict", "--model", adapter_run / "run", "--text", "good movie"])
    assert str(base.resolve()) in line and "base_model_name_or_path" in line


def test_adapter_with_a_relative_base_from_another_directory_is_one_line(
    adapter_run, tmp_path, capsys, monkeypatch
):
    import json

    spec_file = adapter_run / "run" / "adapter_config.json"
    spec = json.loads(spec_file.read_text())
    spec["base_model_name_or_path"] = "models/base"  # as adapters saved before the fix recorded it
    spec_file.write_text(json.dumps(spec))
    monkeypatch.chdir(tmp_path)
    line = _error(capsys, ["predict", "--model", adapter_run / "run", "--text", "good movie"])
    assert "'models/base'" in line and "base_model_name_or_path" in line


def _set_base(run: Path, base: str) -> None:
    spec_file = run / "adapter_config.json"
    spec = json.loads(spec_file.read_text())
    spec["base_model_name_or_path"] = base
    spec_file.write_text(json.dumps(spec))


def test_adapter_on_a_base_of_another_size_is_one_line(adapter_run, tmp_path, capsys):
    """A recorded base that exists but is not the model the adapter was trained on (48 wide, not 32): the
    size mismatch of load_state_dict is one line naming the base and the file to fix."""
    from transformers import BertConfig, BertModel

    wider = tmp_path / "wider"
    base = adapter_run / "models" / "base"
    vocab = (base / "vocab.txt").read_text().split()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(wider)
    AutoTokenizer.from_pretrained(base).save_pretrained(wider)
    _set_base(adapter_run / "run", str(wider))
    line = _error(capsys, ["predict", "--model", adapter_run / "run", "--text", "good movie"])
    assert "does not fit base model" in line and str(wider) in line and "size mismatch" in line
    assert "base_model_name_or_path" in line and "adapter_config.json" in line


def test_adapter_base_of_a_user_that_does_not_exist_is_one_line(adapter_run, capsys):
    _set_base(adapter_run / "run", "~nlptransfer-no-such-user/base")
    line = _error(capsys, ["predict", "--model", adapter_run / "run", "--text", "good movie"])
    assert (
        "cannot expand ~nlptransfer-no-such-user: no such user" in line and "base_model_name_or_path" in line
    )


# ---- #14 the recipes check --max_length before anything is written ---------------------------------


def _recipe_argv(recipe: str, model_dir: Path, root: Path) -> list[str]:
    data = write_csv(root / "reviews.csv", sentiment_rows(40))
    common = ["--model_name_or_path", str(model_dir), "--output_dir", str(root / "out"), "--use_cpu", "true"]
    if recipe == "multitask":
        task = {"name": "s", "dataset": str(data), "text_column": "review", "label_column": "sentiment"}
        return common + ["--tasks", json.dumps([task])]
    if recipe == "domain_pretraining":
        (root / "domain.txt").write_text("\n".join(DOMAIN) + "\n", encoding="utf-8")
        return common + ["--corpus", str(root / "domain.txt")]
    return common + ["--dataset", str(data), "--text_column", "review", "--label_column", "sentiment"]


@pytest.mark.parametrize(
    "recipe", ["sentiment", "text_classification", "multitask", "distill", "domain_pretraining"]
)
def test_recipes_refuse_a_max_length_above_the_model_before_writing(recipe, model_dir, tmp_path, capsys):
    """Was: a crash on the first long text mid-training, run.json stuck at "running"."""
    main = importlib.import_module(f"nlptransfer.recipes.{recipe}").main
    argv = _recipe_argv(recipe, model_dir, tmp_path) + ["--max_length", "100"]
    with pytest.raises(SystemExit) as info:
        run_cli(main, argv)
    assert info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: --max_length 100") and "64 positions" in line, line
    assert not (tmp_path / "out").exists()


def test_a_default_max_length_is_lowered_to_the_model_a_given_one_is_not(model_dir):
    model_args = make_parser().parse(["--model_name_or_path", str(model_dir)])[0]
    assert model_args.max_length == 128 and "max_length" not in user_set(model_args)
    build_classifier(model_args, TransferArguments(), LABELS)
    assert model_args.max_length == 64  # the recipe default, lowered to the tiny model's positions
    given = make_parser().parse(["--model_name_or_path", str(model_dir), "--max_length", "64"])[0]
    assert user_set(given) == {"model_name_or_path", "max_length"}
    build_classifier(given, TransferArguments(), LABELS)
    assert given.max_length == 64
