"""`--hpo_trials`: Trainer.hyperparameter_search with optuna in the classification recipes, on a tiny model."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import yaml
from tiny import review_argv, sentiment_rows, write_csv
from transformers import AutoModelForSequenceClassification, pipeline

from nlptransfer import TransferArguments, TransferTrainer, TransferTrainingArguments, hpo
from nlptransfer.config import CompareArguments
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.hpo import check_hpo, startup_trials, trial_rows
from nlptransfer.recipes import sentiment, text_classification
from nlptransfer.reporting.figures import hpo_figure
from nlptransfer.trainers.contrastive import FewShotArguments

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
}


@pytest.fixture
def data_csv(tmp_path):
    return write_csv(tmp_path / "reviews.csv", sentiment_rows(90))


def _argv(model_dir, data_csv, out, *extra):
    # an evaluation after every step: each trial reports (and may be pruned) twice
    steps = ["--eval_strategy", "steps", "--eval_steps", "1", "--per_device_eval_batch_size", "16"]
    return review_argv(model_dir, data_csv, out, *steps, "--report_to", "none", *extra)


def _trials(out) -> list[dict]:
    with (out / "hpo_trials.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_search_writes_its_trials_and_saves_the_best_trial_as_a_loadable_run(model_dir, data_csv, tmp_path):
    out = tmp_path / "run"
    metrics = sentiment.main(
        _argv(model_dir, data_csv, out, "--hpo_trials", "2", "--hpo_space", json.dumps(SPACE))
    )
    rows = _trials(out)
    assert [r["trial"] for r in rows] == ["0", "1"]
    assert {"state", "validation_f1_macro", "seconds", "learning_rate", "weight_decay"} <= set(rows[0])
    assert all(r["state"] in ("COMPLETE", "PRUNED") for r in rows)
    assert (out / "hpo_trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete"
    assert {"hpo_trials.csv", "hpo_trials.png", "model.safetensors"} <= set(record["files"])

    # The run was trained with the best trial's values: metrics.json names it, config.yaml records them.
    hpo = json.loads((out / "metrics.json").read_text())["hpo"]
    assert hpo == json.loads(json.dumps(metrics["hpo"])) and hpo["trials"] == 2
    done = [r for r in rows if r["state"] == "COMPLETE"]
    best = max(done, key=lambda r: float(r["validation_f1_macro"]))
    assert float(best["validation_f1_macro"]) == pytest.approx(hpo["best_value"])
    best_row = rows[hpo["best_trial"]]
    assert float(best_row["validation_f1_macro"]) == pytest.approx(hpo["best_value"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    for key in SPACE:
        assert config[key] == pytest.approx(hpo["best_params"][key])
        assert float(best_row[key]) == pytest.approx(hpo["best_params"][key])
    assert not any(p.name.startswith("run-") or p.name.startswith("checkpoint-") for p in out.iterdir())

    clf = pipeline("text-classification", model=str(out))
    assert clf(["a good movie"])[0]["label"] in ("negative", "neutral", "positive")


def test_lora_rank_and_alpha_come_from_the_trial(model_dir, data_csv, tmp_path):
    out = tmp_path / "run"
    space = {"lora_r": {"type": "categorical", "choices": [2, 6]}, **SPACE}
    argv = _argv(model_dir, data_csv, out, "--strategy", "lora", "--target_modules", "query", "value")
    argv += ["--save_strategy", "no", "--load_best_model_at_end", "false"]  # the recipe's YAML selects epochs
    text_classification.main(argv + ["--hpo_trials", "2", "--hpo_space", json.dumps(space)])
    hpo = json.loads((out / "metrics.json").read_text())["hpo"]
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == hpo["best_params"]["lora_r"]
    assert yaml.safe_load((out / "config.yaml").read_text())["lora_r"] == adapter["r"]
    rows = _trials(out)
    assert len(rows) == 2 and {r["lora_r"] for r in rows} <= {"2", "6"}


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sentiment.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--hpo_space", json.dumps({"lerning_rate": SPACE["learning_rate"]})], "'lerning_rate'"),
        (["--hpo_space", json.dumps({"lr": SPACE["learning_rate"]})], "learning_rate"),
        (
            ["--hpo_space", json.dumps({"weight_decay": {"type": "float", "low": 0.1, "high": 0.1}})],
            "below high",
        ),
        (
            [
                "--hpo_space",
                json.dumps({"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}}),
            ],
            "low > 0",
        ),
        (["--hpo_space", json.dumps({"lora_r": {"type": "int", "low": 2, "high": 8}})], "not full"),
        (["--hpo_space", json.dumps({"seed": {"type": "int", "low": 1, "high": 8}})], "cannot be searched"),
        (["--hpo_space", json.dumps({"learning_rate": {"type": "uniform"}})], "float, int, categorical"),
        (["--hpo_space", "{not json"], "JSON"),
        (
            [
                "--hpo_space",
                json.dumps({"per_device_train_batch_size": {"type": "float", "low": 4, "high": 8}}),
            ],
            "use type: int",
        ),
        (["--compare"], "--compare"),
        (["--method", "logreg", "--strategy", "frozen"], "--method logreg"),
    ],
)
def test_bad_search_settings_fail_in_one_line_and_write_nothing(
    model_dir, data_csv, tmp_path, capsys, extra, expected
):
    out = tmp_path / "run"
    msg = _fails(_argv(model_dir, data_csv, out, "--hpo_trials", "2", *extra), capsys)
    assert expected in msg, msg
    assert not out.exists()


@pytest.mark.parametrize(
    ("strategy", "space", "expected"),
    [
        (
            "full",
            {"learning_rate": {"type": "float", "low": -1e-4, "high": 1e-4}},
            "learning_rate must be above 0",
        ),
        (
            "full",
            {"learning_rate": {"type": "categorical", "choices": [1e-4, "fast"]}},
            "choice 'fast' is not a float",
        ),
        ("full", {"learning_rate": {"type": "categorical", "choices": [None, 1e-4]}}, "a choice is null"),
        ("full", {"per_device_train_batch_size": {"type": "int", "low": 0, "high": 8}}, "must be at least 1"),
        (
            "full",
            {"weight_decay": {"type": "float", "low": 0.0, "high": float("nan")}},
            "not a finite number",
        ),
        (
            "lora",
            {"lora_dropout": {"type": "float", "low": 0.0, "high": 1.5}},
            "lora_dropout must be in [0, 1)",
        ),
        ("lora", {"lora_r": {"type": "int", "low": 0, "high": 8}}, "lora_r must be at least 1"),
        ("lora", {"lora_r": {"type": "categorical", "choices": [4, "8"]}}, "choice '8' is not a int"),
    ],
)
def test_values_a_trial_would_crash_on_fail_before_the_run(
    model_dir, data_csv, tmp_path, capsys, strategy, space, expected
):
    """Each end of a range and each choice is a value the option takes, checked before anything is
    written: these crashed mid-search (a traceback, the output directory already made)."""
    out = tmp_path / "run"
    argv = _argv(model_dir, data_csv, out, "--strategy", strategy, "--hpo_trials", "2")
    msg = _fails([*argv, "--hpo_space", json.dumps(space)], capsys)
    assert expected in msg and f"hpo_space {next(iter(space))!r}" in msg, msg
    assert not out.exists()


def test_a_trial_that_raises_is_one_line_naming_its_values(
    model_dir, data_csv, tmp_path, capsys, monkeypatch
):
    """The backstop: a value the checks let through (here they are switched off) but the training refuses."""
    monkeypatch.setattr(hpo, "LIMITS", {})
    space = {"learning_rate": {"type": "float", "low": -2e-3, "high": -1e-3}}
    argv = _argv(model_dir, data_csv, tmp_path / "run", "--hpo_trials", "2", "--hpo_space", json.dumps(space))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(sentiment.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: hyperparameter search trial 0 (learning_rate=-0.00"), last
    assert "narrow hpo_space" in last and "Traceback" not in err, err


def test_hpo_trials_below_one_and_a_space_without_trials_are_refused(model_dir, data_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert "hpo_trials=0 must be between 1 and 1000" in _fails(
        _argv(model_dir, data_csv, out, "--hpo_trials", "0"), capsys
    )
    assert "--hpo_trials" in _fails(_argv(model_dir, data_csv, out, "--hpo_space", json.dumps(SPACE)), capsys)
    assert not out.exists()


def test_bad_key_message_lists_the_valid_keys():
    args = TransferTrainingArguments("o", report_to="none", use_cpu=True)
    compare = CompareArguments(hpo_trials=2, hpo_space={"lora_rank": {"type": "int", "low": 2, "high": 8}})
    with pytest.raises(ConfigError) as err:
        check_hpo(compare, TransferArguments(strategy="lora"), args, FewShotArguments())
    msg = str(err.value)
    assert "'lora_rank'" in msg and "lora_r, lora_alpha" in msg and "learning_rate" in msg and "\n" not in msg


def test_default_space_follows_the_strategy():
    args = TransferTrainingArguments("o", report_to="none", use_cpu=True)
    lora = check_hpo(
        CompareArguments(hpo_trials=3), TransferArguments(strategy="lora"), args, FewShotArguments()
    )
    full = check_hpo(CompareArguments(hpo_trials=3), TransferArguments(), args, FewShotArguments())
    ia3 = check_hpo(
        CompareArguments(hpo_trials=3), TransferArguments(strategy="ia3"), args, FewShotArguments()
    )
    assert {"learning_rate", "num_train_epochs", "warmup_steps", "weight_decay"} <= set(full)
    assert {"lora_r", "lora_alpha"} <= set(lora) and "lora_r" not in full and "lora_r" not in ia3


def test_space_from_a_yaml_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n", encoding="utf-8")
    args = TransferTrainingArguments("o", report_to="none", use_cpu=True)
    compare = CompareArguments(hpo_trials=2, hpo_space=str(path))
    space = check_hpo(compare, TransferArguments(), args, FewShotArguments())
    assert space == {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}


def test_a_space_file_under_home_is_found(tmp_path, monkeypatch):
    """`hpo_space: ~/space.yaml` in a --config file (no shell expands it) was "neither a YAML file nor JSON
    text"; an unknown ~user is one line."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(SPACE), encoding="utf-8")
    args = TransferTrainingArguments("o", report_to="none", use_cpu=True)
    compare = CompareArguments(hpo_trials=2, hpo_space="~/space.yaml")
    space = check_hpo(compare, TransferArguments(), args, FewShotArguments())
    assert space["learning_rate"] == SPACE["learning_rate"] and set(space) == set(SPACE)
    compare = CompareArguments(hpo_trials=2, hpo_space="~nlptransfer-no-such-user/space.yaml")
    with pytest.raises(ConfigError, match="cannot expand ~nlptransfer-no-such-user: no such user"):
        check_hpo(compare, TransferArguments(), args, FewShotArguments())


def test_missing_optuna_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    args = TransferTrainingArguments("o", report_to="none", use_cpu=True)
    with pytest.raises(ConfigError, match=r"pip install 'nlptransfer\[hpo\]'"):
        check_hpo(CompareArguments(hpo_trials=2), TransferArguments(), args, FewShotArguments())


def test_trial_rows_keep_pruned_trials_with_their_last_value():
    import optuna

    study = optuna.create_study(direction="maximize")
    for value, prune in ((0.5, False), (0.2, True), (0.7, False)):
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        trial.report(value, step=1)
        if prune:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    rows = trial_rows(study, "f1_macro", ["learning_rate"])
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert [r["validation_f1_macro"] for r in rows] == [0.5, 0.2, 0.7]
    assert all(r["learning_rate"] > 0 for r in rows)
    assert hpo_figure(rows, "validation_f1_macro")[:4] == b"\x89PNG"


def test_model_init_models_get_the_trainers_freezing(model_dir, tmp_path):
    """A search re-creates the model every trial (`model_init`): frozen embeddings apply to each new one."""
    from datasets import Dataset

    ds = Dataset.from_dict({"input_ids": [[2, 5, 3]] * 4, "label": [0, 1, 0, 1]})

    def model_init(trial=None):
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    args = TransferTrainingArguments(
        str(tmp_path / "o"), freeze_embeddings=True, report_to="none", use_cpu=True, max_steps=1
    )
    trainer = TransferTrainer(model_init=model_init, args=args, train_dataset=ds)
    fresh = trainer.call_model_init(None)
    frozen = [n for n, p in fresh.named_parameters() if "embeddings" in n and not p.requires_grad]
    assert frozen and all(not p.requires_grad for n, p in fresh.named_parameters() if "embeddings." in n)


def test_tpe_models_the_second_half_of_a_short_search():
    assert [startup_trials(n) for n in (1, 2, 8, 12, 40)] == [3, 3, 4, 6, 10]
