"""--pooling: `auto` from the checkpoint's files, every pooling learns, the pooled architecture saves and
reloads with plain transformers / pipeline / peft (full, lora adapter-only, lora merged), cached frozen
features train the head a saved model reproduces, and a bad value is one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny import sentiment_rows, write_csv
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from nlptransfer import ModelArguments, TransferArguments
from nlptransfer.errors import run_cli
from nlptransfer.features import extract_features, train_head_on_features
from nlptransfer.inference import predict_logits
from nlptransfer.losses import pooled
from nlptransfer.modeling import (
    PooledForSequenceClassification,
    build_classifier,
    load_peft_model,
    resolve_pooling,
    save_classifier,
)
from nlptransfer.predictor import load_run_model
from nlptransfer.recipes import text_classification as tc
from nlptransfer.trainers import TransferTrainingArguments

TEXTS = ["good great movie", "bad awful plot", "the film was dull and boring", "love it"]
LABELS = ["negative", "positive"]


def st_folder(model_dir, root, mode="mean"):
    """A copy of the tiny model with the files a sentence-transformers checkpoint carries."""
    folder = root / f"st-{mode}"
    shutil.copytree(model_dir, folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    modes = {f"pooling_mode_{m}": m2 == mode for m, m2 in (("mean_tokens", "mean"), ("cls_token", "cls"))}
    modes["pooling_mode_max_tokens"] = mode == "max"
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **modes}))
    return folder


def test_auto_reads_the_checkpoint(model_dir, tmp_path):
    assert resolve_pooling(str(model_dir))[0] == "pooler"  # plain BERT with a pretrained pooler
    for mode in ("mean", "cls", "max"):
        assert resolve_pooling(str(st_folder(model_dir, tmp_path, mode)))[0] == mode
    no_pooler = tmp_path / "no-pooler"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    model.bert.pooler = None
    model.bert.save_pretrained(no_pooler)
    assert resolve_pooling(str(no_pooler))[0] == "mean"
    choice, why = resolve_pooling("someone/not-cached-anywhere")  # no network: falls back, says so
    assert choice == "pooler" and "not in the local Hub cache" in why
    assert resolve_pooling(str(model_dir), "max") == ("max", "set by --pooling")


def test_auto_is_strategy_aware(model_dir, tmp_path):
    """Full fine-tuning trains the pretrained pooler and keeps the plain transformers format; the head-only
    and adapter strategies read the sentence-transformers pooling (the pooler stays as pretrained)."""
    folder = str(st_folder(model_dir, tmp_path, "mean"))  # the tiny model has pooler weights
    choice, why = resolve_pooling(folder, "auto", "full")
    assert choice == "pooler" and "plain transformers" in why
    for strategy in ("frozen", "lora", "bitfit", "prompt_tuning", None):
        assert resolve_pooling(folder, "auto", strategy)[0] == "mean", strategy
    assert resolve_pooling(folder, "cls", "full")[0] == "cls"  # a pooling the user set always wins


def test_the_one_pooling_function():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pooled(hidden, mask, "mean").tolist() == [[2.0, -1.0]]
    assert pooled(hidden, mask, "max").tolist() == [[3.0, 2.0]]
    assert pooled(hidden, mask, "cls").tolist() == [[1.0, 2.0]]
    assert pooled(hidden, torch.tensor([[0, 1, 1]]), "cls").tolist() == [[3.0, -4.0]]  # left padding


def _build(model_dir, pooling, strategy="full"):
    torch.manual_seed(0)
    return build_classifier(
        ModelArguments(str(model_dir), pooling=pooling), TransferArguments(strategy=strategy), LABELS
    )


def test_pooled_encoder_loads_every_pretrained_weight(model_dir):
    model = _build(model_dir, "mean")
    assert isinstance(model, PooledForSequenceClassification) and model.config.pooling == "mean"
    reference = AutoModelForSequenceClassification.from_pretrained(model_dir).bert.state_dict()
    mine = model.encoder.state_dict()
    assert mine.keys() == reference.keys()
    assert all(torch.equal(mine[k], reference[k]) for k in reference)
    unused = [n for n, p in model.named_parameters() if "pooler" in n]
    assert unused and not any(p.requires_grad for n, p in model.named_parameters() if "pooler" in n)
    assert all(p.requires_grad for n, p in model.named_parameters() if "pooler" not in n)
    _, info = PooledForSequenceClassification.from_pretrained(
        model_dir, config=model.config, output_loading_info=True
    )
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}
    assert type(_build(model_dir, "pooler")).__name__ == "BertForSequenceClassification"


def _logits(model, tok):
    model.eval()
    with torch.no_grad():
        return model(**tok(TEXTS, return_tensors="pt", padding=True)).logits


def _reload_in_fresh_python(out) -> list:
    """`import nlptransfer` then plain transformers + pipeline, in a new interpreter (registration)."""
    code = (
        "import json, sys, torch, nlptransfer\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline\n"
        f"out = {str(out)!r}\n"
        "m = AutoModelForSequenceClassification.from_pretrained(out).eval()\n"
        "tok = AutoTokenizer.from_pretrained(out)\n"
        f"b = tok({TEXTS!r}, return_tensors='pt', padding=True)\n"
        "with torch.no_grad(): print(json.dumps(m(**b).logits.tolist()))\n"
        "print(json.dumps([type(m).__name__, pipeline('text-classification', model=out)('good')[0]['label']]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    return [json.loads(lines[-2]), json.loads(lines[-1])]


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_full_save_reload_pipeline_identical_logits(model_dir, tmp_path, pooling):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = _build(model_dir, pooling)
    with torch.no_grad():
        model.classifier.weight.normal_()  # a head that is not the initialisation
    before = _logits(model, tok)
    out = tmp_path / "out"
    save_classifier(model, tok, out)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "nlptransfer_pooled" and config["pooling"] == pooling
    assert "auto_map" not in config  # never remote code
    logits, (cls_name, label) = _reload_in_fresh_python(out)
    assert cls_name == "PooledForSequenceClassification" and label in LABELS
    assert torch.allclose(torch.tensor(logits), before, atol=1e-5)
    loaded, _, _ = load_run_model(out)  # nlptransfer predict's loader
    assert torch.allclose(_logits(loaded, tok), before, atol=1e-5)
    assert pipeline("text-classification", model=str(out))("good")[0]["label"] in LABELS


def test_lora_on_pooled_saves_adapter_and_head_and_merges(model_dir, tmp_path):
    from peft import PeftConfig, PeftModel
    from transformers import AutoConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = _build(model_dir, "mean", "lora")
    assert isinstance(model, PeftModel)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_" in n for n in trainable) and any("classifier" in n for n in trainable)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "classifier" in name:
                param.normal_(std=0.5)  # adapters and head away from their initialisation
    before = _logits(model, tok)

    merged_dir, adapter_only = tmp_path / "merged", tmp_path / "adapter-only"
    save_classifier(model, tok, adapter_only, merge_adapters=False)
    save_classifier(model, tok, merged_dir)  # last: merge_and_unload changes the model in place
    assert json.loads((merged_dir / "config.json").read_text())["model_type"] == "nlptransfer_pooled"
    logits, (cls_name, _) = _reload_in_fresh_python(merged_dir)
    assert cls_name == "PooledForSequenceClassification"
    assert torch.allclose(torch.tensor(logits), before, atol=1e-4)

    for folder in (merged_dir / "adapter", adapter_only):  # nlptransfer's loader
        reloaded = load_peft_model(folder, auto_class=AutoModelForSequenceClassification)
        assert torch.allclose(_logits(reloaded, tok), before, atol=1e-4)
    loaded, _, _ = load_run_model(adapter_only)  # nlptransfer predict on an adapter-only run
    assert torch.allclose(_logits(loaded, tok), before, atol=1e-4)
    cfg = AutoConfig.from_pretrained(adapter_only)  # plain transformers + peft, as the model card shows it
    base = PeftConfig.from_pretrained(adapter_only).base_model_name_or_path
    plain = AutoModelForSequenceClassification.from_pretrained(base, config=cfg)
    assert isinstance(plain, PooledForSequenceClassification)
    plain = PeftModel.from_pretrained(plain, adapter_only)
    assert torch.allclose(_logits(plain, tok), before, atol=1e-4)


def _separable(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(160, neutral=False))


def _argv(model_dir, data, out, *extra):
    flags = (
        "--text_column review --label_column sentiment --max_train_samples 120 --max_eval_samples 40 "
        "--num_train_epochs 4 --per_device_train_batch_size 8 --learning_rate 5e-3 --use_cpu true "
        "--max_length 32 --seed 0"
    ).split()
    paths = ["--model_name_or_path", str(model_dir), "--dataset", str(data), "--output_dir", str(out)]
    return [*paths, *flags, *extra]


@pytest.mark.parametrize("pooling", ["pooler", "cls", "mean", "max"])
def test_each_pooling_learns_and_is_recorded(model_dir, tmp_path, pooling):
    out = tmp_path / pooling
    metrics = tc.main(_argv(model_dir, _separable(tmp_path), out, "--pooling", pooling))
    assert metrics["test"]["accuracy"] >= 0.8  # balanced binary: the majority class is 0.5
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["pooling"] == pooling
    card = (out / "README.md").read_text()
    assert f"`{pooling}` pooling" in card
    assert ("import nlptransfer" in card) == (pooling != "pooler")


def test_auto_is_resolved_once_and_recorded(model_dir, tmp_path, caplog):
    import logging

    import yaml

    caplog.set_level(logging.INFO, logger="nlptransfer")
    out = tmp_path / "auto"
    folder = st_folder(model_dir, tmp_path, "mean")
    argv = ["--pooling", "auto", "--strategy", "frozen", "--num_train_epochs", "1"]  # full keeps the pooler
    tc.main(_argv(folder, _separable(tmp_path), out, *argv))
    assert caplog.text.count("pooling: mean (the checkpoint's sentence-transformers pooling config)") == 1
    assert yaml.safe_load((out / "config.yaml").read_text())["pooling"] == "mean"
    assert json.loads((out / "config.json").read_text())["pooling"] == "mean"


def test_frozen_mean_cached_features_predict_like_the_saved_model(model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = sentiment_rows(80, neutral=False)
    texts = [r["review"] for r in rows]
    labels = [int(r["sentiment"] == "positive") for r in rows]
    model = _build(model_dir, "mean", "frozen")
    train_x = extract_features(model, tok, texts, max_length=32, cache=tmp_path / "cache")
    assert np.allclose(train_x, extract_features(model, tok, texts, pooling="mean", cache=False), atol=1e-6)
    args = TransferTrainingArguments(
        output_dir=str(tmp_path / "t"),
        num_train_epochs=20,
        learning_rate=5e-2,
        use_cpu=True,
        per_device_train_batch_size=16,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    train_head_on_features(model, train_x, labels, training_args=args)
    head = model.classifier
    expected = head(torch.from_numpy(train_x)).detach().numpy()  # what the trained head gives on features
    assert ((expected.argmax(1) == np.array(labels)).mean()) >= 0.8
    out = tmp_path / "saved"
    save_classifier(model, tok, out)
    loaded = AutoModelForSequenceClassification.from_pretrained(out)
    got = predict_logits(loaded, tok, texts, 16, 32)
    assert np.allclose(got, expected, atol=1e-4)


def test_frozen_mean_through_the_recipe_uses_the_cache(model_dir, tmp_path, caplog, monkeypatch):
    import logging

    monkeypatch.setenv("NLPTRANSFER_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="nlptransfer")
    data = _separable(tmp_path)
    argv = _argv(model_dir, data, tmp_path / "f", "--pooling", "mean", "--strategy", "frozen")
    tc.main([*argv, "--learning_rate", "5e-2", "--num_train_epochs", "10"])
    assert "running the frozen backbone every step" not in caplog.text
    assert "pooling=mean" in caplog.text
    tc.main(_argv(model_dir, data, tmp_path / "g", "--pooling", "mean", "--strategy", "frozen"))
    assert caplog.text.count("feature cache hit") == 2


def test_bad_pooling_is_one_line(model_dir, tmp_path, capsys):
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tc.main, _argv(model_dir, _separable(tmp_path), out, "--pooling", "average"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error: ")]) == 1 and "--pooling" in err[-1]
    assert "average" in err[-1] and not any("Traceback" in line for line in err)
    assert not out.exists()


# ------------------------------------------------------------------------- the other recipes' heads


def _pooled_run(out, pooling="mean"):
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["pooling"] == pooling
    card = (out / "README.md").read_text()
    assert f"`{pooling}` pooling" in card and ("import nlptransfer" in card or "from nlptransfer" in card)


def test_distillation_teacher_and_student_use_the_pooling(model_dir, tmp_path):
    from nlptransfer.recipes import distill

    out = tmp_path / "distill"
    data = write_csv(tmp_path / "d.csv", sentiment_rows(60))
    distill.main(
        [
            *("--model_name_or_path", str(model_dir), "--dataset", str(data), "--output_dir", str(out)),
            *("--text_column", "review", "--label_column", "sentiment", "--student_layers", "1"),
            *("--teacher_epochs", "1", "--max_steps", "3", "--per_device_train_batch_size", "8"),
            *("--learning_rate", "1e-2", "--use_cpu", "true", "--max_length", "32", "--pooling", "mean"),
        ]
    )
    _pooled_run(out)
    for folder in (out, out / "teacher"):
        config = json.loads((folder / "config.json").read_text())
        assert config["model_type"] == "nlptransfer_pooled" and config["pooling"] == "mean"
    assert json.loads((out / "config.json").read_text())["encoder"]["num_hidden_layers"] == 1
    assert pipeline("text-classification", model=str(out))("good")[0]["label"] in {
        "negative",
        "neutral",
        "positive",
    }


@pytest.mark.parametrize("strategy", ["frozen", "full"])
def test_domain_adaptation_heads_use_the_pooling(model_dir, tmp_path, tmp_cache, strategy):
    from nlptransfer.recipes import domain_adaptation

    a = write_csv(tmp_path / "a.csv", sentiment_rows(60, seed=1))
    b = write_csv(tmp_path / "b.csv", sentiment_rows(60, seed=2))
    out = tmp_path / "da"
    metrics = domain_adaptation.main(
        [
            *("--model_name_or_path", str(model_dir), "--output_dir", str(out), "--text_column", "review"),
            *("--label_column", "sentiment", "--num_train_epochs", "1", "--per_device_train_batch_size"),
            *("16", "--learning_rate", "1e-2", "--use_cpu", "true", "--target_labelled_samples", "20"),
            *("--distance_samples", "30", "--source", str(a), "--target", str(b), "--method", "coral"),
            *("--strategy", strategy, "--pooling", "mean"),
        ]
    )
    _pooled_run(out)
    assert metrics["pairs"]
    saved = out / "models" / "coral"
    assert json.loads((saved / "config.json").read_text())["pooling"] == "mean"
    assert pipeline("text-classification", model=str(saved))("good")[0]["label"] in {
        "negative",
        "neutral",
        "positive",
    }


def test_multitask_heads_use_the_pooling_and_export(model_dir, tmp_path):
    from nlptransfer.modeling.multitask import MultiTaskModel
    from nlptransfer.recipes import multitask

    data = write_csv(tmp_path / "m.csv", sentiment_rows(60))
    specs = [{"name": "three", "dataset": str(data), "text_column": "review", "label_column": "sentiment"}]
    out = tmp_path / "mt"
    multitask.main(
        [
            *("--model_name_or_path", str(model_dir), "--tasks", json.dumps(specs), "--output_dir", str(out)),
            *("--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--learning_rate", "5e-3"),
            *("--use_cpu", "true", "--eval_strategy", "no", "--max_length", "32", "--pooling", "max"),
            *("--single_task_budget", "steps"),
        ]
    )
    _pooled_run(out, "max")
    model = MultiTaskModel.from_pretrained(out)
    assert model.pooling == "max"
    tok = AutoTokenizer.from_pretrained(out / "tasks" / "three")
    exported = AutoModelForSequenceClassification.from_pretrained(out / "tasks" / "three").eval()
    batch = tok(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        mine = model.eval()(**batch, task_ids=torch.zeros(len(TEXTS), dtype=torch.long)).logits
        assert torch.allclose(exported(**batch).logits, mine, atol=1e-5)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("--strategy", "lora", "--merge_adapters", "false"),  # no --target_modules: peft's defaults apply
        ("--strategy", "prompt_tuning", "--num_virtual_tokens", "4"),
    ],
    ids=["full", "lora-adapter", "prompt"],
)
def test_nlptransfer_predict_and_explain_load_pooled_runs(model_dir, tmp_path, extra):
    from nlptransfer import cli

    data = write_csv(tmp_path / "r.csv", sentiment_rows(60))
    out = tmp_path / "run"
    argv = ["run", "sentiment", "--model_name_or_path", str(model_dir), "--dataset", str(data)]
    argv += ["--eval_datasets", "none", "--text_column", "review", "--label_column", "sentiment"]
    argv += ["--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8"]
    argv += ["--learning_rate", "1e-2", "--use_cpu", "true", "--max_length", "32", "--pooling", "mean"]
    cli.main([*argv, *extra])
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    rows = cli.cli(
        ["predict", "--model", str(out), "--input", str(out / "predictions.jsonl")]
        + ["--output", str(tmp_path / "p.jsonl")]
    )
    assert [r["label"] for r in rows] == [s["label"] for s in saved]
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in saved], abs=1e-4)
    if not extra:
        result = cli.cli(["explain", "--model", str(out), "--text", "good movie but boring", "--steps", "4"])
        assert result["tokens"][1:-1] == ["good", "movie", "but", "boring"]


@pytest.mark.parametrize(
    "first",
    ["from nlptransfer.modeling import build_classifier", "import peft, nlptransfer", "import nlptransfer"],
)
def test_the_pooled_architecture_registers_in_any_import_order(first):
    """Registration runs when transformers is first imported, even from inside peft's own import."""
    code = (
        f"{first}\nimport sys\nprint('torch' in sys.modules)\n"
        "from transformers import AutoConfig, AutoModelForSequenceClassification\n"
        "config = AutoConfig.for_model('nlptransfer_pooled', num_labels=2)\n"
        "print(type(AutoModelForSequenceClassification.from_config(config)).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    torch_loaded, name = done.stdout.split()
    assert name == "PooledForSequenceClassification"
    if first == "import nlptransfer":
        assert torch_loaded == "False"  # `python -m nlptransfer.assets` still starts without torch
