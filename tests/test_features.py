"""Cached frozen-backbone features on a tiny BERT: cache hits and misses, row order, cached == per-step
training, the saved model in `pipeline`, and the unsupported-architecture error."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny import WORDS, sentiment_rows
from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    RobertaConfig,
    RobertaForSequenceClassification,
    pipeline,
)

from nlptransfer import (
    ConfigError,
    DataError,
    ModelArguments,
    TransferArguments,
    TransferTrainer,
    TransferTrainingArguments,
)
from nlptransfer.features import extract_features, freeze_backbone_eval, train_head_on_features
from nlptransfer.inference import predict_logits
from nlptransfer.modeling import build_classifier, save_classifier

LABELS = ["negative", "neutral", "positive"]
MAX_LENGTH = 32


@pytest.fixture(scope="module")
def tok(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def data():
    rows = sentiment_rows(48)
    return [r["review"] for r in rows], [LABELS.index(r["sentiment"]) for r in rows]


def _frozen(model_dir):
    torch.manual_seed(0)  # the same new head every time
    return build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="frozen"), LABELS)


class _Calls:
    """Counts forward passes of the backbone."""

    def __init__(self, model):
        self.n = 0
        model.base_model.register_forward_hook(self)

    def __call__(self, *args):
        self.n += 1


def _extract(model, tok, texts, **kw):
    return extract_features(
        model, tok, texts, max_length=kw.pop("max_length", MAX_LENGTH), batch_size=8, **kw
    )


def test_second_call_is_a_cache_hit(model_dir, tok, data, tmp_path, caplog):
    model = _frozen(model_dir)
    calls = _Calls(model)
    first = _extract(model, tok, data[0], cache=tmp_path)
    assert calls.n > 0 and first.shape == (48, 32) and first.dtype == np.float32
    assert len(list(tmp_path.glob("*.npy"))) == 1 and not list(tmp_path.glob("*.tmp"))

    runs = calls.n
    with caplog.at_level(logging.INFO, logger="nlptransfer"):
        second = _extract(model, tok, data[0], cache=tmp_path)
    assert calls.n == runs, "the backbone ran on a cache hit"
    assert "feature cache hit" in caplog.text
    np.testing.assert_array_equal(first, second)

    # The head is not part of the key: training it keeps the features valid.
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    _extract(model, tok, data[0], cache=tmp_path)
    assert calls.n == runs


def test_default_cache_folder(model_dir, tok, data, tmp_cache):
    _extract(_frozen(model_dir), tok, data[0][:4])
    assert len(list((tmp_cache / "features").glob("*.npy"))) == 1


@pytest.mark.parametrize("change", ["weights", "texts", "order", "pooling", "max_length"])
def test_cache_misses_when_inputs_change(model_dir, tok, data, tmp_path, change):
    model = _frozen(model_dir)
    texts = data[0]
    before = _extract(model, tok, texts, cache=tmp_path)
    calls = _Calls(model)
    kw = {}
    if change == "weights":
        with torch.no_grad():
            model.base_model.encoder.layer[1].output.dense.bias[0] += 1e-3  # one backbone number
    elif change == "texts":
        texts = texts[:-1] + [texts[-1] + " good"]
    elif change == "order":
        texts = texts[1:] + texts[:1]
    elif change == "pooling":
        kw["pooling"] = "mean"
    else:
        kw["max_length"] = 8  # truncates the longer texts
    after = _extract(model, tok, texts, cache=tmp_path, **kw)
    assert calls.n > 0, f"changing {change} was a cache hit"
    assert len(list(tmp_path.glob("*.npy"))) == 2
    assert not np.array_equal(before, after)


@pytest.mark.parametrize("pooling", ["head", "mean", "cls"])
def test_rows_come_back_in_input_order(model_dir, tok, pooling):
    model = _frozen(model_dir)
    # Lengths 1..16 in shuffled order, so length sorting really permutes the rows.
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=k)) for k in rng.permutation(np.arange(1, 17))]
    got = _extract(model, tok, texts, pooling=pooling, cache=False)
    model.eval()
    with torch.no_grad():
        for text, row in zip(texts, got, strict=True):  # one text at a time: no padding at all
            out = model.base_model(**tok(text, return_tensors="pt"))
            want = {
                "head": out.pooler_output,
                "mean": out.last_hidden_state.mean(1),
                "cls": out.last_hidden_state[:, 0],
            }[pooling][0]
            np.testing.assert_allclose(row, want.numpy(), atol=1e-5)


def _args(tmp_path, **kw):
    return TransferTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-2,
        warmup_steps=0.1,
        weight_decay=0.01,
        seed=7,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        **kw,
    )


def _train_per_step(model, tok, texts, labels, args):
    ds = Dataset.from_dict({"text": texts, "label": labels})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True)
    trainer = TransferTrainer(
        model=model,
        args=args,
        train_dataset=ds.remove_columns("text"),
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok),
    )
    trainer.train()


def _train_cached(model, tok, texts, labels, args, cache):
    features = _extract(model, tok, texts, cache=cache)
    return train_head_on_features(model, features, labels, training_args=args)


def test_cached_training_equals_per_step_training(model_dir, tok, data, tmp_path):
    texts, labels = data
    start = _frozen(model_dir)
    per_step, cached = copy.deepcopy(start), copy.deepcopy(start)

    freeze_backbone_eval(per_step)
    _train_per_step(per_step, tok, texts, labels, _args(tmp_path))
    output, metrics = _train_cached(cached, tok, texts, labels, _args(tmp_path), tmp_path / "cache")

    assert output.global_step == 12 and metrics == {}
    assert not torch.allclose(start.classifier.weight, cached.classifier.weight)  # it trained
    for name in ("weight", "bias"):
        torch.testing.assert_close(
            getattr(cached.classifier, name), getattr(per_step.classifier, name), atol=1e-5, rtol=1e-4
        )
    for name, param in cached.base_model.named_parameters():  # the backbone did not move
        torch.testing.assert_close(param, start.base_model.get_parameter(name), atol=0, rtol=0)
    logits_cached = predict_logits(cached, tok, texts, max_length=MAX_LENGTH)
    logits_per_step = predict_logits(per_step, tok, texts, max_length=MAX_LENGTH)
    np.testing.assert_allclose(logits_cached, logits_per_step, atol=1e-4)
    np.testing.assert_array_equal(logits_cached.argmax(-1), logits_per_step.argmax(-1))


def test_without_eval_pinning_backbone_dropout_breaks_equivalence(model_dir, tok, data, tmp_path):
    # Control for the test above: the Trainer's model.train() turns backbone dropout on in the per-step
    # path, so without freeze_backbone_eval its head ends up elsewhere.
    texts, labels = data
    start = _frozen(model_dir)
    per_step, cached = copy.deepcopy(start), copy.deepcopy(start)
    _train_per_step(per_step, tok, texts, labels, _args(tmp_path))
    _train_cached(cached, tok, texts, labels, _args(tmp_path), tmp_path / "cache")
    assert not torch.allclose(cached.classifier.weight, per_step.classifier.weight, atol=1e-3)


def test_trained_model_saves_and_loads_in_pipeline(model_dir, tok, data, tmp_path):
    texts, labels = data
    model = _frozen(model_dir)
    features = _extract(model, tok, texts, cache=tmp_path / "cache")
    eval_x, eval_y = features[:12], labels[:12]

    def accuracy(pred):
        return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}

    _, metrics = train_head_on_features(
        model,
        features,
        labels,
        eval_features=eval_x,
        eval_labels=eval_y,
        compute_metrics=accuracy,
        training_args=_args(tmp_path, train_sampling_strategy="group_by_length", class_weighted_loss=True),
    )
    assert {"eval_loss", "eval_accuracy"} <= set(metrics)
    expected = predict_logits(model, tok, texts, max_length=MAX_LENGTH).argmax(-1)
    out = tmp_path / "saved"
    save_classifier(model, tok, out)
    clf = pipeline("text-classification", model=str(out), device="cpu")
    got = [p["label"] for p in clf(texts, truncation=True, max_length=MAX_LENGTH)]
    assert type(clf.model).__name__ == "BertForSequenceClassification"
    assert got == [LABELS[i] for i in expected]


def _tiny_roberta():
    config = RobertaConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
        type_vocab_size=2,
        num_labels=3,
    )
    return RobertaForSequenceClassification(config)


def test_unsupported_architecture_is_one_clear_line(tok, data):
    model = _tiny_roberta()
    with pytest.raises(ConfigError) as err:
        extract_features(model, tok, data[0][:4], cache=False)
    message = str(err.value)
    assert "\n" not in message
    assert "RobertaForSequenceClassification" in message and "--cache_features false" in message
    with pytest.raises(ConfigError, match="--cache_features false"):
        train_head_on_features(model, np.zeros((4, 32)), [0, 1, 2, 0], training_args=None)
    # Feature-only poolings work for any encoder.
    assert extract_features(model, tok, data[0][:4], pooling="mean", cache=False).shape == (4, 32)


def test_input_errors(model_dir, tok, data, tmp_path):
    model = _frozen(model_dir)
    with pytest.raises(ConfigError, match="unknown pooling 'bogus'"):
        extract_features(model, tok, data[0], pooling="bogus", cache=False)
    with pytest.raises(DataError, match=r"texts\[1\] is NoneType"):
        extract_features(model, tok, ["good", None], cache=False)
    with pytest.raises(DataError, match="3 feature rows but 2 labels"):
        train_head_on_features(model, np.zeros((3, 32)), [0, 1], training_args=_args(tmp_path))
    with pytest.raises(DataError, match="pooling='head'"):
        train_head_on_features(model, np.zeros((3, 16)), [0, 1, 2], training_args=_args(tmp_path))
    full = build_classifier(ModelArguments(str(model_dir)), TransferArguments(strategy="full"), LABELS)
    with pytest.raises(ConfigError, match="--strategy frozen"):
        train_head_on_features(full, np.zeros((3, 32)), [0, 1, 2], training_args=_args(tmp_path))
