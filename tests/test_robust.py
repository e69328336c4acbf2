"""Robust fine-tuning (nlptransfer/robust.py): L2-SP's loss term, WiSE-FT's interpolation and its choice of
alpha on validation only, LP-FT's linear probe, the recipe runs (train, save, reload) and the refused
combinations."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny import sentiment_rows, write_csv
from transformers import AutoTokenizer

from nlptransfer import ModelArguments, TransferArguments, cli
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.modeling import build_classifier
from nlptransfer.recipes import domain_adaptation, sentiment, text_classification
from nlptransfer.robust import interpolate, linear_probe, plain_state, wise_ft
from nlptransfer.trainers.contrastive import embed_texts
from nlptransfer.trainers.transfer import TransferTrainer, TransferTrainingArguments
from nlptransfer.trainers.transfer.trainer import l2sp_penalty, l2sp_reference

LABELS = ["negative", "neutral", "positive"]


def _model(model_dir, strategy: str = "full", pooling: str = "mean"):
    torch.manual_seed(0)
    return build_classifier(
        ModelArguments(str(model_dir), pooling=pooling, max_length=32),
        TransferArguments(strategy=strategy),
        LABELS,
    )


def _encoder_state(model) -> dict[str, torch.Tensor]:
    prefix = model.base_model_prefix + "."
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


def _head_state(model) -> dict[str, torch.Tensor]:
    prefix = model.base_model_prefix + "."
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(prefix)}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------- L2-SP


def test_l2sp_term_is_zero_at_theta_0_and_grows_away_from_it(model_dir):
    model = _model(model_dir)
    reference = l2sp_reference(model)
    names = {n for n, _ in model.named_parameters()}
    assert reference and all(p.requires_grad for p, _ in reference)
    head = {id(p) for n, p in model.named_parameters() if n.startswith("classifier.")}
    assert not head & {id(p) for p, _ in reference} and len(reference) < len(names)  # the head is free
    assert l2sp_penalty(reference).item() == 0.0
    first = reference[0][0]
    with torch.no_grad():
        first.add_(0.1)
    small = l2sp_penalty(reference).item()
    assert small == pytest.approx(0.01 * first.numel(), rel=1e-4)
    with torch.no_grad():
        first.add_(0.1)
    assert l2sp_penalty(reference).item() == pytest.approx(4 * small, rel=1e-4)
    # moving the head costs nothing
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    assert l2sp_penalty(reference).item() == pytest.approx(4 * small, rel=1e-4)


def _train(model_dir, tmp_path, weight: float):
    model = _model(model_dir)
    start = _encoder_state(model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = sentiment_rows(48, seed=2)
    data = Dataset.from_dict(
        {"text": [r["review"] for r in rows], "label": [LABELS.index(r["sentiment"]) for r in rows]}
    ).map(lambda b: tokenizer(b["text"], truncation=True, max_length=32), batched=True)
    args = TransferTrainingArguments(
        str(tmp_path / f"l2sp-{weight}"),
        l2sp_weight=weight,
        learning_rate=5e-3,
        max_steps=12,
        per_device_train_batch_size=8,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        seed=0,
    )
    trainer = TransferTrainer(
        model=model, args=args, train_dataset=data.remove_columns("text"), processing_class=tokenizer
    )
    trainer.train()
    end = _encoder_state(model)
    distance = sum(float((end[k] - start[k]).pow(2).sum()) for k in start)
    return trainer, distance


def test_a_large_l2sp_weight_stays_closer_to_theta_0(model_dir, tmp_path):
    plain, far = _train(model_dir, tmp_path, 0.0)
    pulled, near = _train(model_dir, tmp_path, 50.0)
    assert not plain.l2sp_reference and pulled.l2sp_reference
    assert near < 0.5 * far
    assert pulled.l2sp_distance() == pytest.approx(near, rel=1e-3)


def test_trainer_loss_is_the_task_loss_plus_half_w_times_the_distance(model_dir, tmp_path):
    model = _model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    args = TransferTrainingArguments(str(tmp_path / "w"), l2sp_weight=3.0, use_cpu=True, report_to="none")
    trainer = TransferTrainer(model=model, args=args, processing_class=tokenizer)
    inputs = dict(tokenizer(["good movie", "bad plot"], return_tensors="pt", padding=True))
    inputs["labels"] = torch.tensor([2, 0])
    with torch.no_grad():
        model.base_model.embeddings.word_embeddings.weight.add_(0.01)
    model.train()
    torch.manual_seed(0)
    task = trainer.task_loss(model, dict(inputs)).item()
    torch.manual_seed(0)
    total = trainer.compute_loss(model, dict(inputs)).item()
    distance = trainer.l2sp_distance()
    assert distance == pytest.approx(
        1e-4 * model.base_model.embeddings.word_embeddings.weight.numel(), rel=1e-3
    )
    assert total == pytest.approx(task + 0.5 * 3.0 * distance, rel=1e-5)
    model.eval()  # the evaluation loss is the task's alone
    assert trainer.compute_loss(model, dict(inputs)).item() == pytest.approx(
        trainer.task_loss(model, dict(inputs)).item()
    )


def test_l2sp_refuses_adapters_and_trainers_with_their_own_loss(model_dir, tmp_path):
    with pytest.raises(ConfigError, match="theta_0 is implicit"):
        l2sp_reference(_model(model_dir, "lora"))
    with pytest.raises(ConfigError, match="none of them trains"):
        l2sp_reference(_model(model_dir, "frozen"))

    class OwnLoss(TransferTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            raise AssertionError

    args = TransferTrainingArguments(str(tmp_path / "o"), l2sp_weight=1.0, use_cpu=True, report_to="none")
    with pytest.raises(ConfigError, match="OwnLoss computes its own"):
        OwnLoss(model=_model(model_dir), args=args)


# ------------------------------------------------------------------------------------------- WiSE


def _fine_tune_in_place(model, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))


def test_wise_alpha_0_is_the_pretrained_encoder_and_1_the_fine_tuned_one_exactly(model_dir):
    model = _model(model_dir)
    theta_0 = plain_state(model)
    _fine_tune_in_place(model)
    fine_tuned = {k: v.clone() for k, v in model.state_dict().items()}
    for alpha, keep_head in (("0", True), ("1", True), ("0", False), ("0.5", True)):
        model.load_state_dict(fine_tuned)
        record = wise_ft(model, theta_0, alpha, lambda: {}, metric=None, keep_head=keep_head)
        assert record["alpha"] == float(alpha) and "curve" not in record
        encoder, head = _encoder_state(model), _head_state(model)
        head_0 = {k: v for k, v in theta_0.items() if k in head}
        head_ft = {k: v for k, v in fine_tuned.items() if k in head}
        if alpha == "0":
            assert _same(encoder, {k: v for k, v in theta_0.items() if k in encoder})
            assert _same(head, head_ft if keep_head else head_0)  # the LP head is theta_0's with LP-FT
        elif alpha == "1":
            assert _same(encoder, {k: v for k, v in fine_tuned.items() if k in encoder}) and _same(
                head, head_ft
            )
        else:
            key = next(iter(encoder))
            assert torch.allclose(encoder[key], 0.5 * theta_0[key] + 0.5 * fine_tuned[key])
            assert _same(head, head_ft)
    # integer buffers come from the fine-tuned side; exactness holds for any float tensor
    ft = {"w": torch.tensor([0.1, 0.2, 0.3]), "ids": torch.tensor([3, 4])}
    t0 = {"w": torch.tensor([0.7, -1.3, 1e-8]), "ids": torch.tensor([0, 0])}
    assert torch.equal(interpolate(t0, ft, 0.0)["w"], t0["w"]) and torch.equal(
        interpolate(t0, ft, 1.0)["w"], ft["w"]
    )
    assert torch.equal(interpolate(t0, ft, 0.3)["ids"], ft["ids"])


def test_theta_0_of_a_mergeable_adapter_is_the_pretrained_model(model_dir):
    plain = plain_state(_model(model_dir, "full"))
    lora = _model(model_dir, "lora")
    theta_0 = plain_state(lora)
    assert _same(
        theta_0, plain
    )  # LoRA starts as the identity: merged = pretrained weights + the same new head
    assert type(lora).__name__.startswith("Peft")  # the copy was merged, not the model


def test_wise_auto_picks_the_best_validation_score_smaller_alpha_on_ties(model_dir):
    model = _model(model_dir)
    theta_0 = plain_state(model)
    _fine_tune_in_place(model)
    key = next(k for k in theta_0 if k.endswith("word_embeddings.weight"))
    target_gap = (model.state_dict()[key] - theta_0[key]).norm().item()

    def score():  # peaks at alpha 0.3, flat beyond 0.7 (ties)
        gap = (model.state_dict()[key] - theta_0[key]).norm().item() / target_gap
        return {"f1_micro": 1 - abs(gap - 0.3), "f1_macro": round(min(gap, 0.7), 3)}

    fine_tuned = {k: v.clone() for k, v in model.state_dict().items()}
    record = wise_ft(model, theta_0, "auto", score, metric=None, keep_head=True)
    assert record["alpha"] == 0.3 and record["metric"] == "f1_micro" and len(record["curve"]) == 11
    assert score()["f1_micro"] == pytest.approx(1.0)  # the model is left at the chosen alpha
    model.load_state_dict(fine_tuned)
    record = wise_ft(model, theta_0, "auto", score, metric="f1_macro", keep_head=True)
    assert record["alpha"] == 0.7 and record["curve"]["1.0"] == record["curve"]["0.7"]


# --------------------------------------------------------------------------------------------- LP


@pytest.mark.parametrize("pooling", ["mean", "pooler"])
def test_linear_probe_sets_the_head_and_leaves_the_encoder(model_dir, tmp_cache, pooling):
    from sklearn.linear_model import LogisticRegression

    model = _model(model_dir, pooling=pooling)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoder, head = _encoder_state(model), _head_state(model)
    rows = sentiment_rows(60, seed=4)
    texts, labels = [r["review"] for r in rows], [LABELS.index(r["sentiment"]) for r in rows]
    record = linear_probe(model, tokenizer, texts, labels, multilabel=False, seed=0, max_length=32)
    assert _same(_encoder_state(model), encoder)
    assert not _same(_head_state(model), head)
    # the head is the regression on what it reads (features up to float noise of batching)
    features = embed_texts(model, tokenizer, texts, 32)
    regression = LogisticRegression(max_iter=1000, random_state=0).fit(features, labels)
    assert record["logreg_train_accuracy"] == pytest.approx(regression.score(features, labels), abs=0.05)
    logits = features @ model.classifier.weight.detach().numpy().T + model.classifier.bias.detach().numpy()
    assert np.mean(logits.argmax(1) == regression.predict(features)) >= 0.95


def test_linear_probe_multilabel_one_regression_per_label(model_dir):
    model = _model(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = sentiment_rows(40, seed=5)
    texts = [r["review"] for r in rows]
    targets = np.array(
        [[r["sentiment"] == "negative", r["sentiment"] == "positive", True] for r in rows], float
    )
    record = linear_probe(model, tokenizer, texts, targets, multilabel=True, seed=0, max_length=32)
    features = embed_texts(model, tokenizer, texts, 32)
    logits = features @ model.classifier.weight.detach().numpy().T + model.classifier.bias.detach().numpy()
    assert (logits[:, 2] > 5).all()  # always on
    assert 0.5 < record["logreg_train_accuracy"] <= 1.0


# ------------------------------------------------------------------------------------------ recipes


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("data") / "reviews.csv", sentiment_rows(120))


COMMON = (
    "--text_column review --label_column sentiment --max_length 32 --per_device_train_batch_size 8 "
    "--use_cpu true --report_to none --eval_strategy no --save_strategy no --load_best_model_at_end false "
    "--eval_datasets none --max_steps 6 --learning_rate 5e-3"
).split()


def _argv(model_dir, data, out, *extra):
    paths = ["--model_name_or_path", str(model_dir), "--dataset", str(data), "--output_dir", str(out)]
    return [*paths, *COMMON, *extra]


def _reloaded_predictions_match(out: Path, tmp_path: Path) -> None:
    saved = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    rows = cli.cli(
        [
            "predict",
            "--model",
            str(out),
            "--input",
            str(out / "predictions.jsonl"),
            "--output",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert [r["label"] for r in rows] == [s["label"] for s in saved]
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in saved], abs=1e-4)


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_lp_ft_and_wise_auto_run_save_and_reload(model_dir, data_csv, tmp_path, tmp_cache, strategy):
    out = tmp_path / strategy
    extra = ["--strategy", strategy, "--lp_ft", "true", "--wise_alpha", "auto", "--pooling", "mean"]
    metrics = sentiment.main(_argv(model_dir, data_csv, out, *extra))
    robust = metrics["robust"]
    assert "logreg_train_accuracy" in robust["lp"] and "f1_micro" in robust["lp"]["validation"]
    assert robust["wise"]["theta_0_head"] == "linear probe" and len(robust["wise"]["curve"]) == 11
    assert metrics["train"]["lp_train_accuracy"] == robust["lp"]["logreg_train_accuracy"]
    assert metrics["train"]["wise_alpha"] == robust["wise"]["alpha"]
    # the chosen alpha's validation score is the run's validation score
    chosen = robust["wise"]["curve"][f"{robust['wise']['alpha']:.1f}"]
    assert metrics["validation"]["f1_micro"] == pytest.approx(chosen)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["robust"]["wise"]["alpha"] == robust["wise"]["alpha"]
    assert not (out / "adapter").exists()  # the interpolated model is a plain one, LoRA merged
    card = (out / "README.md").read_text()
    assert "LP-FT" in card and "WiSE-FT" in card and f"a = {robust['wise']['alpha']:.1f}" in card
    _reloaded_predictions_match(out, tmp_path)


def test_l2sp_run_records_the_distance(model_dir, data_csv, tmp_path):
    out = tmp_path / "l2sp"
    metrics = text_classification.main(_argv(model_dir, data_csv, out, "--l2sp_weight", "0.5"))
    assert metrics["robust"]["l2sp"]["weight"] == 0.5 and metrics["robust"]["l2sp"]["distance"] > 0
    assert "L2-SP" in (out / "README.md").read_text()
    plain = text_classification.main(_argv(model_dir, data_csv, tmp_path / "plain"))
    assert "robust" not in plain and "L2-SP" not in (tmp_path / "plain" / "README.md").read_text()


def _split_folder(root: Path, rows: list[dict], poison: bool) -> Path:
    root.mkdir(parents=True)
    write_csv(root / "train.csv", rows[:90])
    write_csv(root / "validation.csv", rows[90:120])
    test = [dict(r) for r in rows[120:]]
    if poison:  # every test label wrong: a run that looked at them would choose differently
        shift = {"negative": "positive", "neutral": "negative", "positive": "neutral"}
        test = [{**r, "sentiment": shift[r["sentiment"]]} for r in test]
    write_csv(root / "test.csv", test)
    return root


def test_wise_auto_chooses_on_validation_never_on_test(model_dir, tmp_path):
    rows = sentiment_rows(160, seed=7)
    random.Random(0).shuffle(rows)
    runs = {}
    for poison in (False, True):
        data = _split_folder(tmp_path / f"data-{poison}", rows, poison)
        runs[poison] = sentiment.main(
            _argv(model_dir, data, tmp_path / f"run-{poison}", "--wise_alpha", "auto", "--pooling", "mean")
        )
    clean, poisoned = runs[False], runs[True]
    assert clean["robust"]["wise"] == {
        **poisoned["robust"]["wise"],
        "seconds": clean["robust"]["wise"]["seconds"],
    }
    assert clean["validation"] == poisoned["validation"]
    # the test sets are keyed by their folder, which differs; each run has exactly one
    (clean_test,), (poisoned_test,) = clean["test"].values(), poisoned["test"].values()
    assert clean_test["f1_micro"] != poisoned_test["f1_micro"]  # the test labels did differ


# ----------------------------------------------------------------------------------- bad combinations


BAD = [
    (["--lp_ft", "true", "--strategy", "frozen"], "--strategy frozen trains only the head"),
    (["--wise_alpha", "auto", "--method", "logreg", "--strategy", "frozen"], "applies to --method finetune"),
    (
        ["--lp_ft", "true", "--method", "contrastive", "--examples_per_class", "4"],
        "applies to --method finetune",
    ),
    (["--l2sp_weight", "0.1", "--strategy", "lora"], "theta_0 is implicit"),
    (["--wise_alpha", "0.5", "--strategy", "prompt_tuning"], "does not merge"),
    (
        ["--wise_alpha", "0.5", "--strategy", "lora", "--merge_adapters", "false"],
        "drop --merge_adapters false",
    ),
    (["--wise_alpha", "1.2"], "must be a number in [0, 1] or auto"),
    (["--wise_alpha", "half"], "must be a number in [0, 1] or auto"),
    (["--l2sp_weight", "-1"], "l2sp_weight=-1.0 must be >= 0"),
    (["--lp_ft", "true", "--compare", "true"], "--compare compares plain strategies"),
]


@pytest.mark.parametrize(("flags", "expected"), BAD, ids=[" ".join(f) for f, _ in BAD])
@pytest.mark.parametrize("recipe", [sentiment, text_classification])
def test_bad_combinations_one_line_exit_2_nothing_written(
    model_dir, data_csv, tmp_path, capsys, recipe, flags, expected
):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(recipe.main, _argv(model_dir, data_csv, out, *flags))
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(errors) == 1 and err[-1] == errors[0], err[-5:]
    assert expected in errors[0], errors[0]
    assert not out.exists()


def test_domain_adaptation_refuses_the_robust_flags(tmp_path, capsys):
    out = tmp_path / "da"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(domain_adaptation.main, ["--output_dir", str(out), "--lp_ft", "true"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and "not domain_adaptation" in err[-1] and err[-1].startswith("error: ")
    assert not out.exists()


# ----------------------------------------------------------------------------------------- benchmark


def test_bench_robust_flags_parse_and_results_render():
    from benchmarks import bench_robust
    from nlptransfer.robust import check_robust

    parser = sentiment.make_parser()
    for variant in bench_robust.VARIANTS:
        argv = [*bench_robust.variant_flags(variant, 0.01), "--seed", "1"]
        _, _, transfer_args, fewshot, compare_args, _, training_args = parser.parse(argv)
        check_robust(transfer_args, fewshot, compare_args, training_args)
    assert parser.parse(bench_robust.variant_flags("l2sp", 0.01))[-1].l2sp_weight == 0.01
    results = []
    for variant, base, step in (("full", 0.60, 0.01), ("lp_ft_wise", 0.62, 0.01), ("l2sp", 0.55, 0.0)):
        for s in range(3):
            test = {d: {"f1_micro": base + step * s} for d in bench_robust.DOMAINS}
            test["vader-movies"] = {"f1_micro": 0.80 - (0.01 if variant == "lp_ft_wise" else 0.0)}
            results.append(
                {
                    "variant": variant,
                    "seed": s,
                    "test": test,
                    "wise_alpha": 0.5 if "wise" in variant else None,
                }
                | {"train_seconds": 60.0, "process_seconds": 70.0, "load_before": 0.5}
            )
    table = bench_robust.render(results)
    cells = [
        [c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("|")
    ]
    row = {r[0]: dict(zip(cells[0], r, strict=True)) for r in cells[2:]}
    assert row["lp_ft_wise"]["tweets vs full"].startswith("+0.020 (p=")
    assert row["lp_ft_wise"]["tweets micro-F1"] == "0.630 ± 0.010"
    assert row["lp_ft_wise"]["target met"] == "no"  # in-domain 1 point below full: outside the 0.5 points
    assert row["lp_ft_wise"]["alpha"] == "0.5, 0.5, 0.5" and row["l2sp"]["target met"] == "no"
    results = [r for r in results if r["variant"] != "l2sp"]
    for r in results:
        if r["variant"] == "lp_ft_wise":
            r["test"]["vader-movies"]["f1_micro"] = 0.797  # 0.3 points below: within the tolerance
    assert "| yes " in bench_robust.render(results)
    # --baseline: every variant paired with another one (LP-FT with its pooling control)
    table = bench_robust.render(results, baseline="lp_ft_wise")
    cells = [
        [c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("|")
    ]
    row = {r[0]: dict(zip(cells[0], r, strict=True)) for r in cells[2:]}
    assert row["full"]["tweets vs lp_ft_wise"].startswith("-0.020 (p=")
    assert row["lp_ft_wise"]["tweets vs lp_ft_wise"] == "-" and row["lp_ft_wise"]["target met"] == "-"
    assert "vs full" not in table
