"""The `nlptransfer` console script, in-process on tiny models: run, list, cp, predict, report, explain."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tiny import cli_error, sentiment_rows, tiny_model_dir, write_csv
from transformers import pipeline

from nlptransfer import cli
from nlptransfer.cli.predict import check_unicode
from nlptransfer.cli.run import shipped_configs
from nlptransfer.errors import DataError


def _run_argv(model_dir, data_csv, out, *extra):
    return [
        "run",
        "sentiment",
        "--model_name_or_path",
        str(model_dir),
        "--dataset",
        str(data_csv),
        "--eval_datasets",
        "none",
        "--text_column",
        "review",
        "--label_column",
        "sentiment",
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "1e-2",
        "--use_cpu",
        "true",
        *extra,
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny sentiment runs made by `nlptransfer run`: full, lora (merged), lora adapter-only, prompt tuning."""
    root = tmp_path_factory.mktemp("cli")
    model_dir = tiny_model_dir(root / "models")
    data = write_csv(root / "reviews.csv", sentiment_rows(60))
    out = {"data": data, "root": root}
    for name, extra in (
        ("full", ()),
        ("lora", ("--strategy", "lora", "--target_modules", "query", "value")),
        (
            "adapter",
            ("--strategy", "lora", "--target_modules", "query", "value", "--merge_adapters", "false"),
        ),
        ("prompt", ("--strategy", "prompt_tuning", "--num_virtual_tokens", "4")),
    ):
        cli.main(_run_argv(model_dir, data, root / name, *extra))
        out[name] = root / name
    return out


_error = cli_error  # the one-line error helper (tiny.py)


def test_run_writes_a_complete_run(runs):
    for name in ("full", "lora", "adapter"):
        run = json.loads((runs[name] / "run.json").read_text())
        assert run["status"] == "complete", name
    assert (runs["adapter"] / "adapter_config.json").is_file()
    assert (runs["lora"] / "model.safetensors").is_file()


def test_run_unknown_recipe_lists_the_recipes(capsys):
    line = _error(capsys, ["run", "sentimnet"])
    assert "sentiment" in line and "text_classification" in line


def test_help_shows_examples(capsys):
    for command in ("list", "cp", "predict", "report", "explain"):
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert "examples:" in capsys.readouterr().out, command
    cli.main(["run", "--help"])
    assert "examples:" in capsys.readouterr().out


def test_list(capsys):
    cli.main(["list"])
    out = capsys.readouterr().out
    for word in (
        "sentiment",
        "text_classification",
        "vader-movies",
        "pubmed-pubtype",
        "all-MiniLM-L6-v2",
        "lora",
    ):
        assert word in out
    assert "sentiment/minilm_lora" in out  # the shipped configs of this checkout


def test_docs_name_every_recipe_and_shipped_config(capsys):
    """docs/cli.md lists every recipe `nlptransfer list` shows, with its shipped configs."""
    cli.main(["list"])
    out = capsys.readouterr().out
    recipes_block = out.split("\n\n")[0].splitlines()
    assert recipes_block[0].startswith("Recipes")
    recipes = [line.strip() for line in recipes_block[1:]]
    assert "sentiment" in recipes and "distill" in recipes
    docs = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    assert sorted(r for r in recipes if r not in rows) == [], "recipes missing from docs/cli.md"
    for key in shipped_configs():
        recipe, config = key.split("/")
        if recipe not in recipes:  # recipes/accelerate/: launcher configs, documented in README.md
            continue
        assert f"`{config}`" in rows[recipe], f"docs/cli.md: {key} missing from the {recipe} row"


def test_cp_copies_and_refuses_to_overwrite(tmp_path, capsys):
    dest = tmp_path / "mine.yaml"
    cli.main(["cp", "sentiment/minilm_lora", str(dest)])
    assert "strategy: lora" in dest.read_text()
    before = dest.read_text()
    line = _error(capsys, ["cp", "sentiment/minilm_full", str(dest)])
    assert "already exists" in line and dest.read_text() == before
    cli.main(["cp", "text_classification/minilm_pubmed_mesh.yaml", str(tmp_path)])
    assert (tmp_path / "minilm_pubmed_mesh.yaml").is_file()
    assert "minilm_full" in _error(capsys, ["cp", "sentiment/nope", str(tmp_path / "x.yaml")])


def test_cp_expands_a_tilde_and_keeps_the_folder_slash(tmp_path, monkeypatch, capsys):
    """A quoted `cp CONFIG '~/mine.yaml'` (the shell expands no ~) was "folder ~ does not exist"; `'~/d/'` still
    means into the folder d, and an unknown ~user is one line."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "d").mkdir(parents=True)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    cli.main(["cp", "sentiment/minilm_lora", "~/mine.yaml"])
    assert "strategy: lora" in (tmp_path / "home" / "mine.yaml").read_text()
    cli.main(["cp", "sentiment/minilm_lora", "~/d/"])
    assert (tmp_path / "home" / "d" / "minilm_lora.yaml").is_file()
    line = _error(capsys, ["cp", "sentiment/minilm_lora", "~/nodir/"])  # a folder, not a file named nodir
    assert "nodir does not exist" in line and not (tmp_path / "home" / "nodir").exists()
    line = _error(capsys, ["cp", "sentiment/minilm_lora", "~nlptransfer-no-such-user/x.yaml"])
    assert "cannot expand ~nlptransfer-no-such-user: no such user" in line
    assert list((tmp_path / "cwd").iterdir()) == []


@pytest.mark.parametrize("kind", ["full", "lora", "adapter"])
def test_predict_csv_rows_in_order(runs, kind, tmp_path):
    rows = sentiment_rows(23, seed=5)
    data = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "pred.jsonl"
    cli.main(
        [
            "predict",
            "--model",
            str(runs[kind]),
            "--input",
            str(data),
            "--text_column",
            "review",
            "--output",
            str(out),
            "--batch_size",
            "4",
        ]
    )
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["text"] for g in got] == [r["review"] for r in rows]
    for g in got:
        probabilities = g["probabilities"]
        assert probabilities[g["label"]] == max(probabilities.values())  # the label is the most probable
        assert abs(sum(probabilities.values()) - 1) < 1e-4
    if kind != "adapter":  # same labels as transformers' pipeline on the saved model, text by text
        clf = pipeline("text-classification", model=str(runs[kind]))
        assert [p["label"] for p in clf([r["review"] for r in rows], batch_size=1)] == [
            g["label"] for g in got
        ]


def test_predict_text_csv_output_and_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    argv = [
        "predict",
        "--model",
        str(runs["full"]),
        "--text",
        "good film",
        "--text",
        "awful plot",
        "--output",
        str(out),
    ]
    cli.main(argv)
    table = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["text"] for r in table] == ["good film", "awful plot"]
    assert {"label", "score", "p_negative", "p_neutral", "p_positive"} <= set(table[0])
    assert "--overwrite" in _error(capsys, argv)
    cli.main([*argv, "--overwrite"])
    assert "text_column" in _error(
        capsys,
        [
            "predict",
            "--model",
            str(runs["full"]),
            "--input",
            str(runs["data"]),
            "--output",
            str(tmp_path / "x.csv"),
        ],
    )
    assert "config.json" in _error(capsys, ["predict", "--model", str(tmp_path), "--text", "x"])


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.imgs, self._in_h2 = [], [], False

    def handle_starttag(self, tag, attrs):
        self._in_h2 = tag == "h2"
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def test_report_has_every_section_it_claims(runs, tmp_path, capsys):
    out = tmp_path / "r.html"
    cli.main(["report", str(runs["full"]), str(runs["lora"]), "--output", str(out)])
    page = _Collect()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.h2 == [
        "Runs",
        "Metrics",
        "Loss curves",
        "Confusion matrix",
        "Per-class scores",
        "Config differences",
    ]
    for section in page.h2:  # the navigation links to every section
        assert f'href="#{section.lower().replace(" ", "-")}"' in out.read_text()
    assert page.imgs and all(src.startswith("data:image/png;base64,") for src in page.imgs)
    md = (tmp_path / "r.md").read_text()
    assert "## Config differences" in md and "strategy" in md
    links = re.findall(r"\]\((r_files/[^)]+)\)", md)
    assert len(links) == len(page.imgs) and all((tmp_path / link).is_file() for link in links)
    assert "already exists" in _error(capsys, ["report", str(runs["full"]), "--output", str(out)])


@pytest.mark.skipif(importlib.util.find_spec("captum") is None, reason="captum not installed")
def test_explain(runs, tmp_path, capsys):
    html = tmp_path / "why.html"
    result = cli.cli(
        [
            "explain",
            "--model",
            str(runs["full"]),
            "--text",
            "good movie but boring plot",
            "--steps",
            "8",
            "--html",
            str(html),
        ]
    )
    assert result["tokens"][1:-1] == ["good", "movie", "but", "boring", "plot"]
    assert max(abs(s) for s in result["scores"]) == pytest.approx(1.0)
    assert "boring" in capsys.readouterr().out and "<span" in html.read_text()


@pytest.mark.parametrize("kind", ["full", "adapter", "prompt"])
def test_predict_matches_the_runs_own_predictions(runs, kind, tmp_path):
    """Reloading (plain model, or adapter + head rebuilt from config.json) scores like the run did."""
    saved = [json.loads(line) for line in (runs[kind] / "predictions.jsonl").read_text().splitlines()]
    rows = cli.cli(
        [
            "predict",
            "--model",
            str(runs[kind]),
            "--input",
            str(runs[kind] / "predictions.jsonl"),
            "--output",
            str(tmp_path / "p.jsonl"),
        ]
    )
    # One schema (issue 21 #13): the run's rows are predict's (`label` = the prediction) plus `gold`.
    assert set(saved[0]) == set(rows[0]) | {"gold"}
    assert [r["label"] for r in rows] == [s["label"] for s in saved]
    assert [r["score"] for r in rows] == pytest.approx([s["score"] for s in saved], abs=1e-4)


def test_predict_multilabel_uses_the_runs_thresholds(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "models")
    rows = [
        {"text": r["review"], "tags": r["sentiment"] + (";movie" if "movie" in r["review"] else "")}
        for r in sentiment_rows(60)
    ]
    data = write_csv(tmp_path / "tags.csv", rows)
    out = tmp_path / "ml"
    cli.main(
        [
            "run",
            "text_classification",
            "--model_name_or_path",
            str(model_dir),
            "--dataset",
            str(data),
            "--label_column",
            "tags",
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--use_cpu",
            "true",
        ]
    )
    thresholds = json.loads((out / "metrics.json").read_text())["thresholds"]
    got = cli.cli(["predict", "--model", str(out), "--text", "good movie", "--text", "bad plot"])
    for row in got:
        assert set(row["probabilities"]) == set(thresholds)
        assert row["label"] == [n for n, p in row["probabilities"].items() if p >= thresholds[n]]


def test_explain_without_captum_is_one_line(runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "captum", None)  # `import captum` now raises ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    line = _error(capsys, ["explain", "--model", str(runs["full"]), "--text", "good"])
    assert "captum" in line


def test_report_cross_domain_and_comparison_sections(runs, tmp_path):
    import shutil

    run = tmp_path / "xd"
    shutil.copytree(runs["full"], run, ignore=shutil.ignore_patterns("*.safetensors"))
    metrics = json.loads((run / "metrics.json").read_text())
    (only,) = metrics["test"].values()
    metrics["test"] = {"domain-a": only, "domain-b": {**only, "f1_macro": 0.1}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    shutil.copy(_tiny_png(tmp_path), run / "comparison.png")
    (run / "comparison.md").write_text("| method | f1 |\n|---|---|\n| tfidf | 0.5 |\n")
    out = tmp_path / "rep.html"
    cli.main(["report", str(run), "--output", str(out)])
    page = _Collect()
    page.feed(out.read_text(encoding="utf-8"))
    assert "Cross-domain" in page.h2 and "Comparison" in page.h2
    text = out.read_text(encoding="utf-8")
    assert "domain-b" in text and "tfidf" in text


def _tiny_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    path = tmp_path / "c.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def test_an_output_file_through_a_dangling_symlink_is_refused(runs, tmp_path, capsys):
    """report/predict/explain share check_output: a symlink to nothing would write a file where it points."""
    (tmp_path / "r.html").symlink_to(tmp_path / "elsewhere.html")
    line = _error(capsys, ["report", str(runs["full"]), "--output", str(tmp_path / "r.html")])
    assert "dangling symlink" in line and not (tmp_path / "elsewhere.html").exists()
    (tmp_path / "p.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    argv = ["predict", "--model", str(runs["full"]), "--text", "x", "--output", str(tmp_path / "p.jsonl")]
    assert "dangling symlink" in _error(capsys, argv) and not (tmp_path / "elsewhere.jsonl").exists()


def test_explain_refuses_an_empty_text(runs, capsys):
    assert "--text is empty" in _error(capsys, ["explain", "--model", str(runs["full"]), "--text", "  "])


def test_predict_refuses_an_output_inside_the_model_folder(runs, capsys):
    """--output RUN/predictions.jsonl --overwrite replaced the run's own test rows (with gold labels)."""
    saved = runs["full"] / "predictions.jsonl"
    before = saved.read_bytes()
    argv = ["predict", "--model", str(runs["full"]), "--text", "good film", "--overwrite"]
    line = _error(capsys, [*argv, "--output", str(saved)])
    assert "inside the model folder" in line and saved.read_bytes() == before
    assert "inside the model folder" in _error(capsys, [*argv, "--output", str(runs["full"] / "mine.csv")])
    assert not (runs["full"] / "mine.csv").exists()


def test_predict_never_replaces_its_input_file(runs, tmp_path, capsys):
    """--input t.jsonl --output t.jsonl --overwrite replaced the file being read (its other columns lost)."""
    data = tmp_path / "t.jsonl"
    data.write_text('{"text": "good film", "id": 7}\n', encoding="utf-8")
    before = data.read_bytes()
    argv = ["predict", "--model", str(runs["full"]), "--input", str(data), "--overwrite"]
    line = _error(capsys, [*argv, "--output", str(data)])
    assert "is the --input file" in line and data.read_bytes() == before


def test_predict_expands_a_tilde_the_shell_left(runs, tmp_path, monkeypatch, capsys):
    """`--output=~/p.jsonl` (the shell expands no ~ after `=`) was "folder ~ does not exist" (evaluate and
    export made a folder named ~ in the working directory); an unknown ~user is one line."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    cli.cli(["predict", f"--model={runs['full']}", "--text", "good film", "--output=~/p.jsonl"])
    assert (tmp_path / "p.jsonl").is_file() and not (tmp_path / "~").exists()
    for argv in (
        ["predict", "--model", "~nlptransfer-no-such-user/run", "--text", "x"],
        ["export", "~nlptransfer-no-such-user/run"],
        [
            "evaluate",
            "--model",
            str(runs["full"]),
            "--input",
            "x.csv",
            "--output_dir",
            "~nlptransfer-no-such-user",
        ],
        ["explain", "--model", "~nlptransfer-no-such-user/run", "--text", "x"],
        ["serve", "~nlptransfer-no-such-user/run"],
        ["report", "~nlptransfer-no-such-user/run"],
    ):
        assert "cannot expand ~nlptransfer-no-such-user: no such user" in _error(capsys, argv)


def test_predict_refuses_a_text_that_is_not_unicode(runs, capsys):
    """Argument bytes that are not UTF-8 arrive as lone surrogates (surrogateescape); the tokenizer raised a
    TypeError traceback on them."""
    line = _error(capsys, ["predict", "--model", str(runs["full"]), "--text", "fine", "--text", "caf\udce9"])
    assert "--text #2 is not valid Unicode" in line
    with pytest.raises(DataError, match=r"t\.jsonl: text #2 is not valid Unicode"):
        check_unicode(["ok", "\ud800"], "t.jsonl")
    check_unicode(["caf\u00e9", "\U0001f600"], None)  # real characters pass


@pytest.mark.parametrize("given", ["--text", ".txt"])
def test_predict_refuses_a_text_column_for_input_without_columns(run_dir, tmp_path, capsys, given):
    """--text_column was silently unused with --text strings or a .txt file (one text per line); now one line
    naming the table inputs it applies to, before the model loads or anything is written."""
    texts = tmp_path / "texts.txt"
    texts.write_text("good film\nbad plot\n", encoding="utf-8")
    source = ["--text", "good film"] if given == "--text" else ["--input", texts]
    out = tmp_path / "preds.jsonl"
    argv = [str(a) for a in ("predict", "--model", run_dir, *source, "--output", out)]
    line = _error(capsys, [*argv, "--text_column", "review"])
    assert "--text_column applies only to table inputs (--input .csv/.tsv/.json/.jsonl/.parquet)" in line
    assert (
        "not to --text;" if given == "--text" else f"not to {texts} (a .txt file is one text per line)"
    ) in line
    assert "drop --text_column" in line and not out.exists()
    assert len(cli.cli(argv)) == (1 if given == "--text" else 2)  # without the flag: predicted


def test_output_cut_short_by_a_closed_pipe_ends_quietly():
    """`nlptransfer predict ... | head -1`: exit code 1 and no BrokenPipeError traceback."""
    code = (
        "from nlptransfer.errors import run_cli\n"
        "run_cli(lambda argv: [print('row', i, 'x' * 60) for i in range(200000)], [])"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout.readline().startswith(b"row 0 ")
    proc.stdout.close()  # the reader goes away, as `head -1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err
