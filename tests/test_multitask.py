"""Multi-task learning on tiny models: per-task gradients, sampling proportions, save/reload, the recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from tiny import previous_run, sentiment_rows, tiny_model_dir, write_csv
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, pipeline

from nlptransfer import ConfigError, DataError, MultiTaskTrainer
from nlptransfer.data.multitask import (
    MultiTaskBatchSampler,
    MultiTaskDataset,
    encode_tasks,
    load_tasks,
    parse_tasks,
    references,
    task_probabilities,
)
from nlptransfer.errors import run_cli
from nlptransfer.modeling.multitask import MultiTaskModel, adapt_encoder, predict_task, task_metrics
from nlptransfer.recipes import multitask as recipe
from nlptransfer.trainers.multitask import MultiTaskTrainingArguments

SCORES = {"negative": -2.0, "neutral": 0.0, "positive": 2.0}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny encoder, three tasks (3-class, binary, regression on the 3-class file) and their data."""
    root = tmp_path_factory.mktemp("mt")
    model_dir = tiny_model_dir(root)
    rows = sentiment_rows(90)
    for i, row in enumerate(rows):
        row["score"] = SCORES[row["sentiment"]] + (i % 5) / 10
    a = write_csv(root / "a.csv", rows)
    b = write_csv(root / "b.csv", sentiment_rows(60, seed=1, neutral=False))
    specs = [
        {"name": "three", "dataset": str(a), "text_column": "review", "label_column": "sentiment"},
        {
            "name": "two",
            "dataset": str(b),
            "text_column": "review",
            "label_column": "sentiment",
            "weight": 0.5,
        },
        {
            "name": "rating",
            "dataset": str(a),
            "text_column": "review",
            "label_column": "score",
            "type": "regression",
        },
    ]
    tasks = parse_tasks(specs)
    splits = load_tasks(tasks)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return {
        "root": root,
        "model_dir": model_dir,
        "specs": specs,
        "tasks": tasks,
        "splits": splits,
        "tok": tokenizer,
    }


def _model(setup, seed=0):
    torch.manual_seed(seed)
    return MultiTaskModel.from_encoder(str(setup["model_dir"]), setup["tasks"])


def test_tasks_on_one_dataset_share_its_split(setup):
    three, rating = setup["splits"]["three"], setup["splits"]["rating"]
    for split in ("train", "validation", "test"):  # no test row of one task is a training row of the other
        assert list(three[split]["text"]) == list(rating[split]["text"])
    task = setup["tasks"][2]
    assert task.target_std > 0 and rating["train"].features["label"].dtype == "float32"


def test_each_head_gets_gradients_only_from_its_own_batches(setup):
    model = _model(setup)
    data = MultiTaskDataset(encode_tasks(setup["splits"], setup["tasks"], setup["tok"], "train", 32))
    sampler = MultiTaskBatchSampler(data.sizes, 8, "round_robin", seed=0)
    collate = DataCollatorWithPadding(setup["tok"])
    seen = set()
    for rows in list(sampler)[:6]:
        batch = collate([data[i] for i in rows])
        task = int(batch["task_ids"][0])
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        for i, (name, head) in enumerate(model.heads.items()):
            got = head.weight.grad is not None and head.weight.grad.abs().sum() > 0
            assert got == (i == task), f"head {name} on a batch of task {task}"
        assert (
            model.encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0
        )  # the shared encoder learns
        seen.add(task)
    assert seen == {0, 1, 2}


def test_a_batch_mixing_tasks_is_refused(setup):
    model = _model(setup)
    ids = torch.tensor([[2, 5, 3], [2, 6, 3]])
    with pytest.raises(ValueError, match="single task"):
        model(ids, task_ids=torch.tensor([0, 1]))


@pytest.mark.parametrize(
    ("strategy", "temperature", "expected"),
    [
        ("proportional", 1.0, [0.1, 0.3, 0.6]),
        ("temperature", 2.0, np.sqrt([100, 300, 600]) / np.sqrt([100, 300, 600]).sum()),
        ("temperature", 1.0, [0.1, 0.3, 0.6]),  # T=1 is proportional
        ("round_robin", 1.0, [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_sampling_proportions_match_the_configuration(strategy, temperature, expected):
    sizes = [100, 300, 600]
    np.testing.assert_allclose(task_probabilities(sizes, strategy, temperature), expected, atol=1e-9)
    sampler = MultiTaskBatchSampler(sizes, 10, strategy, temperature, seed=3, num_batches=6000)
    offsets = np.cumsum([0] + sizes)
    counts = np.zeros(3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 6000
    for rows in batches:
        task = int(np.searchsorted(offsets, rows[0], side="right") - 1)
        assert offsets[task] <= min(rows) and max(rows) < offsets[task + 1]  # one task per batch
        counts[task] += 1
    np.testing.assert_allclose(counts / counts.sum(), expected, atol=0.02)
    if strategy == "round_robin":
        assert [int(np.searchsorted(offsets, b[0], side="right") - 1) for b in batches[:6]] == [
            0,
            1,
            2,
            0,
            1,
            2,
        ]


def test_an_epoch_covers_every_row_once_per_pass():
    sampler = MultiTaskBatchSampler([25, 7], 10, "round_robin", seed=0)
    assert len(sampler) == 3 + 1
    first, second = list(sampler), list(sampler)
    assert first != second  # each pass reshuffles
    rows = sorted(i for b in first if b[0] < 25 for i in b)
    assert rows == sorted(set(rows))  # no row twice before its task's data runs out


def test_save_reload_restores_every_head_and_exports_plain_classifiers(setup, tmp_path):
    model = _model(setup)
    for head in model.heads.values():  # non-trivial heads
        torch.nn.init.normal_(head.weight, std=0.5)
    model.eval()
    texts = ["good great movie", "awful boring plot", "the film"]
    before = {t.name: predict_task(model, setup["tok"], t.name, texts) for t in setup["tasks"]}
    model.save_pretrained(tmp_path / "mt", setup["tok"])
    assert {"encoder", "heads.safetensors", "multitask_config.json"} <= {
        p.name for p in (tmp_path / "mt").iterdir()
    }
    again = MultiTaskModel.from_pretrained(tmp_path / "mt").eval()
    for task in setup["tasks"]:
        np.testing.assert_allclose(
            predict_task(again, setup["tok"], task.name, texts), before[task.name], rtol=1e-5
        )
    # Every task as an ordinary classifier: same logits, regression in the target's units.
    model.export_task("rating", tmp_path / "rating", setup["tok"])
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rating").eval()
    with torch.no_grad():
        out = plain(**setup["tok"](texts, return_tensors="pt", padding=True)).logits.reshape(-1).numpy()
    np.testing.assert_allclose(out, before["rating"], rtol=1e-4, atol=1e-5)
    model.export_task("three", tmp_path / "three", setup["tok"])
    clf = pipeline("text-classification", model=str(tmp_path / "three"))
    names = setup["tasks"][0].label_names
    assert [r["label"] for r in clf(texts)] == [names[i] for i in before["three"]]


def test_trainer_learns_and_reports_per_task_and_combined_metrics(setup, tmp_path):
    model = _model(setup)
    trainer = MultiTaskTrainer(
        model=model,
        args=MultiTaskTrainingArguments(
            str(tmp_path / "out"),
            max_steps=12,
            per_device_train_batch_size=8,
            learning_rate=5e-3,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            task_sampling="temperature",
        ),
        train_dataset=MultiTaskDataset(
            encode_tasks(setup["splits"], setup["tasks"], setup["tok"], "train", 32)
        ),
        eval_dataset=encode_tasks(setup["splits"], setup["tasks"], setup["tok"], "validation", 32),
        processing_class=setup["tok"],
    )
    before = {n: h.weight.detach().clone() for n, h in model.heads.items()}
    trainer.train()
    assert all(not torch.equal(before[n], h.weight) for n, h in model.heads.items())
    metrics = trainer.evaluate()
    primaries = [metrics["eval_three_f1_macro"], metrics["eval_two_f1_macro"], metrics["eval_rating_pearson"]]
    assert metrics["eval_combined"] == pytest.approx(np.mean(primaries))
    assert "eval_rating_rmse" in metrics


def test_lora_on_the_shared_encoder_trains_adapters_and_heads_only(setup, tmp_path):
    model = adapt_encoder(_model(setup), "lora", lora_r=2, target_modules=["query", "value"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("heads.") for n in trainable)
    assert any(n.startswith("heads.") for n in trainable)
    model.eval()
    texts = ["good great movie", "awful plot"]
    before = predict_task(model, setup["tok"], "three", texts)
    model.save_pretrained(tmp_path / "lora", setup["tok"])
    assert (tmp_path / "lora" / "encoder_adapter" / "adapter_config.json").is_file()
    again = MultiTaskModel.from_pretrained(tmp_path / "lora").eval()  # the merged encoder is a plain model
    np.testing.assert_array_equal(predict_task(again, setup["tok"], "three", texts), before)


# ----------------------------------------------------------------------------------------- bad input


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(recipe.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(errors) == 1 and err[-1] == errors[0]
    assert not any("Traceback" in line for line in err)
    return errors[0]


def test_task_name_used_twice_is_one_line_exit_2(setup, tmp_path, capsys):
    specs = [setup["specs"][0], {**setup["specs"][1], "name": "three"}]
    line = _run(["--tasks", json.dumps(specs), "--output_dir", str(tmp_path / "o")], capsys)
    assert "task name 'three' is used twice" in line
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="used twice"):
        parse_tasks(specs)


@pytest.mark.parametrize(
    "name",
    ["a.b", "../escape", "/abs/path", "sub/dir", "", " x", "-lead", "x" * 65, "tâche", True, 1.5, ["x"]],
)
def test_task_names_must_be_safe_identifiers(name):
    """Issue 15 #1: a task name becomes `tasks/<name>/`; 'a.b' ended in a KeyError traceback."""
    with pytest.raises(ConfigError) as err:
        parse_tasks([{"name": name, "dataset": "d"}])
    assert "\n" not in str(err.value)
    if name:
        assert "used as a folder name" in str(err.value)


def test_an_absolute_path_task_name_is_refused_before_anything_is_written(setup, tmp_path, capsys):
    target = tmp_path / "elsewhere"
    for name in (str(target), "a.b"):
        cfg = tmp_path / "c.yaml"
        spec = {**setup["specs"][0], "name": name}
        cfg.write_text(yaml.safe_dump({"tasks": [spec, setup["specs"][1]]}), encoding="utf-8")
        out = tmp_path / "o"
        argv = [
            "--config",
            str(cfg),
            "--model_name_or_path",
            str(setup["model_dir"]),
            "--output_dir",
            str(out),
        ]
        line = _run(argv, capsys)
        assert f"has name {name!r}" in line and "used as a folder name" in line
        assert not out.exists() and not target.exists()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"label_column": "none"}, "has no labels"),
        ({"type": "regression", "label_column": "stars"}, "has no labels: no column 'stars'"),
        ({"type": "regression", "label_column": "sentiment"}, "has no labels: column 'sentiment' holds no"),
        ({"label_column": "rating"}, "rating"),  # load_source names the missing column
    ],
)
def test_a_task_without_labels_is_refused(setup, tmp_path, capsys, change, match):
    spec = {**setup["specs"][1], **change}
    with pytest.raises(DataError, match=match):
        load_tasks(parse_tasks([spec]))
    line = _run(["--tasks", json.dumps([spec]), "--output_dir", str(tmp_path / "o")], capsys)
    assert match.split(":")[0] in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ([], "non-empty list"),
        (
            [{"name": "x", "dataset": "d", "wieght": 2}],
            "unknown key 'wieght' in tasks\\[0\\]; did you mean 'weight'",
        ),
        ([{"name": "x", "dataset": "d", "type": "ranking"}], "unknown type 'ranking'"),
        ([{"name": "x", "dataset": "d", "weight": 0}], "positive number"),
        ([{"name": "x", "dataset": "d", "weight": float("inf")}], "positive number"),  # an inf/nan loss
        # a task's 0 silently fell back to --max_train_samples; "100" was a TypeError traceback in subsample
        ([{"name": "x", "dataset": "d", "max_train_samples": 0}], "max_train_samples 0; use a positive"),
        ([{"name": "x", "dataset": "d", "max_train_samples": "100"}], "max_train_samples '100'"),
        ([{"name": "x", "dataset": "d", "max_eval_samples": -3}], "max_eval_samples -3"),
        ([{"name": "x", "dataset": "d", "max_eval_samples": 2.5}], "max_eval_samples 2.5"),
        ([{"dataset": "d"}], "has no name"),
    ],
)
def test_bad_task_lists(specs, match):
    with pytest.raises(ConfigError, match=match):
        parse_tasks(specs)


def test_an_encoder_in_the_output_dir_is_refused_and_kept(setup, tmp_path, capsys):
    """`--model_name_or_path <run>/encoder --output_dir <run> --overwrite_output_dir`: the previous run's files
    were removed, then the next seed / single-task control failed to rebuild the encoder from them."""
    out = tmp_path / "run"
    files = previous_run(out, setup["model_dir"], "encoder")
    argv = ["--tasks", json.dumps(setup["specs"]), "--model_name_or_path", str(out / "encoder")]
    line = _run(
        [*argv, "--output_dir", str(out), "--overwrite_output_dir", "true", "--max_steps", "2"], capsys
    )
    assert "--model_name_or_path" in line and "is inside --output_dir" in line
    assert all(f.is_file() for f in files)


# ----------------------------------------------------------------------------------------- recipe


def test_recipe_end_to_end_on_tiny_models(setup, tmp_path):
    out = tmp_path / "run"
    metrics = recipe.main(
        [
            "--model_name_or_path",
            str(setup["model_dir"]),
            "--tasks",
            json.dumps(setup["specs"]),
            "--output_dir",
            str(out),
            "--num_train_epochs",
            "1",
            "--per_device_train_batch_size",
            "8",
            "--learning_rate",
            "5e-3",
            "--use_cpu",
            "true",
            "--eval_strategy",
            "no",
            "--max_length",
            "32",
            "--single_task_budget",
            "steps",
            "--seeds",
            "1",
        ]
    )
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    for f in (
        "heads.safetensors",
        "multitask_config.json",
        "encoder/model.safetensors",
        "metrics.json",
        "README.md",
        "results.md",
        "tasks/three/model.safetensors",
        "tasks/rating/config.json",
    ):
        assert f in run["files"] and (out / f).is_file()
    assert set(metrics["summary"]) == {"three", "two", "rating"}
    for row in metrics["summary"].values():
        assert len(row["multitask"]) == len(row["single_task"]) == 1
        assert row["delta"][0] == pytest.approx(row["multitask"][0] - row["single_task"][0])
    assert "Δ (multi - single)" in (out / "results.md").read_text()
    steps = metrics["runs"][0]["multitask_train"]["steps"]  # 1 epoch over all three tasks' batches
    assert steps > 3 and all(f["steps"] == steps for f in metrics["runs"][0]["single_task_train"].values())
    # The saved model reproduces the run's test figure for the regression task.
    model = MultiTaskModel.from_pretrained(out)
    splits = load_tasks(parse_tasks(setup["specs"]))

    test = splits["rating"]["test"]
    preds = predict_task(
        model, AutoTokenizer.from_pretrained(out / "encoder"), "rating", list(test["text"]), max_length=32
    )
    got = task_metrics(model.tasks[2], preds, references(model.tasks[2], test))["pearson"]
    assert got == pytest.approx(metrics["runs"][0]["multitask"]["rating"]["pearson"], abs=1e-5)


def test_a_bad_lora_target_fails_before_any_file_is_written(setup, tmp_path, capsys):
    argv = [
        "--model_name_or_path",
        str(setup["model_dir"]),
        "--tasks",
        json.dumps(setup["specs"][:1]),
        "--strategy",
        "lora",
        "--target_modules",
        "nope",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    assert "LoRA cannot be applied to the encoder" in _run(argv, capsys)
    assert not (tmp_path / "o").exists()


def test_activation_checkpointing_runs_through_the_shared_encoder(setup, tmp_path):
    """--activation_checkpointing true made the Trainer call a method MultiTaskModel lacked (a traceback)."""
    out = tmp_path / "ckpt"
    argv = ["--model_name_or_path", str(setup["model_dir"]), "--tasks", json.dumps(setup["specs"][:2])]
    argv += ["--output_dir", str(out), "--max_steps", "2", "--use_cpu", "true", "--max_length", "32"]
    argv += ["--compare_single_task", "false", "--activation_checkpointing", "true", "--report_to", "none"]
    recipe.main(argv)
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    model = MultiTaskModel.from_pretrained(out)
    model.activation_checkpointing_enable()
    assert model.base_encoder.is_activation_checkpointing


def test_batch_eval_metrics_give_the_whole_split_metrics(setup, tmp_path):
    """--batch_eval_metrics true: the per-task compute_metrics refused compute_result (a TypeError traceback)."""
    argv = ["--model_name_or_path", str(setup["model_dir"]), "--tasks", json.dumps(setup["specs"])]
    argv += ["--max_steps", "2", "--use_cpu", "true", "--max_length", "32", "--compare_single_task", "false"]
    argv += ["--report_to", "none", "--eval_strategy", "steps", "--eval_steps", "2"]
    argv += ["--per_device_eval_batch_size", "4", "--seed", "3"]
    whole = recipe.main([*argv, "--output_dir", str(tmp_path / "whole")])
    batched = recipe.main([*argv, "--output_dir", str(tmp_path / "batched"), "--batch_eval_metrics", "true"])

    def evals(metrics):
        return [
            e
            for e in json.dumps(metrics["runs"][0], sort_keys=True).split(", ")
            if '"eval_' in e and "_per_second" not in e and "runtime" not in e
        ]

    assert evals(batched) and evals(batched) == evals(whole)


# ------------------------------------------------------------------ issue 19: compute-matched controls, verdicts


def _mt_argv(setup, out, *extra):
    argv = ["--model_name_or_path", str(setup["model_dir"]), "--tasks", json.dumps(setup["specs"])]
    argv += ["--output_dir", str(out), "--per_device_train_batch_size", "8", "--learning_rate", "5e-3"]
    argv += ["--use_cpu", "true", "--eval_strategy", "no", "--max_length", "32", "--report_to", "none"]
    return [*argv, *extra]


@pytest.mark.parametrize("budget", ["steps", "task_steps", "5"])
def test_compute_matched_controls_get_exactly_the_budgeted_optimizer_steps(setup, tmp_path, budget):
    """Every single-task control's optimizer steps (the Trainer's state.global_step) equal the multi-task
    run's (steps), the batches it drew from that task (task_steps), or N."""
    metrics = recipe.main(
        _mt_argv(setup, tmp_path / "run", "--single_task_budget", budget, "--seeds", "1", "--max_steps", "9")
    )
    run = metrics["runs"][0]
    mt = run["multitask_train"]
    assert mt["steps"] == 9 and sum(mt["task_batches"].values()) == 9  # one batch per optimizer step
    for task, fit in run["single_task_train"].items():
        expected = {"steps": 9, "task_steps": mt["task_batches"][task], "5": 5}[budget]
        assert fit["steps"] == expected, (task, fit["steps"], expected)
        assert fit["task_batches"] == {task: expected}


def _fit_round_robin(setup, tmp_path, **extra) -> dict:
    """6 optimizer steps of the three tiny tasks in turn (round robin), as the recipe's controls run them."""
    from nlptransfer.trainers.multitask import fit_multitask

    train = encode_tasks(setup["splits"], setup["tasks"], setup["tok"], "train", 32)
    validation = encode_tasks(setup["splits"], setup["tasks"], setup["tok"], "validation", 32)
    args = MultiTaskTrainingArguments(
        str(tmp_path),
        max_steps=6,
        per_device_train_batch_size=8,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        task_sampling="round_robin",
        eval_strategy="no",
        **extra,
    )
    return fit_multitask(_model(setup), setup["tasks"], train, validation, setup["tok"], args, seed=0)


def test_task_batches_count_what_the_trainer_trained_on(setup, tmp_path):
    fit = _fit_round_robin(setup, tmp_path)
    assert fit["steps"] == 6 and fit["task_batches"] == {"three": 2, "two": 2, "rating": 2}  # in turn
    assert "uncertainty_weights" not in fit


def test_uncertainty_weighting_learns_a_weight_per_task(setup, tmp_path):
    fit = _fit_round_robin(setup, tmp_path, loss_weighting="uncertainty")  # log-variances at 1e-2
    weights = fit["uncertainty_weights"]
    assert set(weights) == {"three", "two", "rating"} and all(abs(w - 1.0) > 1e-3 for w in weights.values())
    with pytest.raises(ConfigError, match="unknown loss_weighting 'equal'"):
        MultiTaskTrainingArguments(str(tmp_path), loss_weighting="equal")


def test_sharing_verdicts_flag_a_loss_beyond_seed_noise(caplog):
    from nlptransfer.evaluation.sharing import sharing_verdict

    with caplog.at_level("WARNING", logger="nlptransfer"):
        hurts = sharing_verdict("amazon", "f1_macro", [0.51, 0.50, 0.53], [0.60, 0.61, 0.58])
    assert hurts["outcome"] == "HURTS" and hurts["negative_transfer"] and hurts["p_value"] < 0.05
    assert "NEGATIVE TRANSFER: multi-task amazon" in caplog.text
    helps = sharing_verdict("t", "f1_macro", [0.60, 0.61, 0.58], [0.51, 0.50, 0.53])
    assert helps["outcome"] == "helps" and not helps["negative_transfer"]
    noise = sharing_verdict("t", "pearson", [0.5, 0.6, 0.55], [0.5, 0.5, 0.6])
    assert noise["outcome"] == "within noise" and noise["p_value"] > 0.05
    assert sharing_verdict("t", "f1_macro", [0.5, 0.6], [0.4, 0.7])["outcome"] == "too few seeds"
    one = sharing_verdict("t", "f1_macro", [0.1], [0.9])
    assert one["outcome"] == "no noise estimate" and not one["negative_transfer"] and one["p_value"] is None


def test_three_seeds_give_a_verdict_per_task_in_the_table(setup, tmp_path):
    out = tmp_path / "run"
    metrics = recipe.main(_mt_argv(setup, out, "--seeds", "3", "--max_steps", "3"))
    assert [r["seed"] for r in metrics["runs"]] == [42, 43, 44]
    for row in metrics["summary"].values():
        verdict = row["verdict"]
        assert verdict["n_seeds"] == 3 and verdict["outcome"] in ("helps", "HURTS", "within noise")
        assert verdict["delta"] == pytest.approx(np.mean(row["multitask"]) - np.mean(row["single_task"]))
    table = (out / "results.md").read_text()
    assert "p (paired)" in table and "sharing" in table
    assert (
        "Single-task controls: the same encoder and head trained on that task alone for as many optimizer"
        in (out / "README.md").read_text()
    )


@pytest.mark.parametrize(
    ("budget", "match"),
    [("0", "single_task_budget=0 must be >= 1"), ("lots", "unknown single_task_budget 'lots'")],
)
def test_a_bad_single_task_budget_is_one_line_exit_2(setup, tmp_path, capsys, budget, match):
    line = _run(_mt_argv(setup, tmp_path / "o", "--single_task_budget", budget), capsys)
    assert match in line and not (tmp_path / "o").exists()


def test_controls_train_the_plain_task_loss_for_their_budget(tmp_path):
    """Whatever the multi-task run's loss weighting, a control trains its task's plain loss for its budget."""
    from nlptransfer.trainers.multitask.controls import single_task_args

    args = MultiTaskTrainingArguments(
        str(tmp_path), loss_weighting="uncertainty", report_to="none", use_cpu=True
    )
    fit = {"steps": 12, "task_batches": {"a": 7, "b": 5}}
    for budget, steps in (("steps", 12), ("task_steps", 7), ("3", 3)):
        control = single_task_args(args, budget, fit, "a")
        assert control.loss_weighting == "fixed" and control.max_steps == steps
    assert single_task_args(args, "epochs", fit, "a").max_steps == args.max_steps
    assert single_task_args(args, "task_steps", {"steps": 12, "task_batches": {"a": 0}}, "a") is None
