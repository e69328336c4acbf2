"""modeling/load.py is the one loading path: pickled weights, remote code and missing models are refused in
one line everywhere (`nlptransfer predict`/`explain`, features.rank_models, recipes), never a prompt."""

from __future__ import annotations

import ast
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from nlptransfer import ModelArguments, ModelError, TransferArguments, cli, features
from nlptransfer.modeling import build_classifier, load_model, load_tokenizer, save_classifier
from nlptransfer.modeling import load as loading

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
LABELS = ["negative", "positive"]
TEXTS = ["good movie", "bad plot", "great film", "awful actor", "fun story", "dull scene"]


def _pickled(src: Path, dest: Path, weights: str = "model.safetensors", pickled: str = "pytorch_model.bin"):
    """A copy of `src` whose weights are a pickled torch file instead of safetensors."""
    shutil.copytree(src, dest)
    torch.save(load_file(dest / weights), dest / pickled)
    (dest / weights).unlink()
    return dest


def _malicious(src: Path, dest: Path, marker: Path) -> Path:
    """A copy of `src` whose pytorch_model.bin runs code when unpickled without weights_only."""

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    shutil.copytree(src, dest)
    (dest / "model.safetensors").unlink()
    with open(dest / "pytorch_model.bin", "wb") as f:
        pickle.dump({"bert.embeddings.word_embeddings.weight": Payload()}, f)
    return dest


def _custom_code(src: Path, dest: Path, marker: Path, where: str = "config.json") -> Path:
    """A copy of `src` whose `where` maps the Auto classes to custom.py, which writes `marker` on import."""
    shutil.copytree(src, dest)
    spec = json.loads((dest / where).read_text())
    spec["auto_map"] = {
        "AutoConfig": "custom.CustomConfig",
        "AutoModel": "custom.CustomModel",
        "AutoModelForSequenceClassification": "custom.CustomModel",
        "AutoTokenizer": ["custom.CustomTokenizer", None],
    }
    if where == "config.json":
        spec["model_type"] = "nlptransfer-custom"  # not a transformers architecture: only custom.py has it
    (dest / where).write_text(json.dumps(spec))
    (dest / "custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('custom code ran')\n"
        "from transformers import BertConfig, BertForSequenceClassification, BertTokenizer\n"
        "class CustomConfig(BertConfig):\n    model_type = 'nlptransfer-custom'\n"
        "class CustomModel(BertForSequenceClassification):\n    config_class = CustomConfig\n"
        "class CustomTokenizer(BertTokenizer):\n    pass\n"
    )
    return dest


def _one_error_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], text
    return errors[0]


# ---- pickled weights --------------------------------------------------------------------------


def test_predict_refuses_pickled_weights_unless_allowed(run_dir, tmp_path):
    pickled = _pickled(run_dir, tmp_path / "pickled")
    argv = ["predict", "--model", str(pickled), "--text", "good movie", "--text", "bad plot"]
    with pytest.raises(ModelError, match="--allow_pickle") as err:
        cli.cli(argv)
    assert "\n" not in str(err.value)
    rows = cli.cli([*argv, "--allow_pickle", "true"])
    expected = cli.cli(["predict", "--model", str(run_dir), "--text", "good movie", "--text", "bad plot"])
    assert rows == expected


def test_explain_refuses_pickled_weights_unless_allowed(run_dir, tmp_path):
    pytest.importorskip("captum")
    pickled = _pickled(run_dir, tmp_path / "pickled")
    argv = ["explain", "--model", str(pickled), "--text", "good movie", "--steps", "4"]
    with pytest.raises(ModelError, match="--allow_pickle"):
        cli.cli(argv)
    assert cli.cli([*argv, "--allow_pickle", "true"])["label"] in LABELS


def test_rank_models_refuses_pickled_weights_unless_allowed(model_dir, tmp_path):
    pickled = _pickled(model_dir, tmp_path / "pickled")
    labels = [0, 1] * 3
    with pytest.raises(ModelError, match="--allow_pickle"):
        features.rank_models([str(model_dir), str(pickled)], TEXTS, labels, max_length=16)
    ranked = features.rank_models(
        [str(model_dir), str(pickled)], TEXTS, labels, max_length=16, allow_pickle=True
    )
    scores = dict(ranked)
    assert scores[str(model_dir)] == pytest.approx(scores[str(pickled)])  # the same weights


def test_predict_refuses_a_pickled_adapter_unless_allowed(model_dir, tmp_path):
    out = tmp_path / "adapter-run"
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="lora"), LABELS)
    save_classifier(model, AutoTokenizer.from_pretrained(model_dir), out, merge_adapters=False)
    argv = ["predict", "--model", str(out), "--text", "good movie"]
    expected = cli.cli(argv)  # an adapter-only run loads on its base model through the same path
    pickled = _pickled(out, tmp_path / "pickled", "adapter_model.safetensors", "adapter_model.bin")
    shutil.rmtree(pickled / "adapter")
    with pytest.raises(ModelError, match="--allow_pickle"):
        cli.cli(["predict", "--model", str(pickled), "--text", "good movie"])
    assert cli.cli(["predict", "--model", str(pickled), "--text", "good movie", "--allow_pickle"]) == expected


def test_a_malicious_pickle_is_one_line_even_when_pickles_are_allowed(run_dir, tmp_path):
    marker = tmp_path / "PWNED"
    evil = _malicious(run_dir, tmp_path / "evil", marker)
    with pytest.raises(ModelError, match="refused to unpickle") as err:
        cli.cli(["predict", "--model", str(evil), "--text", "good", "--allow_pickle", "true"])
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_recipes_refuse_pickled_weights(model_dir, tmp_path):
    pickled = _pickled(model_dir, tmp_path / "pickled")
    with pytest.raises(ModelError, match="--allow_pickle"):
        load_model(AutoModel, str(pickled))
    assert isinstance(load_model(AutoModel, str(pickled), allow_pickle=True), torch.nn.Module)


# ---- remote code ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_remote_code_is_refused_in_one_line_and_never_prompted(run_dir, tmp_path, command):
    """stdin says "y": transformers' interactive prompt would accept it and run custom.py."""
    marker = tmp_path / "custom_code_ran"
    custom = _custom_code(run_dir, tmp_path / "custom", marker)
    cmd = [sys.executable, "-m", "nlptransfer.cli", command, "--model", str(custom), "--text", "good movie"]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, input="y\n", capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "--trust_remote_code true" in _one_error_line(proc.stderr)
    assert "Do you wish to run the custom code" not in proc.stdout + proc.stderr
    assert not marker.exists()


def test_remote_code_in_the_tokenizer_config_is_refused_too(run_dir, tmp_path):
    marker = tmp_path / "custom_code_ran"
    custom = _custom_code(run_dir, tmp_path / "custom", marker, where="tokenizer_config.json")
    with pytest.raises(ModelError, match="--trust_remote_code true"):
        load_tokenizer(str(custom))
    assert not marker.exists()


def test_trust_remote_code_false_is_passed_to_transformers(run_dir, tmp_path, monkeypatch):
    """Without the auto_map check, transformers itself refuses (trust_remote_code=False, not None): no prompt."""
    marker = tmp_path / "custom_code_ran"
    custom = _custom_code(run_dir, tmp_path / "custom", marker)
    monkeypatch.setattr(loading, "needs_remote_code", lambda path: False)
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("transformers prompted on stdin"))
    for load in (
        lambda: loading.load_config(str(custom)),
        lambda: load_model(AutoModelForSequenceClassification, str(custom)),
    ):
        with pytest.raises(ModelError, match="--trust_remote_code true") as err:
            load()
        assert "\n" not in str(err.value)
    assert not marker.exists()


def test_recipe_refuses_remote_code(run_dir, tmp_path):
    marker = tmp_path / "custom_code_ran"
    custom = _custom_code(run_dir, tmp_path / "custom", marker)
    with pytest.raises(ModelError, match="--trust_remote_code true"):
        build_classifier(ModelArguments(str(custom)), TransferArguments(), LABELS)
    assert not marker.exists()


# ---- missing models and the one path ------------------------------------------------------------


def test_missing_model_is_one_line_naming_the_embedded_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for load in (
        lambda: loading.load_config("no-such-org/no-such-model"),
        lambda: load_tokenizer(str(tmp_path / "missing")),
        lambda: load_model(AutoModel, "no-such-org/no-such-model"),
    ):
        with pytest.raises(ModelError, match="embedded default") as err:
            load()
        assert "\n" not in str(err.value)


def test_folder_without_weights_says_so(model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    shutil.copy(model_dir / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(ModelError, match="could not be loaded as AutoModel: .*model.safetensors"):
        load_model(AutoModel, str(tmp_path / "empty"))


def test_from_pretrained_is_called_only_in_modeling_load():
    """Every model, tokenizer, config and adapter load of the package goes through modeling/load.py."""
    package = ROOT / "nlptransfer"
    allowed = {
        package / "modeling" / "load.py",
        # embeddings: reloads the tokenizer it has just saved to a temp dir with an edited vocabulary
        package / "embeddings" / "tokenizer.py",
    }
    calls = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and node.func.attr == "from_pretrained":
                calls.append((path, node.lineno))
    outside = [f"{p.relative_to(ROOT)}:{line}" for p, line in calls if p not in allowed]
    assert not outside, outside
    embedded = [line for p, line in calls if p == package / "embeddings" / "tokenizer.py"]
    assert len(embedded) <= 1, embedded
