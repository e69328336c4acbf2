"""`nlptransfer report` over one run of every type the project writes (issue 21 #6): every row names its
recipe, model and dataset, the train minutes are the run's, and the config diff has no "(unset)" rows.

The runs are the golden cases of test_behaviour (tiny models, built from configs, seconds each)."""

from __future__ import annotations

import json

import pytest
from test_behaviour import CASES, models  # noqa: F401  (models: the tiny checkpoints fixture)

from nlptransfer.reporting import build_report, load_run
from nlptransfer.reporting.html import config_diff, overview_rows, train_seconds

TYPES = {  # golden case -> the recipe its run.json names
    "text_classification_compare": "text_classification",
    "translation_pair": "translation_pair",
    "multitask": "multitask",
    "distill": "distill",
    "domain_adaptation_frozen": "domain_adaptation",
    "domain_pretraining": "domain_pretraining",
    "sentiment": "sentiment",
}


@pytest.fixture(scope="module")
def run_dirs(models, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("report-runs")
    dirs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NLPTRANSFER_CACHE", str(root / "cache"))
        for case in TYPES:
            data = root / "data" / case
            data.mkdir(parents=True)
            module, build = CASES[case]
            argv, _ = build(models, data, root / case)  # the folder names the run in the report
            module.main(argv)
            dirs[case] = root / case
    return dirs


def test_report_handles_every_run_type(run_dirs, tmp_path):
    runs = [load_run(path) for path in run_dirs.values()]
    for run in runs:
        assert run.config, f"{run.path}: no config.yaml"  # compare runs save theirs too
    rows = {row["run"]: row for row in overview_rows(runs)}
    for case, run in zip(TYPES, runs, strict=True):
        row = rows[run.name]
        assert row["recipe"] == TYPES[case], case
        assert row["model"] and row["dataset"] and "?" not in (row["model"], row["dataset"]), (case, row)
        seconds, whole_run = train_seconds(run)
        assert seconds is not None and seconds > 0, case
        record = json.loads((run.path / "run.json").read_text())
        assert seconds <= record["finished"] - record["started"] + 1, case  # training is part of the run
        if case == "text_classification_compare":  # no training time of its own: the run's
            assert whole_run and seconds == pytest.approx(record["finished"] - record["started"])
    diff = config_diff(runs)
    assert diff and not [r for r in diff if "(unset)" in json.dumps(r)]
    html, md = build_report([r.path for r in runs], tmp_path / "all.html")
    text = md.read_text(encoding="utf-8")
    assert "(unset)" not in text and "| ? |" not in text
    assert "PARTIAL" not in text and "Did transfer help?" in text  # the comparison shown


def test_report_shows_hand_edited_threshold_lists_by_position(run_dirs, tmp_path):
    """metrics.json thresholds as a list (a hand edit; the recipes write {label: threshold}) was an
    AttributeError traceback in `nlptransfer report`; now a row per position."""
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(run_dirs["sentiment"], run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["thresholds"] = [0.25, 0.75, 0.5]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert load_run(run).metrics["thresholds"] == [0.25, 0.75, 0.5]
    _, md = build_report([run], tmp_path / "edited.html")
    text = md.read_text(encoding="utf-8")
    assert "Decision thresholds" in text and "#2" in text and "0.75" in text
