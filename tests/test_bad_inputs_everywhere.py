"""Bad-input battery over every recipe, every `nlptransfer` subcommand and `nlptransfer-assets`.

`CASES[target]` lists what a careless or hostile user gives that target. Each case must end in one
`error:` line (the last line of stderr) that names the problem, exit code 2, no traceback, and nothing
created, changed or deleted, neither in the case's own folder nor in the shared tiny models, data and
runs. Everything runs on tiny models built here, so each case takes a second or less.
(tests/test_bad_inputs.py holds the older, deeper sentiment/text_classification battery.)
"""

from __future__ import annotations

import hashlib
import json
import os
import pkgutil
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from tiny import (
    DOMAIN,
    WORDS,
    sentiment_rows,
    tiny_domain_model_dir,
    tiny_marian_dir,
    tiny_model_dir,
    toy_pairs,
    write_csv,
    write_tsv,
)

import nlptransfer.recipes as recipes_pkg
from nlptransfer.assets import cli as assets_cli
from nlptransfer.cli import COMMANDS
from nlptransfer.cli import cli as nlptransfer_cli
from nlptransfer.errors import run_cli
from nlptransfer.recipes import text_classification


@dataclass
class Case:
    argv: list[str]  # after the target's base flags (a later flag overrides an earlier one)
    expected: str  # a fragment of the one error line
    setup: Callable[[Path, dict], None] | None = None  # writes the bad input into the case folder
    env: dict[str, str] = field(default_factory=dict)  # {root} and {world} placeholders allowed


# ---------------------------------------------------------------------------------------- setups


def write(name: str, content: str | bytes) -> Callable[[Path, dict], None]:
    def setup(root: Path, world: dict) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

    return setup


def user_files(name: str = "out") -> Callable[[Path, dict], None]:
    def setup(root: Path, world: dict) -> None:
        (root / name).mkdir()
        (root / name / "notes.txt").write_text("mine")
        (root / name / "config.json").write_text("{}")

    return setup


def dangling(name: str = "out") -> Callable[[Path, dict], None]:
    return lambda root, world: (root / name).symlink_to(root / "gone")


def parent_is_file(root: Path, world: dict) -> None:
    (root / "afile").write_text("mine")


# Permission bits do not stop root (the tests may run as root): sysfs refuses a new folder to everyone.
LOCKED = "/sys/nlptransfer-battery"


def copy_model(kind: str, change: Callable[[Path], None]) -> Callable[[Path, dict], None]:
    """A copy of a world model or run as `<root>/m`, then broken by `change`."""

    def setup(root: Path, world: dict) -> None:
        shutil.copytree(world[kind], root / "m")
        change(root / "m")

    return setup


def pickle_weights(folder: Path) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()


def truncate_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def drop_tokenizer(folder: Path) -> None:
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)


def drop_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def remote_code(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoModelForSequenceClassification": "evil.EvilModel",
        "AutoModel": "evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text("raise SystemExit('remote code ran')\n")


def garbage_config(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def not_a_run(root: Path, world: dict) -> None:
    (root / "m").mkdir()
    (root / "m" / "holiday.jpg").write_bytes(b"\xff\xd8\xff")


def run_json_running(root: Path, world: dict) -> None:
    (root / "m").mkdir()
    (root / "m" / "run.json").write_text(
        json.dumps({"recipe": "sentiment", "status": "running", "files": []})
    )


def cache_archive_garbage(root: Path, world: dict) -> None:
    """A cached vader archive (in `<root>/cache`) that is not the pinned one."""
    from nlptransfer.assets.registry import archive_path

    previous = os.environ.get("NLPTRANSFER_CACHE")
    os.environ["NLPTRANSFER_CACHE"] = str(root / "cache")
    try:
        path = archive_path("vader")
    finally:
        if previous is None:
            del os.environ["NLPTRANSFER_CACHE"]
        else:
            os.environ["NLPTRANSFER_CACHE"] = previous
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the pinned archive")


def tasks_json(world: dict, **change) -> str:
    spec = {"name": "a", "dataset": str(world["data"]), "text_column": "review", "label_column": "sentiment"}
    return json.dumps([{**spec, **change}, {**spec, "name": "b"}])


# ------------------------------------------------------------------------------------------- world


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Tiny models, data and runs shared (read-only) by every case."""
    root = tmp_path_factory.mktemp("world")
    model = tiny_model_dir(root)
    data = write_csv(root / "reviews.csv", sentiment_rows(60))
    corpus = root / "domain.txt"
    corpus.write_text("\n".join(DOMAIN * 2) + "\n", encoding="utf-8")
    run = root / "run"  # a finished run of a recipe (run.json, metrics.json, the classifier)
    argv = ["--model_name_or_path", str(model), "--dataset", str(data), "--text_column", "review"]
    argv += ["--label_column", "sentiment", "--max_steps", "1", "--use_cpu", "true", "--report_to", "none"]
    text_classification.main([*argv, "--output_dir", str(run), "--max_length", "32"])
    world = {
        "world": root,
        "model": model,
        "data": data,
        "run": run,
        "dmodel": tiny_domain_model_dir(root),
        "corpus": corpus,
        "marian": tiny_marian_dir(root),
        "pairs": write_tsv(root / "pairs.tsv", toy_pairs(60, "reva", 2)),
        "target": write_csv(root / "target.csv", sentiment_rows(60, seed=1)),
    }
    world["tasks"] = tasks_json(world)
    return world


def base_argv(target: str, world: dict) -> list[str]:
    train = ["--use_cpu", "true", "--report_to", "none", "--per_device_train_batch_size", "8"]
    clf = ["--dataset", str(world["data"]), "--text_column", "review", "--label_column", "sentiment"]
    out = ["--output_dir", "{root}/out"]
    bases = {
        "sentiment": [
            "--model_name_or_path",
            str(world["model"]),
            *clf,
            "--eval_datasets",
            "none",
            "--max_steps",
            "2",
            *train,
            *out,
        ],
        "text_classification": [
            "--model_name_or_path",
            str(world["model"]),
            *clf,
            "--max_steps",
            "2",
            *train,
            *out,
        ],
        "translation_pair": [
            "--parent_model",
            str(world["marian"]),
            "--child_dataset",
            str(world["pairs"]),
            "--child_train_size",
            "30",
            "--max_steps",
            "2",
            "--max_test_samples",
            "4",
            "--num_beams",
            "1",
            "--max_new_tokens",
            "8",
            "--max_source_length",
            "32",
            "--max_target_length",
            "32",
            *train,
            *out,
        ],
        "domain_adaptation": [
            "--model_name_or_path",
            str(world["model"]),
            "--source",
            str(world["data"]),
            "--target",
            str(world["target"]),
            "--text_column",
            "review",
            "--label_column",
            "sentiment",
            "--method",
            "none",
            "--max_steps",
            "2",
            "--target_labelled_samples",
            "10",
            "--distance_samples",
            "20",
            *train,
            *out,
        ],
        "domain_pretraining": [
            "--model_name_or_path",
            str(world["dmodel"]),
            "--corpus",
            str(world["corpus"]),
            "--max_steps",
            "2",
            "--max_length",
            "32",
            *train,
            *out,
        ],
        "multitask": [
            "--model_name_or_path",
            str(world["model"]),
            "--tasks",
            world["tasks"],
            "--num_train_epochs",
            "1",
            "--max_length",
            "32",
            "--compare_single_task",
            "false",
            *train,
            *out,
        ],
        "distill": [
            "--model_name_or_path",
            str(world["model"]),
            *clf,
            "--student_layers",
            "1",
            "--teacher_epochs",
            "1",
            "--max_steps",
            "2",
            "--max_length",
            "32",
            *train,
            *out,
        ],
    }
    if target in bases:
        return bases[target]
    if target == "run":
        return ["run"]
    if target.startswith("assets "):
        return [target.split()[1]]
    return [target]


# ------------------------------------------------------------------------------------------- cases

M = "{root}/m"  # the broken model or run a setup leaves

COMMON_RECIPE_CASES = [
    Case(["--output_dir", "{root}/out.txt"], "is a file", write("out.txt", "mine")),
    Case([], "--overwrite_output_dir", user_files()),
    Case(["--output_dir", "{root}/out"], "symlink", dangling()),
    Case(["--output_dir", "{root}/afile/out"], "afile", parent_is_file),
    Case(["--output_dir", LOCKED + "/out"], "nlptransfer-battery"),
    Case(["--config", "{root}/c.yaml"], "learning_rate", write("c.yaml", "learning_rate: .nan\n")),
    Case(["--config", "{root}/c.yaml"], "seed", write("c.yaml", "seed: -1\n")),
    Case(
        ["--config", "{root}/c.yaml"],
        "per_device_train_batch_size",
        write("c.yaml", "per_device_train_batch_size: 2.5\n"),
    ),
    Case(["--lerning_rate", "1"], "learning_rate"),
    Case(["--learning_rate", "nan"], "learning_rate"),
    Case(["--per_device_train_batch_size", "-8"], "per_device_train_batch_size"),
    Case(["--output_dir", "{model}"], "--overwrite_output_dir"),  # would overwrite the base model
    Case(["--output_dir", ""], "output_dir"),
    Case(["--learning_rate", "inf"], "learning_rate"),
    Case(["--seed", "99999999999999999999"], "seed"),
    Case(["--config", "{root}/c.yaml"], "max_steps", write("c.yaml", "max_steps: true\n")),
    Case(["--report_to", "wandb"], "report_to"),
    Case(["--optim", "sgdx"], "optim"),
    Case(["--lr_scheduler_type", "wobbly"], "lr_scheduler_type"),
    Case(["--warmup_steps", "-1"], "warmup_steps"),
    Case(["--logging_steps", "-5"], "logging_steps"),
    Case(["--num_train_epochs", "nan"], "num_train_epochs"),
]

CLASSIFIER_CASES = [
    Case(["--dataset", "{root}/nope.csv"], "nope.csv"),
    Case(["--dataset", "{root}/empty.csv"], "empty", write("empty.csv", "")),
    Case(["--dataset", "{root}"], "has no .csv"),
    Case(["--text_column", ""], "text_column"),
    Case(["--label_column", "review"], "label"),
    Case(["--text_column", "body"], "--text_column"),
    Case(["--label_column", "stars"], "--label_column"),
    Case(["--model_name_or_path", M], "--allow_pickle", copy_model("model", pickle_weights)),
    Case(["--model_name_or_path", M], "truncated", copy_model("model", truncate_weights)),
    Case(["--model_name_or_path", M], "tokenizer", copy_model("model", drop_tokenizer)),
    Case(["--model_name_or_path", M], "--trust_remote_code", copy_model("model", remote_code)),
    Case(["--max_length", "100000"], "--max_length"),
    Case(["--max_length", "0"], "--max_length"),
    Case(["--strategy", "adapterx"], "invalid choice"),
    Case(["--model_name_or_path", "../../etc/passwd-model"], "passwd-model"),
    # few-shot (issue 17): K above the smallest class, K <= 0, methods and strategies that cannot combine
    Case(["--examples_per_class", "50"], "fewer than the 50 per class asked for; use --examples_per_class"),
    Case(["--examples_per_class", "0"], "examples_per_class"),
    Case(["--examples_per_class", "-2"], "examples_per_class"),
    Case(["--examples_per_class", "4", "--max_train_samples", "10"], "pass one of them"),
    Case(["--method", "logreg"], "--strategy frozen"),
    Case(["--method", "contrastive", "--strategy", "frozen"], "--strategy full or lora"),
    Case(["--method", "contrastive", "--strategy", "prompt_tuning"], "--strategy full or lora"),
    Case(["--contrastive_iterations", "3"], "--method contrastive"),
    Case(["--method", "contrastive", "--contrastive_iterations", "0"], "contrastive_iterations"),
    Case(["--train_labels", "negative", "bogus"], "'bogus' is not a label"),
    Case(["--train_labels", "negative"], "at least 2 labels"),
]

# Word vectors (issue 17): a vectors file that is not one, of another dimension, without overlap with the data.
TINY_VECTORS = "".join(f"{w} {i % 3 - 1} 0.5\n" for i, w in enumerate(WORDS))
V = ["--model_name_or_path", "{root}/v.txt"]
WORDVEC_CASES = [
    Case(V, "not a vectors file", write("v.txt", "review,sentiment\ngood film,positive\n")),
    Case(V, "not a text vectors file", write("v.txt", b"\x80\x81\xfe\xff" * 20)),
    Case(V, "is not a number", write("v.txt", "good 1 0\nbad one 0\n")),
    Case([*V, "--embedding_dim", "3"], "--embedding_dim is 3", write("v.txt", TINY_VECTORS)),
    Case(V, "covers 0.0%", write("v.txt", "zzq 0.1 0.2\nzzr 0.3 0.4\n")),
    Case([*V, "--pooling", "cls"], "does not apply to a word-vector model", write("v.txt", TINY_VECTORS)),
    Case(["--max_vocab", "10"], "word-vector models only"),
]

PREDICT_RUN = ["--model", "{run}", "--text", "a good film"]
EXPLAIN_RUN = ["--model", "{run}", "--text", "a good film", "--steps", "4"]
SERVE_RUN = ["{run}", "--port", "0"]
EVALUATE_RUN = [
    "--model",
    "{run}",
    "--input",
    "{data}",
    "--text_column",
    "review",
    "--label_column",
    "sentiment",
]
AWFUL = write("e.csv", "review,sentiment\ngood,positive\nbad,awful\n")

CASES: dict[str, list[Case]] = {
    "sentiment": CLASSIFIER_CASES
    + COMMON_RECIPE_CASES
    + WORDVEC_CASES
    + [
        Case(["--eval_datasets", "vader-nothing"], "vader-nothing"),
        Case(["--eval_files", "{root}/gone.csv"], "gone.csv"),
        Case(["--eval_files", "{data}:txt=review"], "txt"),
    ],
    "text_classification": CLASSIFIER_CASES
    + COMMON_RECIPE_CASES
    + WORDVEC_CASES
    + [
        Case(["--label_column", "a,b,c"], "--label_column"),
        Case(["--eval_files", "{data}"], "training --dataset"),
        Case(
            ["--eval_files", "{root}/o.csv:text=body"],
            "'sentiment'",
            write("o.csv", "body,stars\nok,positive\n"),
        ),
        Case(["--eval_datasets", "{data}:split=half"], "split"),
    ],
    "evaluate": [
        Case(["--model", "{root}/nope", *EVALUATE_RUN[2:]], "nope"),
        Case(["--model", M, *EVALUATE_RUN[2:]], "config.json", not_a_run),
        Case(["--model", M, *EVALUATE_RUN[2:]], "--allow_pickle", copy_model("run", pickle_weights)),
        Case(["--model", M, *EVALUATE_RUN[2:]], "--trust_remote_code", copy_model("run", remote_code)),
        Case(["--model", "{run}"], "--input"),
        Case([*EVALUATE_RUN, "--input", "{root}/gone.csv"], "gone.csv"),
        Case([*EVALUATE_RUN, "--input", "{root}/e.csv"], "'awful'", AWFUL),
        Case([*EVALUATE_RUN, "--text_column", "body"], "body"),
        Case([*EVALUATE_RUN, "--label_column", "stars"], "stars"),
        Case([*EVALUATE_RUN, "--batch_size", "0"], "--batch_size"),
        Case([*EVALUATE_RUN, "--max_length", "0"], "--max_length"),
        Case([*EVALUATE_RUN, "--output_dir", "{root}/out"], "--overwrite_output_dir", user_files()),
        Case([*EVALUATE_RUN, "--output_dir", "{root}/out.txt"], "is a file", write("out.txt", "mine")),
        Case([*EVALUATE_RUN, "--output", "{root}/out"], "symlink", dangling()),
        Case([*EVALUATE_RUN, "--output_dir", "{run}", "--overwrite_output_dir"], "model being evaluated"),
    ],
    "translation_pair": COMMON_RECIPE_CASES
    + [
        Case(["--child_dataset", "{root}/nope.tsv"], "nope.tsv"),
        Case(["--child_dataset", "{root}/p.tsv"], "target", write("p.tsv", "source\tother\na\tb\n")),
        Case(["--child_dataset", "{root}/p.tsv"], "no source side", write("p.tsv", "")),
        Case(["--child_dataset", "bible-xx-yy"], "bible-xx-yy"),
        Case(["--child_dataset", "{root}"], "case"),
        Case(["--child_train_size", "0"], "child_train_size"),
        Case(["--runs", "sideways"], "sideways"),
        Case(["--parent_model", M], "--allow_pickle", copy_model("marian", pickle_weights)),
        Case(["--parent_model", M], "truncated", copy_model("marian", truncate_weights)),
        Case(["--parent_model", M], "--trust_remote_code", copy_model("marian", remote_code)),
        Case(["--parent_model", "{root}/no-model"], "no-model"),
        Case(["--num_beams", "0"], "num_beams"),
        Case(["--max_source_length", "100000"], "max_source_length"),
    ],
    "domain_adaptation": COMMON_RECIPE_CASES
    + [
        Case(["--source", "{root}/nope.csv"], "nope.csv"),
        Case(["--target", "{root}/e.csv"], "no", write("e.csv", "review,sentiment\n")),
        Case(["--method", "adabn"], "adabn"),
        Case(["--reversal_weight", "-1"], "reversal_weight"),
        Case(["--text_column", "body"], "body"),
        Case(["--target_labelled_samples", "-5"], "target_labelled_samples"),
        Case(["--method", "self_training", "--pseudo_threshold", "0"], "pseudo_threshold"),
        Case(["--method", "self_training", "--self_training_rounds", "0"], "self_training_rounds"),
        Case(["--method", "self_training", "--teacher", "{root}/no-teacher"], "no-teacher"),
        Case(["--model_name_or_path", M], "--allow_pickle", copy_model("model", pickle_weights)),
        Case(["--model_name_or_path", M], "truncated", copy_model("model", truncate_weights)),
        Case(["--max_length", "100000"], "--max_length"),
    ],
    "domain_pretraining": COMMON_RECIPE_CASES
    + [
        Case(["--corpus", "{root}/nope.txt"], "nope.txt"),
        Case(["--corpus", "{root}"], "case"),
        Case(["--corpus", "{root}/c.txt"], "empty", write("c.txt", "")),
        Case(["--corpus", "{root}/c.txt"], "UTF-8", write("c.txt", b"\x89PNG\r\n\x1a\n\xff\xfe\x00")),
        Case(["--strategy", "ia3"], "full or lora"),
        Case(["--mlm_probability", "0"], "mlm_probability"),
        Case(["--mlm_probability", "1.5"], "mlm_probability"),
        Case(["--extend_vocab", "-3"], "extend_vocab"),
        Case(["--new_words", "{root}/missing.txt"], "missing.txt"),
        Case(["--model_name_or_path", M], "--allow_pickle", copy_model("dmodel", pickle_weights)),
        Case(["--model_name_or_path", M], "tokenizer", copy_model("dmodel", drop_tokenizer)),
        Case(["--max_length", "100000"], "--max_length"),
        Case(["--head_warmup_steps", "-1"], "head_warmup_steps"),
        Case(["--block_size", "100000"], "--block_size"),
        Case(["--corpus", "task", "--task_dataset", "{root}/nope.csv"], "nope.csv"),
    ],
    "multitask": COMMON_RECIPE_CASES
    + [
        Case(["--tasks", "[]"], "non-empty list"),
        Case(["--tasks", "not json ["], "got 'not json ['"),
        Case(["--tasks", "{tasks:name=/etc/evil}"], "used as a folder name"),
        Case(["--tasks", "{tasks:name=../up}"], "used as a folder name"),
        Case(["--tasks", "{tasks:name=a.b}"], "used as a folder name"),
        Case(["--tasks", "{tasks:name=b}"], "used twice"),
        Case(["--tasks", "{tasks:dataset=/nope.csv}"], "nope.csv"),
        Case(["--tasks", "{tasks:label_column=stars}"], "stars"),
        Case(["--tasks", "{tasks:type=ranking}"], "ranking"),
        Case(["--task_sampling", "random"], "random"),
        Case(["--tasks", "{tasks:weight=nan}"], "weight"),
        Case(["--tasks", '{"name": "a"}'], "got {'name': 'a'}"),
        Case(["--model_name_or_path", M], "--allow_pickle", copy_model("model", pickle_weights)),
        Case(["--model_name_or_path", M], "--trust_remote_code", copy_model("model", remote_code)),
    ],
    "distill": COMMON_RECIPE_CASES
    + [
        Case(["--dataset", "{root}/nope.csv"], "nope.csv"),
        Case(["--label_column", "stars"], "--label_column"),
        Case(["--student_layers", "0"], "--student_layers 0"),
        Case(["--student_layers", "99"], "--student_layers 99"),
        Case(["--distill_alpha", "1.5"], "distill_alpha"),
        Case(["--distill_temperature", "0"], "distill_temperature"),
        Case(["--distill_temperature", "inf"], "invalid float value: 'inf'"),
        Case(["--layer_pick", "random"], "random"),
        Case(["--teacher", "{root}/none"], "none"),
        Case(["--model_name_or_path", M], "--allow_pickle", copy_model("model", pickle_weights)),
    ],
    "run": [
        Case(["nosuchrecipe"], "unknown recipe"),
        Case(["../../etc/passwd"], "unknown recipe"),
        Case(["_classification"], "unknown recipe"),
        Case(["_common"], "unknown recipe"),
        Case([""], "unknown recipe"),
        Case(["sentiment", "--config", "{root}/none.yaml"], "none.yaml"),
        Case(
            ["sentiment", "--config={root}/c.yaml", "--config", "{root}/c.yaml"],
            "--config",
            write("c.yaml", "seed: 1\n"),
        ),
        Case(
            [
                "sentiment",
                "--model_name_or_path",
                "{model}",
                "--dataset",
                "{root}/nope.csv",
                "--output_dir",
                "{root}/out",
            ],
            "nope.csv",
        ),
        Case(["multitask", "--tasks", "[]"], "non-empty list"),
    ],
    "list": [
        Case(["extra"], "unrecognized arguments"),
        Case(["--verbose"], "unrecognized arguments"),
        Case(["--json"], "unrecognized arguments"),
        Case(["sentiment"], "unrecognized arguments"),
        Case(["--output", "{root}/x"], "unrecognized arguments"),
        Case(["-x"], "unrecognized arguments"),
        Case(["--help=yes"], "--help"),
        Case(["--", "--help"], "unrecognized arguments"),
    ],
    "cp": [
        Case(["sentiment/nope", "{root}/x.yaml"], "unknown config"),
        Case(["../../../etc/passwd", "{root}/x.yaml"], "unknown config"),
        Case(["sentiment/minilm_lora", "{root}/x.yaml"], "already exists", write("x.yaml", "mine")),
        Case(["sentiment/minilm_lora", "{root}/d/"], "minilm_lora.yaml", write("d/minilm_lora.yaml", "mine")),
        Case(["sentiment/minilm_lora", "{root}/no/such/x.yaml"], "does not exist"),
        Case(["sentiment/minilm_lora", "{root}/out"], "symlink", dangling()),
        Case(["sentiment/minilm_lora", "{root}/afile/x.yaml"], "afile", parent_is_file),
        Case(["sentiment/minilm_lora", LOCKED + "/x.yaml"], "nlptransfer-battery"),
        Case(["sentiment/minilm_lora"], "dest"),
        Case([], "config"),
        Case(["minilm_full", "{root}/x.yaml"], "unknown config"),
        Case(["sentiment/minilm_lora", ""], "destination"),  # in three recipes: ambiguous
    ],
    "predict": [
        Case(["--model", "{root}/nope", "--text", "x"], "nope"),
        Case(["--model", M, "--text", "x"], "config.json", not_a_run),
        Case(["--model", M, "--text", "x"], "run.json", run_json_running),
        Case(
            ["--model", M, "--text", "x"],
            "config.yaml",
            copy_model("run", lambda m: (m / "config.yaml").write_text("a: [1,")),
        ),
        Case(["--model", M, "--text", "x"], "--allow_pickle", copy_model("run", pickle_weights)),
        Case(["--model", M, "--text", "x"], "truncated", copy_model("run", truncate_weights)),
        Case(["--model", M, "--text", "x"], "tokenizer", copy_model("run", drop_tokenizer)),
        Case(["--model", M, "--text", "x"], "config.json", copy_model("run", garbage_config)),
        Case(["--model", M, "--text", "x"], "--trust_remote_code", copy_model("run", remote_code)),
        Case(["--model", "{model}", "--text", "x"], "classifier"),
        Case([*PREDICT_RUN, "--batch_size", "0"], "--batch_size"),
        Case([*PREDICT_RUN, "--batch_size", "-3"], "--batch_size"),
        Case([*PREDICT_RUN, "--max_length", "0"], "--max_length"),
        Case(["--model", "{run}"], "--input"),
        Case(["--model", "{run}", "--input", "{root}/nope.csv"], "nope.csv"),
        Case(["--model", "{run}", "--input", "{root}"], "is not a file"),
        Case(
            ["--model", "{run}", "--input", "{root}/t.csv"], "UTF-8", write("t.csv", b"text\n\xff\xfe\x00x\n")
        ),
        Case(["--model", "{run}", "--input", "{root}/t.csv"], "--text_column", write("t.csv", "body\nx\n")),
        Case([*PREDICT_RUN, "--output", "{root}/p.jsonl"], "already exists", write("p.jsonl", "mine")),
        Case([*PREDICT_RUN, "--output", "{root}/p.exe"], ".jsonl"),
        Case([*PREDICT_RUN, "--output", "{root}/d.jsonl"], "directory", write("d.jsonl/x", "mine")),
        Case([*PREDICT_RUN, "--output", "{root}/out.jsonl"], "symlink", dangling("out.jsonl")),
        Case([*PREDICT_RUN, "--output", LOCKED + "/p.jsonl"], "nlptransfer-battery"),
    ],
    "report": [
        Case(["{root}/nope", "--output", "{root}/r.html"], "nope"),
        Case([M, "--output", "{root}/r.html"], "run", not_a_run),
        Case(["{root}/f.txt", "--output", "{root}/r.html"], "f.txt", write("f.txt", "mine")),
        Case(
            [M, "--output", "{root}/r.html"],
            "metrics.json",
            copy_model("run", lambda m: (m / "metrics.json").write_text("{bad")),
        ),
        Case(
            [M, "--output", "{root}/r.html"],
            "metrics.json",
            copy_model("run", lambda m: (m / "metrics.json").write_text("[1, 2]")),
        ),
        Case(
            [M, "--output", "{root}/r.html"],
            "run.json",
            copy_model("run", lambda m: (m / "run.json").write_text("[]")),
        ),
        Case([M, "--output", "{root}/r.html"], "finished run", write("m/run.json", "{broken")),
        Case(["{run}", "--output", "{root}/r.html"], "already exists", write("r.html", "mine")),
        Case(["{run}", "--output", "{root}/r.html"], "r.md", write("r.md", "mine")),
        Case(["{run}", "--output", "{root}/r.pdf"], ".html"),
        Case(["{run}", "--output", "{root}/no/r.html"], "does not exist"),
        Case(["{run}", "--output", "{root}/out.html"], "symlink", dangling("out.html")),
        Case(["{run}", "--output", LOCKED + "/r.html"], "nlptransfer-battery"),
        Case(["--output", "{root}/r.html"], "DIR"),
    ],
    "explain": [
        Case(["--model", "{root}/nope", "--text", "x"], "nope"),
        Case(["--model", M, "--text", "x"], "config.json", not_a_run),
        Case(["--model", M, "--text", "x"], "--allow_pickle", copy_model("run", pickle_weights)),
        Case(["--model", M, "--text", "x"], "truncated", copy_model("run", truncate_weights)),
        Case(["--model", M, "--text", "x"], "--trust_remote_code", copy_model("run", remote_code)),
        Case(["--model", "{model}", "--text", "x"], "classifier"),
        Case([*EXPLAIN_RUN, "--steps", "0"], "--steps"),
        Case([*EXPLAIN_RUN, "--steps", "-1"], "--steps"),
        Case([*EXPLAIN_RUN, "--max_length", "0"], "--max_length"),
        Case([*EXPLAIN_RUN, "--target", "sideways"], "sideways"),
        Case([*EXPLAIN_RUN, "--text", ""], "--text"),
        Case([*EXPLAIN_RUN, "--html", "{root}/e.html"], "already exists", write("e.html", "mine")),
        Case([*EXPLAIN_RUN, "--html", "{root}/out.html"], "symlink", dangling("out.html")),
        Case([*EXPLAIN_RUN, "--html", "{root}/no/e.html"], "does not exist"),
        Case(["--model", "{run}"], "--text"),
    ],
    "export": [
        Case(["{root}/nope", "--output", "{root}/o"], "nope"),
        Case([M, "--output", "{root}/o"], "config.json", not_a_run),
        Case(["{model}", "--output", "{root}/o"], "not a classifier run"),
        Case([M, "--output", "{root}/o"], "config.json", copy_model("run", garbage_config)),
        Case(["{run}", "--quantize", "int4", "--output", "{root}/o"], "int4"),
        Case(["{run}", "--format", "tflite", "--output", "{root}/o"], "tflite"),
        Case(["{run}", "--output", "{root}/out"], "out", user_files()),
        Case(["{run}", "--output", "{root}/out", "--overwrite"], "out", user_files()),
        Case(["{run}", "--output", "{root}/out"], "symlink", dangling()),
        Case(["{run}", "--output", "{run}/onnx"], "run directory"),
        Case(["{run}", "--output", "{root}/o", "--min_agreement", "2"], "--min_agreement"),
        Case(["{run}", "--output", "{root}/o", "--max_rows", "0"], "--max_rows"),
        Case([M, "--output", "{root}/o"], "--trust_remote_code", copy_model("run", remote_code)),
    ],
    # --port 0: any free port, so a case never depends on port 8000; every case fails before serving
    "serve": [
        Case(["{root}/nope", "--port", "0"], "nope"),
        Case([M, "--port", "0"], "config.json", not_a_run),
        Case([M, "--port", "0"], "run.json", run_json_running),
        Case([M, "--port", "0"], "--allow_pickle", copy_model("run", pickle_weights)),
        Case([M, "--port", "0"], "--trust_remote_code", copy_model("run", remote_code)),
        Case(["{model}", "--port", "0"], "classifier"),
        Case([*SERVE_RUN, "--max_batch_size", "0"], "--max_batch_size"),
        Case([*SERVE_RUN, "--max_texts_per_request", "-2"], "--max_texts_per_request"),
        Case([*SERVE_RUN, "--max_chars", "0"], "--max_chars"),
        Case([*SERVE_RUN, "--max_wait_ms", "-1"], "--max_wait_ms"),
        Case([*SERVE_RUN, "--max_length", "0"], "--max_length"),
        Case(["{run}", "--port", "65536"], "--port 65536"),
        Case([*SERVE_RUN, "--host", "192.0.2.1"], "192.0.2.1"),  # an address of another machine
        Case(["--port", "0"], "RUN_OR_EXPORT_DIR"),
    ],
    "assets fetch": [
        Case(["nosuchasset"], "nosuchasset"),
        Case(["../../etc/passwd"], "passwd"),
        Case(["/abs/path"], "/abs/path"),
        Case([""], "''"),
        Case(["vader", "nosuchasset"], "nosuchasset"),
        Case(["--force", "nosuchasset"], "nosuchasset"),
        Case(["--forse"], "--forse"),
        Case(["vader"], "afile", parent_is_file, env={"NLPTRANSFER_CACHE": "{root}/afile"}),
    ],
    "assets list": [
        Case(["extra"], "extra"),
        Case(["--verbose"], "--verbose"),
        Case(["--force"], "--force"),
        Case(["vader"], "vader"),
        Case(["list"], "list"),
        Case(["--", "x"], "x"),
        Case(["--json"], "--json"),
        Case(["-x"], "-x"),
    ],
    "assets verify": [
        Case([], "fetch", env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case(["nosuchasset"], "nosuchasset", env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case(["../../etc/passwd"], "passwd", env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case(["vader"], "vader", env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case(["vader"], "vader", cache_archive_garbage, env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case([], "vader", cache_archive_garbage, env={"NLPTRANSFER_CACHE": "{root}/cache"}),
        Case([], "afile", parent_is_file, env={"NLPTRANSFER_CACHE": "{root}/afile"}),
        Case(["--force"], "--force", env={"NLPTRANSFER_CACHE": "{root}/cache"}),
    ],
}

ALL = [(target, i) for target, cases in CASES.items() for i in range(len(cases))]


def recipe_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(recipes_pkg.__path__) if not m.name.startswith("_"))


def asset_commands(capsys) -> list[str]:
    """The subcommands of `nlptransfer-assets`, read from its usage line."""
    with pytest.raises(SystemExit):
        assets_cli.cli(["--help"])
    return re.search(r"\{([a-z_,]+)\}", capsys.readouterr().out).group(1).split(",")


def test_every_recipe_and_subcommand_has_at_least_8_bad_inputs(capsys):
    """A new recipe module, `nlptransfer` subcommand or assets subcommand without 8 cases fails here."""
    assets = asset_commands(capsys)
    assert {"fetch", "list", "verify"} <= set(assets)
    targets = recipe_modules() + ["run", *COMMANDS] + [f"assets {c}" for c in assets]
    assert set(targets) <= set(CASES), sorted(set(targets) - set(CASES))
    for target in targets:
        assert len(CASES[target]) >= 8, (target, len(CASES[target]))


# --------------------------------------------------------------------------------------------- run


def _fill(arg: str, root: Path, world: dict) -> str:
    if arg.startswith("{tasks:"):
        key, value = arg[len("{tasks:") : -1].split("=", 1)
        return tasks_json(world, **{key: value.replace("{root}", str(root))})
    for key in ("root", "world", "model", "run", "data"):
        arg = arg.replace("{" + key + "}", str(root if key == "root" else world[key]))
    return arg


def _snapshot(*folders: Path) -> dict[str, str]:
    snap = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_symlink():
                snap[str(p)] = "-> " + os.readlink(p)
            elif p.is_file():
                snap[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_dir():
                snap[str(p)] = "dir"
    return snap


@pytest.mark.parametrize(("target", "index"), ALL, ids=[f"{t}-{i}" for t, i in ALL])
def test_bad_input(target, index, world, tmp_path, capsys, monkeypatch):
    case = CASES[target][index]
    root = tmp_path / "case"
    root.mkdir()
    monkeypatch.setenv("NLPTRANSFER_CACHE", str(tmp_path / "empty-cache"))  # never the user's cache
    monkeypatch.chdir(root)
    if case.setup:
        case.setup(root, world)
    for key, value in case.env.items():
        monkeypatch.setenv(key, _fill(value, root, world))
    argv = [_fill(a, root, world) for a in base_argv(target, world) + case.argv]
    if target.startswith("assets "):
        main = assets_cli.cli
    elif target in CASES and target not in COMMANDS and target != "run":
        main = __import__(f"nlptransfer.recipes.{target}", fromlist=["main"]).main
    else:
        main = nlptransfer_cli
    before = _snapshot(root, world["world"])
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert exit_info.value.code == 2, err[-5:]
    # Progress bars and load reports of steps that did run may come first; the error is the last line.
    assert len(errors) == 1 and err[-1] == errors[0], err[-5:]
    assert not any("Traceback" in line for line in err), err
    assert case.expected in errors[0], errors[0]
    assert _snapshot(root, world["world"]) == before, (
        "a failed command must not create, change or delete a file"
    )
