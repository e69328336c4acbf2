"""Strategies, save -> reload round trips (plain transformers and peft), and model errors."""

from __future__ import annotations

import pytest
import torch
from peft import AutoPeftModelForSequenceClassification, PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from nlptransfer import ModelArguments, ModelError, TransferArguments
from nlptransfer.modeling import build_classifier, count_parameters, save_classifier

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["good movie", "bad plot and awful actor", "the film was not boring", "this"]


def _perturb_trainable(model):
    # Stand-in for training: random trainable weights make the round trip meaningful.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.3)


def _logits(model, tok):
    model.eval()
    with torch.no_grad():
        return model(**tok(TEXTS, return_tensors="pt", padding=True)).logits


@pytest.mark.parametrize("strategy", ["full", "frozen", "lora", "ia3", "prompt_tuning"])
def test_save_reload_identical_predictions(model_dir, tmp_path, strategy):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = build_classifier(
        ModelArguments(str(model_dir)), TransferArguments(strategy=strategy, num_virtual_tokens=4), LABELS
    )
    trainable, total = count_parameters(model)
    assert 0 < trainable <= total
    if strategy != "full":
        assert trainable < total
    _perturb_trainable(model)
    expected = _logits(model, tok)
    out = tmp_path / "out"
    save_classifier(model, tok, out)

    if strategy in ("lora", "ia3", "prompt_tuning"):
        # PEFT format, head included: the base model + adapter gives the same predictions.
        base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3)
        reloaded = PeftModel.from_pretrained(base, out / "adapter")
        torch.testing.assert_close(_logits(reloaded, tok), expected)
        config = AutoConfig.from_pretrained(out / "adapter")  # the saved labels rebuild the head
        auto = AutoPeftModelForSequenceClassification.from_pretrained(
            out / "adapter", num_labels=config.num_labels, id2label=config.id2label, label2id=config.label2id
        )
        assert auto.config.id2label[2] == "positive"
        torch.testing.assert_close(_logits(auto, tok), expected)
    if strategy != "prompt_tuning":
        # Plain transformers: the pipeline reads the directory and gives the same probabilities per row.
        clf = pipeline("text-classification", model=str(out), top_k=None)
        for text, logit in zip(TEXTS, expected, strict=True):
            probs = torch.softmax(logit, -1)
            got = {d["label"]: d["score"] for d in clf([text])[0]}
            assert got.keys() == set(LABELS)
            for i, name in enumerate(LABELS):
                assert got[name] == pytest.approx(probs[i].item(), abs=1e-5)


def test_unmerged_adapter_only(model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="lora"), LABELS)
    save_classifier(model, tok, tmp_path, merge_adapters=False)
    assert (tmp_path / "adapter_config.json").exists() and not (tmp_path / "model.safetensors").exists()
    assert AutoConfig.from_pretrained(tmp_path).id2label[0] == "negative"


def test_merge_adapters_writes_plain_model(model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = build_classifier(
        ModelArguments(str(model_dir)), TransferArguments(strategy="lora", merge_adapters=True), LABELS
    )
    _perturb_trainable(model)
    expected = _logits(model, tok)
    out = tmp_path / "merged"
    save_classifier(model, tok, out, merge_adapters=True)
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    assert (out / "adapter" / "adapter_config.json").exists()
    plain = AutoModelForSequenceClassification.from_pretrained(out)
    torch.testing.assert_close(_logits(plain, tok), expected, rtol=1e-4, atol=1e-5)


def test_lora_head_is_trainable_and_saved(model_dir):
    model = build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="lora"), LABELS)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("classifier" in n for n in names)
    assert any("lora_A" in n for n in names)
    assert not any("word_embeddings" in n for n in names)


def test_target_modules_not_in_model(model_dir):
    with pytest.raises(ModelError, match="--target_modules.*query"):
        build_classifier(
            ModelArguments(str(model_dir)),
            TransferArguments(strategy="lora", target_modules=["q_proj"]),
            LABELS,
        )


def test_model_not_found_offline_says_how_to_use_embedded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="embedded default"):
        build_classifier(ModelArguments("no-such-org/no-such-model"), TransferArguments(), LABELS)
    with pytest.raises(ModelError, match="local directory"):
        build_classifier(ModelArguments(str(tmp_path / "missing")), TransferArguments(), LABELS)


def test_from_scratch_differs_from_pretrained(model_dir):
    pre = build_classifier(ModelArguments(str(model_dir)), TransferArguments(), LABELS)
    scratch = build_classifier(ModelArguments(str(model_dir), from_scratch=True), TransferArguments(), LABELS)
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(dict(pre.named_parameters())[name], dict(scratch.named_parameters())[name])
