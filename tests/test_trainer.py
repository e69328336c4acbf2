"""TransferTrainer on a tiny BERT: which weights move, learning-rate groups, unfreezing, weighted loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datasets import ClassLabel, Dataset
from tiny import sentiment_rows
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from nlptransfer import TransferArguments, TransferTrainer, TransferTrainingArguments
from nlptransfer.modeling import apply_strategy
from nlptransfer.trainers import balanced_class_weights, layer_groups


def _data(model_dir, n=24):
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = sentiment_rows(n)
    names = ["negative", "neutral", "positive"]
    ds = Dataset.from_dict(
        {"text": [r["review"] for r in rows], "label": [names.index(r["sentiment"]) for r in rows]}
    )
    ds = ds.cast_column("label", ClassLabel(names=names))
    return tok, ds.map(lambda b: tok(b["text"], truncation=True, max_length=32), batched=True).remove_columns(
        "text"
    )


def _train(model_dir, tmp_path, strategy="full", **kw):
    tok, ds = _data(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3)
    model = apply_strategy(model, TransferArguments(strategy=strategy))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = TransferTrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=kw.pop("max_steps", 4),
        per_device_train_batch_size=8,
        learning_rate=kw.pop("learning_rate", 1e-2),
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
        **kw,
    )
    trainer = TransferTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok),
    )
    trainer.train()
    moved = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    return trainer, model, moved


def test_full_finetuning_moves_every_group(model_dir, tmp_path):
    _, model, moved = _train(model_dir, tmp_path)
    groups = layer_groups(model)
    assert len(groups) == 4  # embeddings, 2 layers, head
    for group in groups:
        assert set(group) & moved, f"no weight moved in group starting {group[0]}"


def test_frozen_strategy_trains_only_the_head(model_dir, tmp_path):
    _, model, moved = _train(model_dir, tmp_path, strategy="frozen")
    assert moved and all(not n.startswith("bert.") for n in moved)
    assert {"classifier.weight", "classifier.bias"} <= moved


def test_freeze_embeddings(model_dir, tmp_path):
    _, model, moved = _train(model_dir, tmp_path, freeze_embeddings=True)
    emb = set(layer_groups(model)[0])
    assert emb and not emb & moved
    assert any(".layer.0." in n for n in moved)


def test_layerwise_lr_decay_param_groups(model_dir, tmp_path):
    trainer, model, _ = _train(model_dir, tmp_path, layerwise_lr_decay=0.5, max_steps=1, learning_rate=1e-2)
    by_param = {}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            by_param[id(p)] = group["initial_lr"] if "initial_lr" in group else group["lr"]
    params = dict(model.named_parameters())
    lr = lambda name: by_param[id(params[name])]  # noqa: E731
    assert lr("classifier.weight") == pytest.approx(1e-2)
    assert lr("bert.encoder.layer.1.attention.self.query.weight") == pytest.approx(5e-3)
    assert lr("bert.encoder.layer.0.attention.self.query.weight") == pytest.approx(2.5e-3)
    assert lr("bert.embeddings.word_embeddings.weight") == pytest.approx(1.25e-3)


def test_gradual_unfreezing_schedule(model_dir, tmp_path):
    # Unfreeze one group every 2 steps; 3 steps => head, then layer 1 joins; layer 0 and embeddings stay put.
    _, model, moved = _train(model_dir, tmp_path, gradual_unfreezing_steps=2, max_steps=3)
    groups = layer_groups(model)
    assert set(groups[-1]) & moved and set(groups[2]) & moved
    assert not set(groups[1]) & moved and not set(groups[0]) & moved


def test_class_weighted_loss_matches_manual(model_dir, tmp_path):
    tok, ds = _data(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3).eval()
    weights = torch.tensor([1.0, 3.0, 0.5])
    args = TransferTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = TransferTrainer(
        model=model, args=args, train_dataset=ds, processing_class=tok, class_weights=weights
    )
    batch = DataCollatorWithPadding(tok)([ds[i] for i in range(6)])
    batch["labels"] = batch.pop("label") if "label" in batch else batch["labels"]
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert loss.item() == pytest.approx(
        F.cross_entropy(logits, batch["labels"], weight=weights).item(), rel=1e-5
    )
    assert trainer.model_accepts_loss_kwargs is False


def test_balanced_class_weights_from_labels():
    ds = Dataset.from_dict({"label": [0, 0, 0, 1]}).cast_column("label", ClassLabel(names=["a", "b", "c"]))
    w = balanced_class_weights(ds)
    assert w.tolist() == pytest.approx([4 / 6, 4 / 2, 1.0])  # absent class c keeps weight 1


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_accumulation_is_scaled_once(model_dir, tmp_path, weighted):
    """GA=2 x batch 4 must give the same update as GA=1 x batch 8 (equal-size micro-batches).

    Unweighted is the default path: BERT's head takes **kwargs, which the Trainer reads as "normalises its
    own loss", and would then skip the division by gradient_accumulation_steps.
    """
    tok, ds = _data(model_dir, n=8)
    results = []
    for bs, ga in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )
        args = TransferTrainingArguments(
            output_dir=str(tmp_path / f"ga{ga}"),
            max_steps=1,
            per_device_train_batch_size=bs,
            gradient_accumulation_steps=ga,
            learning_rate=0.1,
            optim="sgd",
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            train_sampling_strategy="sequential",
        )
        trainer = TransferTrainer(
            model=model,
            args=args,
            train_dataset=ds,
            processing_class=tok,
            data_collator=DataCollatorWithPadding(tok),
            class_weights=torch.ones(3) if weighted else None,
        )
        assert trainer.model_accepts_loss_kwargs is False
        trainer.train()
        results.append(model.classifier.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-4, atol=1e-6)


def test_balanced_weights_multilabel_are_pos_weights():
    ds = Dataset.from_dict({"labels": [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]})
    assert balanced_class_weights(ds).tolist() == pytest.approx(
        [1 / 3, 3.0, 1.0]
    )  # neg/pos; never-positive: 1


def test_balanced_weights_on_torch_formatted_labels():
    ds = Dataset.from_dict({"labels": [0, 0, 0, 1]}).cast_column("labels", ClassLabel(names=["a", "b"]))
    assert balanced_class_weights(ds.with_format("torch")).tolist() == pytest.approx([4 / 6, 2.0])


def test_best_model_ties_are_broken_by_validation_loss(model_dir, tmp_path):
    """Macro-F1 equal to the 4th decimal at every epoch: the kept checkpoint is the lowest-loss one (the Trainer
    alone keeps the first: a later metric must be strictly higher)."""
    tok, ds = _data(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=3)
    scores = iter([0.50004, 0.5, 0.50002, 0.49999])  # a tie within 1e-4 at every evaluation

    def metrics(_):
        return {"f1_macro": next(scores)}

    args = TransferTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=4,
        per_device_train_batch_size=8,
        learning_rate=2e-3,
        report_to="none",
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        use_cpu=True,
        seed=0,
    )
    trainer = TransferTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        eval_dataset=ds,
        processing_class=tok,
        data_collator=DataCollatorWithPadding(tok),
        compute_metrics=metrics,
    )
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert len(evals) == 4
    lowest = min(evals, key=lambda e: e["eval_loss"])
    assert lowest["step"] != evals[0]["step"]  # else the test could not tell the tie-break from the Trainer
    assert trainer.state.best_global_step == lowest["step"]
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{lowest['step']}")
    assert trainer.state.best_metric == pytest.approx(lowest["eval_f1_macro"])


def test_a_clearly_better_metric_still_wins_over_a_lower_loss():
    from nlptransfer.trainers.tie_break import is_better

    assert is_better(0.6, 0.9, (0.5, 0.1), greater=True)  # +0.1 macro-F1 beats any loss
    assert not is_better(0.50005, 0.9, (0.5, 0.1), greater=True)  # a tie: the higher loss loses
    assert is_better(0.49995, 0.05, (0.5, 0.1), greater=True)  # a tie: the lower loss wins
    assert is_better(0.3, None, (0.5, None), greater=False)  # lower-is-better metrics
