"""Distillation on tiny models: relational losses, truncated students, a few DistillationTrainer steps, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import WORDS, previous_run, sentiment_rows, tiny_model_dir, write_csv
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertTokenizerFast

from nlptransfer import ConfigError, DistillationTrainer, DistillationTrainingArguments, ModelError
from nlptransfer.data import load_source
from nlptransfer.errors import run_cli
from nlptransfer.losses import logit_distillation_loss, pairwise_distances, rkd_angle_loss, rkd_distance_loss
from nlptransfer.recipes import distill
from nlptransfer.trainers.distillation import (
    check_compatible,
    pick_student_layers,
    spread_layers,
    truncated_student,
)
from nlptransfer.training import encode

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    model_dir = tiny_model_dir(root)
    csv = write_csv(root / "reviews.csv", sentiment_rows(60))
    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        num_labels=3,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    return {
        "root": root,
        "model_dir": model_dir,
        "csv": csv,
        "teacher": teacher,
        "tok": AutoTokenizer.from_pretrained(model_dir),
    }


def test_relational_losses_are_zero_for_the_teacher_itself_and_positive_otherwise():
    torch.manual_seed(0)
    teacher = torch.randn(8, 16)
    assert rkd_distance_loss(teacher.clone(), teacher) == 0
    assert rkd_angle_loss(teacher.clone(), teacher) == 0
    assert rkd_distance_loss(3.0 * teacher, teacher) < 1e-6  # distances are normalised by their mean
    assert rkd_angle_loss(3.0 * teacher + 1.0, teacher) < 1e-6  # angles ignore scale and translation
    student = torch.randn(8, 4, requires_grad=True)  # another width: relations still compare
    for loss in (rkd_distance_loss(student, teacher), rkd_angle_loss(student, teacher)):
        assert loss > 0
        (grad,) = torch.autograd.grad(loss, student)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    logits = torch.randn(8, 3)
    assert logit_distillation_loss(logits, logits, 2.0).abs() < 1e-6
    assert logit_distillation_loss(torch.randn(8, 3), logits, 2.0) > 0


def test_pairwise_distances_match_torch_cdist():
    e = torch.randn(6, 5)
    torch.testing.assert_close(
        pairwise_distances(e), torch.cdist(e, e).fill_diagonal_(0), atol=1e-4, rtol=1e-4
    )


def test_truncated_student_keeps_the_chosen_layers(tiny):
    teacher = tiny["teacher"].eval()
    full = truncated_student(teacher, [0, 1]).eval()  # every layer kept: the teacher itself
    batch = tiny["tok"](["good movie", "awful plot was boring"], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(full(**batch).logits, teacher(**batch).logits)
    small = truncated_student(teacher, [1])
    assert small.config.num_hidden_layers == 1 and teacher.config.num_hidden_layers == 2
    torch.testing.assert_close(
        small.bert.encoder.layer[0].output.dense.weight, teacher.bert.encoder.layer[1].output.dense.weight
    )
    assert spread_layers(6, 3) == [1, 3, 5] and spread_layers(6, 6) == list(range(6))
    with pytest.raises(ConfigError, match="within the teacher's 0..1"):
        truncated_student(teacher, [2])


def test_distillation_trainer_runs_a_few_steps(tiny, tmp_path):
    splits = load_source(str(tiny["csv"]), text_column="review", label_column="sentiment")
    encoded = encode(splits, tiny["tok"], 32, False, 3)
    teacher = tiny["teacher"]
    student = truncated_student(teacher, 1)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=DistillationTrainingArguments(
            str(tmp_path / "out"),
            max_steps=4,
            per_device_train_batch_size=8,
            learning_rate=1e-2,
            logging_steps=2,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
        ),
        train_dataset=encoded["train"],
        processing_class=tiny["tok"],
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logs and all({"loss_ce", "loss_kd", "loss_rkd_distance", "loss_rkd_angle"} <= set(e) for e in logs)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())  # teacher frozen
    assert any(not torch.equal(v, student.state_dict()[k]) for k, v in student_before.items())


def test_different_label_sets_are_refused(tiny):
    other = AutoModelForSequenceClassification.from_pretrained(
        tiny["model_dir"],
        num_labels=3,
        id2label={0: "bad", 1: "meh", 2: "good"},
        label2id={"bad": 0, "meh": 1, "good": 2},
    )
    with pytest.raises(ModelError, match="different label sets: teacher \\['negative'"):
        check_compatible(tiny["teacher"], other)


def test_tokenizers_that_cannot_be_aligned_are_refused(tiny, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS[::-1]) + "\n")
    other_tok = BertTokenizerFast(str(vocab))
    with pytest.raises(ModelError, match="tokenizers cannot be aligned") as err:
        check_compatible(tiny["teacher"], tiny["teacher"], tiny["tok"], other_tok)
    assert "\n" not in str(err.value)


def test_load_classifier_keeps_a_matching_head_and_replaces_another(tiny, tmp_path):
    from nlptransfer.modeling import load_classifier

    tiny["teacher"].save_pretrained(tmp_path / "teacher")
    same = load_classifier(str(tmp_path / "teacher"), LABELS)
    assert torch.equal(same.classifier.weight, tiny["teacher"].classifier.weight)
    assert load_classifier(str(tmp_path / "teacher")).config.id2label == dict(enumerate(LABELS))
    two = load_classifier(str(tmp_path / "teacher"), ["bad", "good"])
    assert two.config.num_labels == 2 and two.config.id2label == {0: "bad", 1: "good"}
    assert torch.equal(
        two.bert.embeddings.word_embeddings.weight, tiny["teacher"].bert.embeddings.word_embeddings.weight
    )


def _argv(tiny, out, *extra):
    return [
        "--model_name_or_path",
        str(tiny["model_dir"]),
        "--dataset",
        str(tiny["csv"]),
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(out),
        "--student_layers",
        "1",
        "--teacher_epochs",
        "1",
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-2",
        "--use_cpu",
        "true",
        "--max_length",
        "32",
        *extra,
    ]


def test_recipe_with_an_incompatible_student_is_one_line_exit_2(tiny, tmp_path, capsys):
    student_dir = tmp_path / "student"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS[::-1]
    student_dir.mkdir()
    (student_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(str(student_dir / "vocab.txt")).save_pretrained(student_dir)
    tiny["teacher"].save_pretrained(student_dir)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(distill.main, _argv(tiny, tmp_path / "o", "--student", str(student_dir)))
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]  # transformers' load reports may come first
    assert exit_info.value.code == 2 and len(errors) == 1 and err[-1] == errors[0]
    assert "tokenizers cannot be aligned" in errors[0] and not any("Traceback" in line for line in err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("k", [0, -1, 3, 99])
def test_student_layers_outside_the_teacher_fail_before_the_teacher_trains(k, tiny, tmp_path, capsys):
    assert pick_student_layers(tiny["teacher"].config, 2, "spread") == [0, 1]
    with pytest.raises(ConfigError, match=f"--student_layers {k} must be between 1 and the teacher's 2"):
        pick_student_layers(tiny["teacher"].config, k)
    with pytest.raises(SystemExit):
        run_cli(distill.main, _argv(tiny, tmp_path / "o", "--student_layers", str(k)))
    assert "--student_layers" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()  # the run had not started (it was written after the teacher trained)


def test_distill_recipe_end_to_end(tiny, tmp_path):
    out = tmp_path / "run"
    metrics = distill.main(_argv(tiny, out))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert {"model.safetensors", "teacher/model.safetensors", "metrics.json", "README.md"} <= set(
        run["files"]
    )
    assert set(metrics["test"]) == {"teacher", "student (distilled)", "student (labels only)"}
    assert metrics["test"]["student (distilled)"]["layers"] == 1 and metrics["test"]["teacher"]["layers"] == 2
    assert all(r["texts_per_second"] > 0 for r in metrics["test"].values())
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert student.config.num_hidden_layers == 1 and student.config.id2label[2] == "positive"


# ------------------------------------------------------------------ issue 19: transfer texts, layers, test sets


def test_student_layer_choices(tiny):
    from nlptransfer.trainers.distillation import alternate_layers

    assert alternate_layers(6, 3) == [0, 2, 4] and alternate_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    config = tiny["teacher"].config  # 2 layers
    assert pick_student_layers(config, "1", "alternate") == [0]
    assert pick_student_layers(config, "1", "spread") == [1]
    assert pick_student_layers(config, "1,0") == [0, 1]  # explicit indices, sorted
    for bad in ("0,2", "0,0", "-1,1"):
        with pytest.raises(ConfigError, match="within the teacher's 0..1"):
            pick_student_layers(config, bad)


def test_a_batch_of_transfer_texts_only_has_no_cross_entropy(tiny, tmp_path):
    """Rows labelled -100 (transfer texts) teach through the teacher's outputs only: no cross-entropy term,
    yet a finite loss whose gradient trains the student."""
    from nlptransfer.trainers.distillation import UNLABELLED

    teacher = tiny["teacher"].eval()
    student = truncated_student(teacher, 1)
    args = DistillationTrainingArguments(str(tmp_path), report_to="none", use_cpu=True, distill_alpha=0.5)
    trainer = DistillationTrainer(
        model=student, teacher_model=teacher, args=args, processing_class=tiny["tok"]
    )
    batch = dict(tiny["tok"](["good movie", "awful plot", "the film was"], return_tensors="pt", padding=True))
    student.train()
    loss = trainer.compute_loss(student, {**batch, "labels": torch.full((3,), UNLABELLED)})
    assert torch.isfinite(loss) and trainer._parts["ce"][-1] == 0.0 and trainer._parts["kd"][-1] > 0
    mixed = trainer.compute_loss(student, {**batch, "labels": torch.tensor([0, UNLABELLED, UNLABELLED])})
    assert torch.isfinite(mixed) and trainer._parts["ce"][-1] > 0  # the labelled row's cross-entropy
    (grad,) = torch.autograd.grad(loss, student.classifier.weight)
    assert grad.abs().sum() > 0  # the teacher's outputs alone train the student


def _transfer_files(tiny):
    """The same 40 texts: without any label column, and with poisoned labels (wrong, unknown classes)."""
    rows = sentiment_rows(40, seed=7)
    plain = write_csv(tiny["root"] / "unlabelled.csv", [{"review": r["review"]} for r in rows])
    poisoned = [{"review": r["review"], "sentiment": "garbage!", "label": i % 7} for i, r in enumerate(rows)]
    return plain, write_csv(tiny["root"] / "poisoned.csv", poisoned), rows


def test_transfer_texts_are_used_without_labels(tiny, tmp_path):
    from safetensors.torch import load_file

    plain, poisoned, rows = _transfer_files(tiny)
    runs = {}
    for name, path in (("plain", plain), ("poisoned", poisoned)):
        runs[name] = distill.main(_argv(tiny, tmp_path / name, "--transfer_texts", str(path)))
    student = runs["plain"]["test"]["student (distilled)"]
    n_train = len(load_source(str(tiny["csv"]), text_column="review", label_column="sentiment")["train"])
    assert runs["plain"]["transfer_texts"]["rows"] == 40 and student["train"]["train_rows"] == n_train + 40
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("plain", "poisoned"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the labels changed nothing
    alone = runs["plain"]["test"]["student (labels only)"]
    assert alone["optimizer_steps"] == student["optimizer_steps"] == 3  # same budget
    without = distill.main(_argv(tiny, tmp_path / "none", "--transfer_texts", "none"))
    assert without["transfer_texts"]["rows"] == 0
    assert without["test"]["student (distilled)"]["train"]["train_rows"] == n_train


def test_transfer_texts_that_are_test_texts_are_dropped(tiny):
    from nlptransfer.data.transfer_texts import transfer_dataset

    plain, _, rows = _transfer_files(tiny)
    texts = [r["review"] for r in rows]
    data = transfer_dataset([f"{plain}:text=review"], held_out=texts[:15])
    assert sorted(data["text"]) == sorted(texts[15:]) and data.column_names == ["text"]
    assert len(transfer_dataset([str(plain)], [], text_column="review", max_samples=10)) == 10
    assert transfer_dataset(["none"], []) is None


def test_distill_scores_eval_files_and_eval_datasets(tiny, tmp_path):
    other = write_csv(tmp_path / "other.csv", sentiment_rows(30, seed=3))
    out = tmp_path / "run"
    metrics = distill.main(
        _argv(tiny, out, "--transfer_texts", "none", "--eval_files", f"{other}:text=review,label=sentiment")
    )
    assert set(metrics["test_sets"]) == {str(tiny["csv"]), str(other)}
    scores = metrics["test_sets"][str(other)]
    assert set(scores) == {"teacher", "student (distilled)", "student (labels only)"}
    assert metrics["test_rows"][str(other)] == "whole file, 30 rows"
    assert f"micro-F1 {other}" in (out / "results.md").read_text()


def _one_line_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(distill.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(errors) == 1 and err[-1] == errors[0]
    assert not any("Traceback" in line for line in err)
    return errors[0]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--transfer_texts", "{missing}"], "missing.csv"),
        (["--transfer_texts", "{notext}"], "no text column 'review'"),
        (["--transfer_texts", "{plain}:split=everything"], "split='everything'"),
        (["--student_layers", "0,5"], "--student_layers 0,5: layer indices must be distinct and within"),
        (["--max_transfer_samples", "0"], "max_transfer_samples=0"),
        # refused only inside the run, after its folder was written, as "num_train_epochs=0 trains nothing"
        (["--teacher_epochs", "0", "--max_steps", "-1", "--num_train_epochs", "1"], "teacher_epochs=0"),
    ],
)
def test_bad_distillation_input_is_one_line_exit_2_and_writes_nothing(tiny, tmp_path, capsys, extra, match):
    plain, _, _ = _transfer_files(tiny)
    notext = write_csv(tmp_path / "notext.csv", [{"body": "good movie"}, {"body": "bad plot"}])
    files = {"missing": str(tmp_path / "missing.csv"), "notext": str(notext), "plain": str(plain)}
    extra = [e.format(**files) for e in extra]
    line = _one_line_error(_argv(tiny, tmp_path / "o", *extra), capsys)
    assert match in line
    assert not (tmp_path / "o").exists()


def test_a_teacher_in_the_output_dir_is_refused_and_kept(tiny, tmp_path, capsys):
    """`--teacher <run>/teacher --output_dir <run> --overwrite_output_dir` (the teacher a previous distil run
    trained and saved): the run removed it with the previous run's files and, given a teacher, never saves one."""
    teacher = tmp_path / "trained"
    tiny["teacher"].save_pretrained(teacher)
    tiny["tok"].save_pretrained(teacher)
    out = tmp_path / "run"
    files = previous_run(out, teacher, "teacher")
    argv = _argv(tiny, out, "--teacher", str(out / "teacher"), "--overwrite_output_dir", "true")
    line = _one_line_error(argv, capsys)
    assert "--teacher" in line and "is inside --output_dir" in line
    assert all(f.is_file() for f in files)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("distill_temperature", float("inf")),
        ("distill_temperature", float("nan")),
        ("rkd_angle_weight", float("nan")),
    ],
)
def test_training_arguments_refuse_non_finite_loss_settings(tmp_path, option, value):
    """Built in user code (no flag parser to refuse inf/nan), these gave a NaN loss after the first step."""
    with pytest.raises(ConfigError, match=f"{option}={value} must be a number"):
        DistillationTrainingArguments(str(tmp_path), report_to="none", use_cpu=True, **{option: value})
