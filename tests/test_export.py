"""`nlptransfer export` (issue 20): tiny classifier runs -> ONNX (fp32, int8) run by onnxruntime through
`nlptransfer predict`, every kind of classifier the project trains, the agreement check and bad inputs."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from tiny import cli_error, sentiment_rows, tiny_marian_dir, tiny_model_dir, write_csv, write_vectors
from transformers import AutoTokenizer, BertForMaskedLM

from nlptransfer import cli
from nlptransfer.errors import ConfigError, ModelError, OutputDirError
from nlptransfer.export import default_output, export_run
from nlptransfer.predictor import OnnxPredictor, TorchPredictor, load_predictor

TEXTS = ["good movie", "awful boring plot and a dull actor", "", "the film " * 40, "fine"]


def _run_argv(model_dir, data, out, *extra, recipe="sentiment", label="sentiment"):
    return [
        *("run", recipe, "--model_name_or_path", str(model_dir), "--dataset", str(data)),
        *("--text_column", "review", "--label_column", label, "--output_dir", str(out)),
        *("--max_steps", "4", "--per_device_train_batch_size", "8", "--learning_rate", "1e-2"),
        *("--use_cpu", "true", "--max_length", "32"),
        *(("--eval_datasets", "none") if recipe == "sentiment" else ()),
        *extra,
    ]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def tiny(root):
    return tiny_model_dir(root / "models")


@pytest.fixture(scope="module")
def data(root):
    return write_csv(root / "reviews.csv", sentiment_rows(60))


@pytest.fixture(scope="module")
def trained(root, tiny, data):
    """A tiny sentiment run with predictions.jsonl (its test rows)."""
    out = root / "full"
    cli.main(_run_argv(tiny, data, out))
    return out


def _same_as_pytorch(run, export, texts=TEXTS, tol=1e-4):
    """The export's logits equal the run's PyTorch logits on `texts` at batch sizes 1 and 3 (dynamic axes)."""
    torch_side = TorchPredictor(run)
    onnx_side = load_predictor(export)
    assert isinstance(onnx_side, OnnxPredictor)
    expected = torch_side.logits(texts, 2)
    for batch_size in (1, 3):
        assert np.abs(onnx_side.logits(texts, batch_size) - expected).max() < tol
    assert [r["label"] for r in onnx_side.predict(texts)] == [r["label"] for r in torch_side.predict(texts)]
    return onnx_side


# ----------------------------------------------------------------------------------------------
# fp32 / int8


def test_fp32_export_equals_pytorch_on_probe_texts(run_dir, tmp_path):
    """A run without predictions.jsonl (the conftest classifier): checked on the probe texts, and says so."""
    out = tmp_path / "onnx"
    record = export_run(run_dir, out)
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "export.json", "README.md", "run.json", "tokenizer.json"} <= names
    check = json.loads((out / "export.json").read_text())["check"]
    assert check == record["check"] and check["agreement"] == 1.0
    assert check["max_probability_difference"] < 1e-4 and check["max_logit_difference"] < 1e-4
    assert "probe texts" in check["source"] and "pytorch_scores" not in check
    assert "No accuracy measured" in (out / "README.md").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and "model.onnx" in run["files"]
    predictor = _same_as_pytorch(run_dir, out)
    assert predictor.info["export"]["format"] == "onnx" and predictor.info["backend"] == "onnx"


def test_int8_export_reports_agreement_and_scores_and_predicts(trained, tmp_path, capsys):
    out = tmp_path / "int8"
    cli.main(["export", str(trained), "--quantize", "int8", "--output", str(out), "--min_agreement", "0"])
    assert (out / "model.int8.onnx").is_file() and not (out / "model.onnx").exists()
    record = json.loads((out / "export.json").read_text())
    check = record["check"]
    assert record["quantize"] == "int8" and 0.0 <= check["agreement"] <= 1.0
    test_rows = (trained / "predictions.jsonl").read_text().splitlines()
    assert check["rows"] == check["scored_rows"] == len(test_rows)
    saved = next(iter(json.loads((trained / "metrics.json").read_text())["test"].values()))  # in-domain
    assert check["pytorch_scores"]["accuracy"] == pytest.approx(saved["accuracy"])  # the run's own scores
    card = (out / "README.md").read_text()
    assert "Measured on the run's test rows" in card and f"{check['agreement']:.2%}" in card
    assert "agreement with PyTorch" in capsys.readouterr().err
    # predict on the export: the same rows as on the run
    mine = cli.cli(["predict", "--model", str(out), "--input", str(trained / "predictions.jsonl")])
    theirs = cli.cli(["predict", "--model", str(trained), "--input", str(trained / "predictions.jsonl")])
    assert [set(r) for r in mine] == [set(r) for r in theirs]
    assert [r["text"] for r in mine] == [r["text"] for r in theirs]
    agree = np.mean([a["label"] == b["label"] for a, b in zip(mine, theirs, strict=True)])
    assert agree == pytest.approx(check["agreement"])


def test_default_output_beside_the_run_and_overwrite_rules(trained, capsys):
    out = default_output(trained)
    assert out == trained.resolve().with_name("full-onnx")
    record = export_run(trained, max_rows=5)
    assert record["output"] == str(out) and record["check"]["rows"] == 5
    assert not (trained / "model.onnx").exists()  # nothing inside the run
    with pytest.raises(OutputDirError, match="--overwrite"):
        export_run(trained, max_rows=5)
    assert export_run(trained, max_rows=3, overwrite=True)["check"]["rows"] == 3
    line = cli_error(capsys, ["export", str(trained), "--output", str(trained / "onnx")])
    assert "run directory" in line and not (trained / "onnx").exists()


def test_agreement_below_the_threshold_writes_nothing_unless_forced(run_dir, tmp_path, capsys):
    out = tmp_path / "refused"
    with pytest.raises(ModelError, match="below --min_agreement 1.5; nothing written"):
        export_run(run_dir, out, min_agreement=1.5)
    assert not out.exists()
    (out / "sub").mkdir(parents=True)  # an empty folder stays untouched too
    (out / "sub").rmdir()
    with pytest.raises(ModelError):
        export_run(run_dir, out, min_agreement=1.5)
    assert list(out.iterdir()) == []
    record = export_run(run_dir, out, min_agreement=1.5, force=True)
    assert record["forced"] is True and json.loads((out / "export.json").read_text())["forced"] is True
    assert "written anyway with --force" in (out / "README.md").read_text()
    assert "between 0 and 1" in cli_error(capsys, ["export", str(run_dir), "--min_agreement", "1.5"])


# ----------------------------------------------------------------------------------------------
# every classifier the project trains


@pytest.mark.parametrize(
    "extra",
    [
        ("--pooling", "mean"),
        ("--pooling", "max", "--strategy", "lora", "--merge_adapters", "false"),  # adapter-only: merged
        ("--strategy", "lora", "--target_modules", "query", "value"),  # merged at save
    ],
    ids=["pooled-mean", "pooled-max-adapter", "lora-merged"],
)
def test_pooled_and_adapter_runs_export(tiny, data, tmp_path, extra):
    run = tmp_path / "run"
    cli.main(_run_argv(tiny, data, run, *extra))
    record = export_run(run, tmp_path / "onnx")
    assert record["check"]["agreement"] == 1.0 and record["check"]["max_probability_difference"] < 1e-4
    _same_as_pytorch(run, tmp_path / "onnx")


def test_prompt_tuning_cannot_merge_one_line(tiny, data, tmp_path, capsys):
    run = tmp_path / "prompt"
    cli.main(_run_argv(tiny, data, run, "--strategy", "prompt_tuning", "--num_virtual_tokens", "4"))
    line = cli_error(capsys, ["export", str(run), "--output", str(tmp_path / "o")])
    assert "prompt_tuning adapter, which cannot be merged" in line and not (tmp_path / "o").exists()


def test_multilabel_export_carries_the_thresholds(tiny, tmp_path):
    data = tmp_path / "tags.jsonl"
    with data.open("w", encoding="utf-8") as f:
        for row in sentiment_rows(90):
            tags = [row["sentiment"]] + (["long"] if len(row["review"].split()) > 6 else [])
            f.write(json.dumps({"review": row["review"], "tags": tags}) + "\n")
    run = tmp_path / "ml"
    cli.main(_run_argv(tiny, data, run, recipe="text_classification", label="tags"))
    record = export_run(run, tmp_path / "onnx")
    thresholds = json.loads((run / "metrics.json").read_text())["thresholds"]
    assert record["multilabel"] is True and record["thresholds"] == pytest.approx(thresholds)
    assert "f1_samples" in record["check"]["exported_scores"]
    predictor = _same_as_pytorch(run, tmp_path / "onnx")
    assert predictor.thresholds == pytest.approx([thresholds[n] for n in predictor.labels])
    rows = predictor.predict(TEXTS)
    assert all(isinstance(r["label"], list) and "score" not in r for r in rows)


def test_word_vector_classifier_exports(tmp_path, tmp_cache):
    data = write_csv(tmp_path / "r.csv", sentiment_rows(80, neutral=False))
    vectors = write_vectors(tmp_path / "v.txt", dim=8)
    run = tmp_path / "wv"
    cli.main(_run_argv(vectors, data, run, "--wordvec_hidden_size", "16"))
    assert json.loads((run / "config.json").read_text())["model_type"] == "nlptransfer_wordvec"
    record = export_run(run, tmp_path / "onnx")
    assert record["inputs"] == ["input_ids", "attention_mask"] and record["check"]["agreement"] == 1.0
    _same_as_pytorch(run, tmp_path / "onnx", [*TEXTS, "", "unknownword"])


def test_multitask_task_exports_and_the_root_is_refused(tiny, data, tmp_path, capsys):
    from nlptransfer.recipes import multitask

    specs = [{"name": "three", "dataset": str(data), "text_column": "review", "label_column": "sentiment"}]
    run = tmp_path / "mt"
    multitask.main(
        [
            *("--model_name_or_path", str(tiny), "--tasks", json.dumps(specs), "--output_dir", str(run)),
            *("--num_train_epochs", "1", "--per_device_train_batch_size", "8", "--learning_rate", "5e-3"),
            *("--use_cpu", "true"),
            *("--eval_strategy", "no", "--max_length", "32", "--single_task_budget", "steps"),
        ]
    )
    assert "export one of its tasks" in cli_error(capsys, ["export", str(run)])
    record = export_run(run / "tasks" / "three")
    assert record["output"] == str(tmp_path.resolve() / "mt-tasks-three-onnx")
    assert record["check"]["agreement"] == 1.0
    _same_as_pytorch(run / "tasks" / "three", record["output"])


# ----------------------------------------------------------------------------------------------
# bad input: one line, exit 2, nothing written


def test_not_a_classifier_run_is_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    mlm = tmp_path / "mlm"
    model = tiny_model_dir(tmp_path / "m")
    BertForMaskedLM.from_pretrained(model).save_pretrained(mlm)
    AutoTokenizer.from_pretrained(model).save_pretrained(mlm)
    marian = tiny_marian_dir(tmp_path / "t")
    cases = {
        empty: "no config.json",
        a_file: "is a file",
        tmp_path / "missing": "does not exist",
        mlm: "BertForMaskedLM",
        marian: "MarianMTModel",
    }
    for path, expected in cases.items():
        line = cli_error(capsys, ["export", str(path), "--output", str(tmp_path / "out")])
        assert expected in line and "classification run" in line, line
        assert not (tmp_path / "out").exists()


def test_bad_flags_and_missing_packages_are_one_line(run_dir, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out")
    assert "invalid choice: 'int4'" in cli_error(
        capsys, ["export", str(run_dir), "--quantize", "int4", "--output", out]
    )
    assert "invalid choice: 'tflite'" in cli_error(
        capsys, ["export", str(run_dir), "--format", "tflite", "--output", out]
    )
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    assert "mine" in cli_error(capsys, ["export", str(run_dir), "--output", str(user), "--overwrite"])
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    line = cli_error(capsys, ["export", str(run_dir), "--output", out])
    assert "onnxruntime" in line and "pip install 'nlptransfer[export]'" in line
    assert not (tmp_path / "out").exists()


def _foreign_onnx(path, input_name="input_ids", input_type=None, output_name="logits", width=2):
    """A one-node ONNX graph (Cast to float) that `nlptransfer export` did not write."""
    from onnx import TensorProto, helper, save

    in_type = TensorProto.INT64 if input_type is None else input_type
    graph = helper.make_graph(
        [helper.make_node("Cast", [input_name], [output_name], to=TensorProto.FLOAT)],
        "foreign",
        [helper.make_tensor_value_info(input_name, in_type, ["batch", width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    save(model, str(path))


def test_an_onnx_file_export_did_not_write_is_one_line(run_dir, tmp_path, capsys):
    """An export folder whose model.onnx came from elsewhere loaded, then failed at the first text with
    onnxruntime's InvalidArgument traceback (other input or output names, int32 inputs) or a KeyError; a
    graph with another number of logits than labels crashed on the rows (zip strict)."""
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(run_dir, folder)
    (folder / "export.json").write_text(json.dumps({"format": "onnx", "model_file": "model.onnx"}))
    from onnx import TensorProto

    cases = {
        "takes input, not input_ids": {"input_name": "input"},
        "not tensor(int64)": {"input_type": TensorProto.INT32},
        "returns output, not logits": {"output_name": "output"},
        "returns 3 logits per text, but config.json names 2 labels": {"width": 3},
    }
    for expected, change in cases.items():
        _foreign_onnx(folder / "model.onnx", **change)
        with pytest.raises(ModelError, match=re.escape(expected)):
            load_predictor(folder)
        line = cli_error(capsys, ["predict", "--model", str(folder), "--text", "good film"])
        assert expected in line and "export the run again" in line, line


def test_export_json_thresholds_missing_a_label_is_one_line(run_dir, tmp_path, capsys):
    """An export.json whose thresholds lack a label of config.json raised a KeyError when the folder loaded."""
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(run_dir, folder)
    _foreign_onnx(folder / "model.onnx")
    record = {"format": "onnx", "model_file": "model.onnx", "thresholds": {"negative": 0.5}}
    (folder / "export.json").write_text(json.dumps(record))
    with pytest.raises(ModelError, match=r"no threshold for label\(s\) positive .*export the run again"):
        load_predictor(folder)
    line = cli_error(capsys, ["predict", "--model", str(folder), "--text", "good film"])
    assert "no threshold for label(s) positive" in line and "export the run again" in line


@pytest.mark.parametrize("value", ["high", [0.5], float("nan"), 2], ids=repr)
def test_export_json_threshold_that_is_not_a_probability_is_one_line(run_dir, tmp_path, capsys, value):
    """A hand-edited export.json threshold that is not a number raised float()'s ValueError/TypeError when the
    folder loaded; NaN or 2 silently decided nothing. Now one line naming the file, the label and the fix."""
    import shutil

    folder = tmp_path / "export"
    shutil.copytree(run_dir, folder)
    _foreign_onnx(folder / "model.onnx")
    thresholds = {"negative": 0.5, "positive": value}
    (folder / "export.json").write_text(json.dumps({"format": "onnx", "thresholds": thresholds}))
    expected = f"{folder / 'export.json'}: the threshold of label 'positive' is {json.dumps(value)}"
    with pytest.raises(ModelError, match=re.escape(expected)):
        load_predictor(folder)
    line = cli_error(capsys, ["predict", "--model", str(folder), "--text", "good film"])
    assert expected in line and "a number between 0 and 1" in line and "export the run again" in line


def test_predictions_jsonl_that_is_not_utf8_is_one_line(run_dir, tmp_path, capsys):
    """A run whose predictions.jsonl is not UTF-8 raised a UnicodeDecodeError traceback; now one line naming
    the file and the byte offset, and nothing written."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    good = json.dumps({"text": "good film", "gold": "positive"}).encode() + b"\n"
    bad = b'{"text": "caf\xe9 au lait", "gold": "positive"}\n'  # latin-1, not UTF-8
    (run / "predictions.jsonl").write_bytes(good + bad)
    line = cli_error(capsys, ["export", str(run), "--output", str(tmp_path / "out")])
    offset = len(good) + bad.index(b"\xe9")
    assert f"predictions.jsonl is not valid UTF-8 (byte 0xe9 at offset {offset})" in line, line
    assert not (tmp_path / "out").exists()


def test_a_quantisation_error_is_one_line(tmp_path):
    """An error of onnxruntime's quantize_dynamic (here: a file that is no ONNX model) was a traceback."""
    from nlptransfer.export import quantize_int8

    source, target = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    source.write_bytes(b"not an onnx model")
    with pytest.raises(
        ModelError, match=r"could not quantise model\.onnx.*export without --quantize"
    ) as info:
        quantize_int8(source, target)
    assert "\n" not in str(info.value) and not target.exists()


def test_export_from_inside_the_run_records_its_absolute_path(run_dir, tmp_path, monkeypatch, capsys):
    """`nlptransfer export .` recorded source_run "." (export.json, the card's text and title) and evaluate
    and explain then said "exported from (.)": the run's absolute path now."""
    out = tmp_path / "onnx"
    monkeypatch.chdir(run_dir)
    cli.main(["export", ".", "--output", str(out)])
    source = str(run_dir.resolve())
    assert json.loads((out / "export.json").read_text())["source_run"] == source
    card = (out / "README.md").read_text()
    assert f"classifier in `{source}`" in card and f"ONNX export of {run_dir.name}" in card
    line = cli_error(capsys, ["explain", "--model", str(out), "--text", "good"])
    assert f"exported from ({source})" in line, line


@pytest.mark.parametrize("predictions", [None, ""], ids=["no-predictions", "empty-predictions"])
def test_max_rows_without_test_rows_is_one_line(run_dir, tmp_path, capsys, predictions):
    """--max_rows limits the check to the run's first test rows; a run without any (no or an empty
    predictions.jsonl) was checked on the probe texts with --max_rows silently unused. Now refused in one line
    before the model loads, and nothing is written; without --max_rows the probe texts still apply."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    if predictions is not None:
        (run / "predictions.jsonl").write_text(predictions)
    out = tmp_path / "onnx"
    line = cli_error(capsys, ["export", str(run), "--output", str(out), "--max_rows", "5"])
    state = "the run has no predictions.jsonl" if predictions is None else "predictions.jsonl is empty"
    assert f"--max_rows limits the check to the run's first test rows, but {state}" in line, line
    assert "built-in probe texts; drop --max_rows" in line and not out.exists()
    with pytest.raises(ConfigError, match="drop --max_rows"):
        export_run(run, out, max_rows=5)
    assert not out.exists()


def test_the_cards_reproduce_command_names_the_resolved_folders(run_dir, tmp_path, monkeypatch):
    """The card's command was the literal argv (`nlptransfer export 'my run' --output out`), meaningless
    read from elsewhere: now the resolved run and output folders, shell-quoted, and the options given."""
    import shlex
    import shutil

    shutil.copytree(run_dir, tmp_path / "my run")
    monkeypatch.chdir(tmp_path)
    argv = ["export", "my run", "--output", "out dir", "--min_agreement", "0.5", "--batch_size", "4"]
    monkeypatch.setattr(sys, "argv", ["nlptransfer", *argv])
    cli.main(argv)
    card = (tmp_path / "out dir" / "README.md").read_text()
    command = card.split("## Reproduce\n\n```bash\n", 1)[1].split("\n```", 1)[0]
    run, out = str((tmp_path / "my run").resolve()), str((tmp_path / "out dir").resolve())
    expected = ["nlptransfer", "export", run, "--output", out, "--format", "onnx"]
    assert shlex.split(command) == [*expected, "--min_agreement", "0.5", "--batch_size", "4"]
    assert command.startswith(f"nlptransfer export {shlex.quote(run)} --output {shlex.quote(out)} ")
    assert f"load_predictor({json.dumps(out)})" in card and f"--model {shlex.quote(out)}" in card


def test_overwrite_never_replaces_a_run_of_another_command(run_dir, tmp_path, capsys):
    """--overwrite replaces a previous export only: a finished training run's model is never removed."""
    trained = tmp_path / "full"
    trained.mkdir()
    (trained / "model.safetensors").write_bytes(b"the trained weights")
    record = {"recipe": "sentiment", "status": "complete", "files": ["model.safetensors"]}
    (trained / "run.json").write_text(json.dumps(record))
    before = {p.name: p.read_bytes() for p in trained.iterdir()}
    line = cli_error(capsys, ["export", str(run_dir), "--output", str(trained), "--overwrite"])
    assert "holds a sentiment run" in line and "--overwrite replaces only" in line and "--output" in line
    assert {p.name: p.read_bytes() for p in trained.iterdir()} == before


def test_evaluate_and_explain_on_an_export_refuse_in_one_line(run_dir, tmp_path, capsys):
    out = tmp_path / "onnx"
    export_run(run_dir, out)
    data = write_csv(
        tmp_path / "d.csv", [{"text": "good", "label": "positive"}, {"text": "bad", "label": "negative"}]
    )
    line = cli_error(
        capsys, ["evaluate", "--model", str(out), "--input", str(data), "--output_dir", str(tmp_path / "e")]
    )
    assert "ONNX export" in line and str(run_dir) in line and not (tmp_path / "e").exists()
    assert "ONNX export" in cli_error(capsys, ["explain", "--model", str(out), "--text", "good"])
