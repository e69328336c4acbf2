"""Evaluating on the user's own labelled files (issue 21): `--eval_datasets` / `--eval_files` in both
classification recipes (the run's column mapping, per-entry overrides, which rows were scored),
`nlptransfer evaluate`, and the cosmetics of what they print and draw (support as a count, dataset names on
heatmaps, the per-class legend, binary tasks)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from tiny import cli_error, sentiment_rows, write_csv

from nlptransfer import cli
from nlptransfer.config import DataArguments
from nlptransfer.data import load_source
from nlptransfer.data.eval_files import load_test_sets, parse_eval_entry
from nlptransfer.errors import ConfigError, DataError
from nlptransfer.evaluation.metrics import per_class_report
from nlptransfer.recipes import sentiment
from nlptransfer.recipes import text_classification as tc
from nlptransfer.reporting import build_report, figures


def _renamed(rows: list[dict], text: str, label: str) -> list[dict]:
    return [{text: r["review"], label: r["sentiment"]} for r in rows]


def _train_flags(model_dir, data, out) -> list[str]:
    flags = (
        "--max_steps 4 --per_device_train_batch_size 8 --learning_rate 1e-2 --use_cpu true --max_length 32"
    )
    paths = ["--model_name_or_path", str(model_dir), "--dataset", str(data), "--output_dir", str(out)]
    return [*paths, "--text_column", "review", "--label_column", "sentiment", *flags.split()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Binary review files: the training file and three others, two with the training columns."""
    root = tmp_path_factory.mktemp("evalfiles")
    return {
        "root": root,
        "train": write_csv(root / "site_a.csv", sentiment_rows(60, seed=0, neutral=False)),
        "same": write_csv(root / "site_b.csv", sentiment_rows(30, seed=1, neutral=False)),
        "own": write_csv(
            root / "site_c.csv", _renamed(sentiment_rows(20, seed=2, neutral=False), "body", "stars")
        ),
        "carve": write_csv(root / "site_d.csv", sentiment_rows(30, seed=3, neutral=False)),
    }


# ------------------------------------------------------------------------- items 1, 2, 3: the recipes


def test_text_classification_scores_eval_files_and_datasets(model_dir, files, tmp_path, caplog):
    """#1 --eval_datasets is scored (it was ignored); #2 --eval_files scores every row and the table says
    which rows; #3 the run's --text_column/--label_column apply to them, `:text=,label=` overrides them;
    #14 a two-class task is logged as binary."""
    out = tmp_path / "tc"
    own = f"{files['own']}:text=body,label=stars"
    argv = _train_flags(model_dir, files["train"], out)
    argv += ["--eval_datasets", str(files["carve"]), "--eval_files", str(files["same"]), own]
    caplog.set_level(logging.INFO, logger="nlptransfer")
    metrics = tc.main(argv)

    names = [str(files[k]) for k in ("train", "carve", "same", "own")]
    assert list(metrics["test"]) == names
    assert all(0 <= metrics["test"][n]["f1_macro"] <= 1 for n in names)
    rows = metrics["test_rows"]
    assert rows[str(files["same"])] == "whole file, 30 rows"
    assert rows[str(files["own"])] == "whole file, 20 rows"
    assert rows[str(files["carve"])] == "test split, 6 of 30 rows"  # the 20% test carve of a file
    assert rows[str(files["train"])] == "test split, 12 of 60 rows"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == metrics["test"] and saved["test_rows"] == rows
    card = (out / "README.md").read_text()
    assert "whole file, 30 rows" in card and "test split, 6 of 30 rows" in card and "rows scored" in card
    assert "binary labels" in caplog.text and "multi-class" not in caplog.text


def test_sentiment_eval_files_share_the_mechanism(model_dir, files, tmp_path):
    """The sentiment recipe takes --eval_files too; a file whose columns are the defaults (text/label) needs
    no option even when the run's columns are others (an embedded set, or the golden case's other.csv)."""
    plain = write_csv(
        tmp_path / "plain.csv", _renamed(sentiment_rows(15, seed=4, neutral=False), "text", "label")
    )
    out = tmp_path / "s"
    argv = _train_flags(model_dir, files["train"], out) + ["--eval_datasets", "none"]
    metrics = sentiment.main([*argv, "--eval_files", str(files["same"]), str(plain)])
    assert set(metrics["test"]) == {str(files["train"]), str(files["same"]), str(plain)}
    assert metrics["test_rows"][str(plain)] == "whole file, 15 rows"
    assert "whole file, 15 rows" in (out / "README.md").read_text()


def _data_args(files, **kw) -> DataArguments:
    args = {"dataset": str(files["train"]), "text_column": "review", "label_column": "sentiment"}
    return DataArguments(**{**args, **kw})


def test_eval_file_bad_inputs_are_one_line_each(files, tmp_path):
    data = _data_args(files)
    source = load_source(data.dataset, text_column="review", label_column="sentiment")
    unseen = write_csv(tmp_path / "unseen.csv", [{"review": "fine", "sentiment": "mixed"}] * 3)
    cases = [
        (_data_args(files, eval_files=[str(unseen)]), DataError, "mixed"),
        (_data_args(files, eval_files=[f"{files['own']}:text=body"]), DataError, "sentiment"),
        (_data_args(files, eval_files=[f"{files['own']}:txt=body"]), ConfigError, "txt"),
        (_data_args(files, eval_files=[f"{files['own']}:split=half"]), ConfigError, "split"),
        (_data_args(files, eval_files=[str(files["train"])]), ConfigError, "training --dataset"),
        (_data_args(files, eval_files=[str(files["same"])] * 2), ConfigError, "twice"),
        (_data_args(files, eval_files=[str(tmp_path / "gone.csv")]), DataError, "gone.csv"),
    ]
    for args, error, fragment in cases:
        with pytest.raises(error, match=fragment):
            load_test_sets(args, source)
    # `none` alone means none; --eval_datasets naming the training set is its test split, already there
    quiet = _data_args(files, eval_files=["none"], eval_datasets=[str(files["train"])])
    assert list(load_test_sets(quiet, source)) == [str(files["train"])]


def test_parse_eval_entry_options():
    entry = parse_eval_entry("tags.csv:text=t,label=a,b,c,split=test", whole=True, flag="--eval_files")
    assert (entry.source, entry.text_column, entry.label_column, entry.whole) == (
        "tags.csv",
        "t",
        "a,b,c",
        False,
    )
    plain = parse_eval_entry(r"C:\data\x.csv", whole=False, flag="--eval_datasets")
    assert plain.source == r"C:\data\x.csv" and plain.text_column is None and not plain.whole
    assert parse_eval_entry("vader-tweets:split=all", whole=False, flag="--eval_datasets").whole


# ---------------------------------------------------------------------------- item 4: nlptransfer evaluate


@pytest.fixture(scope="module")
def trained(model_dir, files, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    tc.main(_train_flags(model_dir, files["train"], out))
    return out


def test_evaluate_writes_the_recipes_schema(trained, files, tmp_path, capsys):
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(trained), "--input", str(files["own"])]
    metrics = cli.cli([*argv, "--text_column", "body", "--label_column", "stars", "--output_dir", str(out)])
    assert {"test", "test_report", "test_confusion_matrix", "test_rows"} <= set(metrics)
    assert metrics["test_rows"] == {str(files["own"]): "whole file, 20 rows"}
    assert sum(map(sum, metrics["test_confusion_matrix"])) == 20
    report = metrics["test_report"]
    assert report["positive"]["support"] == 10 and report["negative"]["support"] == 10
    written = json.loads((out / "run.json").read_text())
    assert written["status"] == "complete" and written["recipe"] == "evaluate"
    expected = {"metrics.json", "predictions.jsonl", "results.md", "confusion_matrix.png", "per_class.png"}
    assert expected <= set(written["files"])
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and set(rows[0]) == {"text", "gold", "label", "score", "probabilities"}
    assert [r["gold"] for r in rows] == [r["sentiment"] for r in sentiment_rows(20, seed=2, neutral=False)]
    accuracy = np.mean([r["gold"] == r["label"] for r in rows])
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy)
    # the same rows through predict: the same predictions
    predicted = cli.cli(
        ["predict", "--model", str(trained), "--input", str(files["own"]), "--text_column", "body"]
    )
    assert [p["label"] for p in predicted] == [r["label"] for r in rows]
    results = (out / "results.md").read_text()
    assert "whole file, 20 rows" in results and "| 10 " in results and "10.0000" not in results
    # the output-dir rules of the recipes: a finished evaluation is not overwritten without the flag
    with pytest.raises(Exception, match="--overwrite_output_dir"):
        cli.cli([*argv, "--text_column", "body", "--label_column", "stars", "--output_dir", str(out)])


def test_evaluate_overwrites_only_a_previous_evaluation(trained, files, tmp_path, capsys):
    """--overwrite_output_dir replaces a previous evaluation, never a training run's files (its model)."""
    argv = ["evaluate", "--model", str(trained), "--input", str(files["same"])]
    argv += ["--text_column", "review", "--label_column", "sentiment", "--overwrite_output_dir"]
    other = tmp_path / "other-run"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"the trained weights")
    record = {"recipe": "text_classification", "status": "complete", "files": ["model.safetensors"]}
    (other / "run.json").write_text(json.dumps(record))
    before = {p.name: p.read_bytes() for p in other.iterdir()}
    line = cli_error(capsys, [*argv, "--output_dir", str(other)])
    assert "holds a text_classification run" in line and "--overwrite_output_dir replaces only" in line
    assert {p.name: p.read_bytes() for p in other.iterdir()} == before
    out = tmp_path / "ev"
    cli.cli([*argv, "--output_dir", str(out)])
    cli.cli([*argv, "--output_dir", str(out)])  # a previous evaluation is replaced
    assert json.loads((out / "run.json").read_text())["status"] == "complete"


def test_evaluate_never_writes_into_the_model_or_over_its_input(trained, files, tmp_path, capsys):
    """--output_dir RUN/eval wrote an evaluation into the trained run (only RUN itself, or a folder holding
    it, was refused); an --input inside --output_dir was replaced by --overwrite_output_dir."""
    before = sorted(p.name for p in trained.iterdir())
    argv = ["evaluate", "--model", str(trained), "--text_column", "review", "--label_column", "sentiment"]
    line = cli_error(capsys, [*argv, "--input", files["same"], "--output_dir", trained / "eval"])
    assert "lies inside the model being evaluated" in line
    assert sorted(p.name for p in trained.iterdir()) == before
    out = tmp_path / "ev"
    cli.cli([*argv, "--input", str(files["same"]), "--output_dir", str(out)])
    rows = out / "predictions.jsonl"  # text, gold, label: a file one could evaluate again
    saved = rows.read_bytes()
    again = [*argv, "--input", rows, "--text_column", "text", "--label_column", "gold"]
    line = cli_error(capsys, [*again, "--output_dir", out, "--overwrite_output_dir"])
    assert "--input" in line and "is inside --output_dir" in line and rows.read_bytes() == saved


def test_evaluate_names_every_unknown_label_in_one_line(trained, tmp_path):
    rows = [{"review": "good", "sentiment": s} for s in ("positive", "awful", "meh", "negative")]
    data = write_csv(tmp_path / "odd.csv", rows)
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", str(trained), "--input", str(data), "--output_dir", str(out)]
    with pytest.raises(DataError) as err:
        cli.cli([*argv, "--text_column", "review", "--label_column", "sentiment"])
    assert "'awful'" in str(err.value) and "'meh'" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_evaluate_refuses_a_diverged_model_in_one_line(trained, files, tmp_path, capsys):
    """A model whose weights are NaN: one line naming it, no predictions.jsonl full of NaN, nothing written."""
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    weights = load_file(broken / "model.safetensors")
    weights = {name: t.fill_(float("nan")) if t.is_floating_point() else t for name, t in weights.items()}
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "ev"
    argv = ["evaluate", "--model", broken, "--input", files["same"], "--output_dir", out]
    line = cli_error(capsys, [*argv, "--text_column", "review", "--label_column", "sentiment"])
    assert "NaN or infinite probabilities for 30 of 30 texts" in line and "retrain" in line
    assert not out.exists()


# ------------------------------------------------------------------------------------ item 14: cosmetics


def test_support_is_a_count_in_metrics_and_in_the_report(tmp_path):
    report = per_class_report([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"])
    assert all(type(s["support"]) is int for s in report.values() if isinstance(s, dict))
    run = tmp_path / "old-run"  # a run saved before: support as a float
    run.mkdir()
    old = {k: {**v, "support": float(v["support"])} if isinstance(v, dict) else v for k, v in report.items()}
    old["a"]["support"] = 100.0
    (run / "metrics.json").write_text(json.dumps({"recipe": "text_classification", "test_report": old}))
    _, md = build_report([run], tmp_path / "r.html")
    text = md.read_text()
    assert "| 100 " in text and "100.0000" not in text


def _captured(monkeypatch) -> list:
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"")
    return drawn


def test_heatmaps_name_datasets_not_absolute_paths(monkeypatch):
    drawn = _captured(monkeypatch)
    sets = ["/home/someone/data/reviews/site_a.csv", "/home/someone/data/reviews/site_b.csv", "vader-nyt"]
    figures.cross_domain_figure(["run"], sets, np.full((1, 3), 0.5), "t")
    figures.domain_heatmap_figure({"m": np.eye(2)}, ["/x/one/r.csv", "/x/two/r.csv"], title="t")
    cross, domains = drawn
    assert [t.get_text() for t in cross.axes[0].get_xticklabels()] == [
        "site_a.csv",
        "site_b.csv",
        "vader-nyt",
    ]
    assert [t.get_text() for t in domains.axes[0].get_yticklabels()] == ["one/r.csv", "two/r.csv"]


def test_per_class_legend_does_not_cover_the_bars(monkeypatch):
    drawn = _captured(monkeypatch)
    rows = [{"class": c, "precision": 1.0, "recall": 1.0, "f1-score": 1.0} for c in ("neg", "pos")]
    figures.per_class_figure(rows, "t")
    fig = drawn[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legends = list(fig.legends) + ([ax.get_legend()] if ax.get_legend() else [])
    assert legends
    for legend in legends:
        assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
