"""nlptransfer.reporting: the one CSV writer, markdown tables, model cards and figures (explicit Agg canvas)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nlptransfer.evaluation.comparison import run_comparison
from nlptransfer.reporting import csv_text, figures, markdown_table, model_card, render_card

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AWKWARD = [
    {"name": "plain", "note": "no quoting needed", "score": 0.5},
    {"name": "comma, inside", "note": 'a "quoted" word', "score": 1},
    {"name": "two\nlines", "note": "carriage\r\nreturn", "score": None},
    {"name": "", "note": " leading and trailing spaces ", "score": -3.25},
]


# ---------------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("lineterminator", ["\n", "\r\n"])
def test_csv_text_round_trips_commas_quotes_and_newlines(lineterminator):
    text = csv_text(AWKWARD, ["name", "note", "score"], lineterminator=lineterminator)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["name", "note", "score"]
    expected = [[r["name"], r["note"], "" if r["score"] is None else str(r["score"])] for r in AWKWARD]
    assert rows[1:] == expected
    assert text.endswith(lineterminator) and text.count(lineterminator) >= len(AWKWARD) + 1


def test_csv_text_columns_default_missing_and_extra_keys():
    rows = [{"a": 1, "b": 2}, {"b": 3, "c": 4}]
    assert csv_text(rows) == "a,b,c\n1,2,\n,3,4\n"  # default: every key, first-seen order; gaps empty
    assert csv_text(rows, ["c", "a"]) == "c,a\n,1\n4,\n"  # chosen columns, other keys left out
    assert csv_text([], ["x"]) == "x\n"


def test_markdown_table_pads_and_formats_floats():
    table = markdown_table([{"m": "lora", "f1": 0.123456}, {"m": "x", "f1": 1}], ["m", "f1"])
    assert table.splitlines() == [
        "| m    | f1     |",
        "|------|--------|",
        "| lora | 0.1235 |",
        "| x    | 1      |",
    ]


# --------------------------------------------------------------------------------------------- cards


def test_model_card_is_render_card_with_a_results_section():
    card = model_card(
        title="T",
        base_model="bert",
        dataset="d",
        strategy="lora",
        label_names=["a", "b"],
        results_table="| x |",
        trainable=1234,
        total=99999,
        command="python -m x",
        notes=["n1"],
        load_snippet="code",
    )
    lines = card.splitlines()
    assert lines[:6] == [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [nlptransfer, transfer-learning]",
        "---",
        "# T",
    ]
    assert "(1,234 of 99,999 parameters trained). Labels: a, b." in card
    for section in ("## Results (test splits; measured by this run)", "## Use", "## Reproduce", "## Notes"):
        assert section in lines
    assert card.endswith("- n1\n")


def test_render_card_use_note_tags_and_no_notes():
    card = render_card(
        title="DAPT",
        body=["Body.", ""],
        load_snippet="load()",
        command="cmd",
        use_note="or run it",
        pipeline_tag="fill-mask",
        tags=("nlptransfer", "dapt"),
    )
    assert "pipeline_tag: fill-mask\ntags: [nlptransfer, dapt]\n" in card
    assert "```python\nload()\n```\n\nor run it\n\n## Reproduce\n\n```bash\ncmd\n```\n" in card
    assert "## Notes" not in card


def test_pretraining_card_goes_through_render_card():
    from nlptransfer.reporting import pretraining_card

    card = pretraining_card(
        {"mode": "tapt", "corpus": "pubmed", "train_texts": 10, "heldout_texts": 3},
        base_model="/models/bert",
        strategy="full",
        whole_word_mask=True,
        table="TABLE",
        command="cmd",
        notes=["note"],
        output_dir=Path("/out"),
    )
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: fill-mask\n")
    assert "# bert, task-adaptive (TAPT) masked-LM pretraining on pubmed" in card and "\nTABLE\n" in card
    assert "## Reproduce" in card and card.endswith("- note\n")


def test_pretraining_table_reads_the_runs_metrics():
    from nlptransfer.reporting import pretraining_table

    fertility = {"fertility": 1.5, "fragmented_rate": 0.25, "unknown_rate": 0.0}
    metrics = {
        "mlm_loss_before": 10.0,
        "mlm_loss_after": 2.0,
        "perplexity_before": 22026.4658,
        "perplexity_after": 7.3891,
        "fertility_base_tokenizer": fertility,
        "fertility": {**fertility, "fertility": 1.25},
    }
    lines = pretraining_table(metrics).splitlines()
    assert lines[0].split("|")[1:-1] == [" model           ", " mlm_loss ", " perplexity "]
    assert lines[2].split("|")[2:4] == [" 10.0000  ", " 22026.4658 "]
    assert lines[3].split("|")[2:4] == [" 2.0000   ", " 7.3891     "]
    assert lines[4] == ""
    assert [line.split("|")[2].strip() for line in lines[7:]] == ["1.5000", "1.2500"]


# ------------------------------------------------------------------------------------------- figures


def _comparison():
    def fake(base):
        return lambda seed, idx: {"f1_macro": base + seed / 100 + len(idx) / 1000}

    methods = {"tfidf_logreg": fake(0.5), "scratch": fake(0.4), "lora": fake(0.6)}
    return run_comparison(methods, [1, 2, 3], [30, None], 90, np.arange(90) % 3)


def _every_figure() -> dict[str, bytes | None]:
    grid = np.array([[0.8, 0.5, np.nan], [0.4, 0.9, 0.6], [0.7, 0.3, 0.85]])
    result = _comparison()
    return {
        "loss": figures.loss_figure([{"step": 1, "loss": 1.0}, {"step": 2, "eval_loss": 0.7}], "loss"),
        "confusion": figures.confusion_figure([[5, 1], [0, 4]], ["neg", "pos"], "confusion"),
        "per_class": figures.per_class_figure(
            [{"class": "neg", "precision": 0.5, "recall": 0.4, "f1-score": 0.45}], "per class"
        ),
        "cross_domain": figures.cross_domain_figure(["run a", "run b"], ["x", "y", "z"], grid[:2], "xd"),
        "domain_heatmap": figures.domain_heatmap_figure(
            {"none (ours)": grid, "paper": grid}, ["/a/long/path/to/domain_one.csv", "b", "c"], title="t"
        ),
        "comparison": figures.comparison_figure(result),
        "data_efficiency": figures.data_efficiency_figure(result),
    }


def test_every_figure_is_a_png_and_leaves_pyplot_alone():
    import matplotlib
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    before = plt.get_fignums()
    pngs = _every_figure()
    for name, png in pngs.items():
        assert png is not None and png[:8] == PNG_MAGIC, name
    assert matplotlib.get_backend() == backend
    assert plt.get_fignums() == before == []


def test_figures_never_import_pyplot():
    """In a fresh process: every figure drawn, yet pyplot never imported and no backend chosen globally."""
    code = (
        "import sys, matplotlib\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_reporting import _every_figure\n"
        "pngs = _every_figure()\n"
        "assert all(p[:4] == b'\\x89PNG' for p in pngs.values())\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_loss_figure_without_losses_is_none():
    assert figures.loss_figure([{"step": 1, "learning_rate": 0.1}], "loss") is None


def test_format_mean_std_cells():
    from nlptransfer.reporting import format_mean_std

    assert format_mean_std([0.5]) == "0.5000"
    assert format_mean_std([0.05], signed=True) == "+0.0500"
    assert format_mean_std([0.4, 0.6]) == "0.5000 ± 0.1414"  # sample std (ddof=1)
    assert format_mean_std([-0.1, -0.3], signed=True) == "-0.2000 ± 0.1414"
