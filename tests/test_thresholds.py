"""Multi-label decision thresholds read back from a run's metrics.json or an export's export.json: a value a
hand edit left that is not a probability (a string, a list, null, NaN, infinity, 1.5, true) raised a
ValueError/TypeError traceback at prediction time; now one ModelError line naming the file, the label and the
fix, before any text is predicted."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from tiny import cli_error

from nlptransfer.errors import ModelError
from nlptransfer.predictor import checked_thresholds

LABELS = ["negative", "positive"]
BAD = ["high", [0.5], None, math.nan, math.inf, -math.inf, 1.5, -0.1, True]


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_threshold_that_is_not_a_probability_is_one_line(tmp_path, value):
    file = tmp_path / "metrics.json"
    with pytest.raises(ModelError) as info:
        checked_thresholds({"negative": 0.4, "positive": value}, file, LABELS)
    message = str(info.value)
    assert message.startswith(f"{file}: the threshold of label 'positive' is {json.dumps(value)}, ")
    assert "not a number between 0 and 1; set each label's threshold to a number between 0 and 1" in message
    assert "\n" not in message


def test_good_thresholds_come_back_as_floats_in_label_order(tmp_path):
    file = tmp_path / "metrics.json"
    assert checked_thresholds(None, file, LABELS) is None
    assert checked_thresholds({"positive": 1, "negative": 0}, file, LABELS) == [0.0, 1.0]
    assert checked_thresholds([0.25, 0.75], file, LABELS) == [0.25, 0.75]
    assert checked_thresholds({"b": 0.3, "a": 0.6}, file) == [0.3, 0.6]  # no labels: the file's order


@pytest.mark.parametrize(
    ("found", "fragment"),
    [
        ("high", '"thresholds" is "high", not a mapping of label to threshold'),
        ({"negative": 0.5}, "has no threshold for label(s) positive of config.json"),
        ([0.5], "has 1 thresholds for the model's 2 labels"),
        ([0.5, "x"], "the threshold of label 'positive' is \"x\""),
    ],
)
def test_thresholds_that_do_not_fit_the_labels_are_one_line(tmp_path, found, fragment):
    with pytest.raises(ModelError, match="number between 0 and 1") as info:
        checked_thresholds(found, tmp_path / "metrics.json", LABELS)
    assert fragment in str(info.value)


def test_export_json_names_the_other_fix(tmp_path):
    with pytest.raises(ModelError, match=r"export\.json: .*\(e\.g\. 0\.5\), or export the run again"):
        checked_thresholds({"negative": 0.5, "positive": "high"}, tmp_path / "export.json", LABELS)


@pytest.mark.parametrize("value", ["high", [0.5], math.nan, 1.5], ids=repr)
def test_predict_on_a_run_with_a_bad_threshold_is_one_line(run_dir, tmp_path, capsys, value):
    """The conftest classifier made multi-label, its metrics.json edited by hand: predict (and serve, export,
    evaluate, which load the run the same way) used to fail on the first batch with numpy's traceback."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    config = json.loads((run / "config.json").read_text())
    config["problem_type"] = "multi_label_classification"
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps({"thresholds": {"negative": 0.5, "positive": value}}))
    out = tmp_path / "preds.jsonl"
    line = cli_error(capsys, ["predict", "--model", run, "--text", "good film", "--output", out])
    assert f"{run / 'metrics.json'}: the threshold of label 'positive' is {json.dumps(value)}" in line, line
    assert "a number between 0 and 1" in line and not out.exists()
