"""`nlptransfer evaluate`: score a labelled file with a trained run directory, as the recipes score a test set.

Writes, through a `RunWriter` (the recipes' output-directory rules): `metrics.json` (`test`, `test_report`,
`test_confusion_matrix`, the recipes' keys), `predictions.jsonl` (the recipes' rows: text, gold, label =
the prediction, score, probabilities), `results.md` (the scores and the per-class table),
`confusion_matrix.png` and `per_class.png`, `config.yaml` (what was evaluated) and `run.json`. torch and
transformers are imported inside the functions that use them, so `nlptransfer --help` does not load them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nlptransfer.cli.common import Subcommand, add_loading_flags, parse_bool, user_path
from nlptransfer.cli.predict import check_positive
from nlptransfer.errors import DataError
from nlptransfer.predictor import check_finite, inference_max_length, load_run_model, run_settings

EXAMPLES = """examples:
  nlptransfer evaluate --model outputs/tc --input site_b.csv
  nlptransfer evaluate --model outputs/tc --input critics.csv --text_column snippet --label_column verdict \\
      --output_dir outputs/tc-on-critics

Every row of --input (.csv/.tsv/.json/.jsonl/.parquet, a folder, or an embedded dataset name) is scored;
rows with an empty text are dropped with a warning. Labels are matched to the model's labels BY NAME
(config.json id2label); labels the model does not know are named in one error line. Writes metrics.json,
predictions.jsonl (text, gold, label = the prediction, score, probabilities), results.md, confusion_matrix.png,
per_class.png, config.yaml and run.json into --output_dir (default: outputs/eval-<model>-<input>), which, as
for the recipes, must be new or hold a previous evaluation (--overwrite_output_dir replaces only its files).
Loads like predict: safetensors only, no model code, unless --allow_pickle true / --trust_remote_code true."""


def default_output(model: str, source: str) -> Path:
    """outputs/eval-<model folder>-<input file stem>."""
    return Path("outputs") / f"eval-{Path(model).name or 'model'}-{Path(source).stem or 'input'}"


def score_file(model, tokenizer, config, data, *, max_length: int, batch_size: int, thresholds) -> tuple:
    """(metrics, prediction rows) of a labelled dataset whose labels are in the model's id order."""
    import numpy as np

    from nlptransfer.evaluation.metrics import confusion, per_class_report
    from nlptransfer.training import FitResult, prediction_rows, score_split

    names = [config.id2label[i] for i in range(config.num_labels)]
    multilabel = config.problem_type == "multi_label_classification"
    cut = np.asarray(thresholds) if multilabel and thresholds and len(thresholds) == len(names) else None
    fit = FitResult(model, tokenizer, names, multilabel, max_length, batch_size, thresholds=cut)
    scored = score_split(fit, data)
    check_finite(scored.probs)  # a diverged model: one line, not a predictions.jsonl full of NaN
    metrics = {
        "test": scored.scores,
        "test_report": per_class_report(scored.preds, scored.refs, names, multilabel=multilabel),
        "test_confusion_matrix": confusion(scored.preds, scored.refs, names, multilabel=multilabel),
    }
    if cut is not None:
        metrics["thresholds"] = dict(zip(names, cut.tolist(), strict=True))
    return metrics, prediction_rows(fit, data, scored.preds, scored.probs)


def results_markdown(title: str, rows_scored: str, metrics: dict) -> str:
    """The scores and the per-class table (precision, recall, F1, support as an integer) as markdown."""
    from nlptransfer.reporting import markdown_table

    shown = [m for m in ("accuracy", "f1_micro", "f1_macro", "f1_samples") if m in metrics["test"]]
    overall = markdown_table([{"rows scored": rows_scored, **metrics["test"]}], ["rows scored", *shown])
    per_class = [{"class": name, **s} for name, s in metrics["test_report"].items() if isinstance(s, dict)]
    table = markdown_table(per_class, ["class", "precision", "recall", "f1-score", "support"])
    return f"# {title}\n\n{overall}\n\n## Per class\n\n{table}\n"


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from nlptransfer.data import is_multilabel
    from nlptransfer.data.eval_files import EvalSet
    from nlptransfer.data.labels import align_labels
    from nlptransfer.data.load import load_whole
    from nlptransfer.reporting import load_run, run_figures
    from nlptransfer.run_dirs import (
        check_input_outside_output,
        check_output_apart,
        check_output_dir,
        check_same_command,
    )
    from nlptransfer.runs import RunWriter

    check_positive(args, "batch_size", "max_length")
    out = Path(args.output_dir or default_output(args.model, args.input))
    check_output_apart(out, args.model, "--output_dir", "the model being evaluated")  # never into the run
    check_input_outside_output(args.input, out, "--input")  # --overwrite_output_dir would replace it
    check_same_command(out, "evaluate", "--output_dir", "--overwrite_output_dir")  # never a trained model
    check_output_dir(out, args.overwrite_output_dir, False)  # refused before anything is loaded
    data = load_whole(
        args.input,
        text_column=args.text_column,
        label_column=args.label_column,
        normalize_labels=args.normalize_labels,
    )
    model, tokenizer, config = load_run_model(
        args.model, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
    )
    multilabel = config.problem_type == "multi_label_classification"
    if is_multilabel(data) != multilabel:
        kinds = {True: "multi-label (a list of labels per row)", False: "single-label (one label per row)"}
        raise DataError(
            f"{args.input} is {kinds[is_multilabel(data)]} but the model in {args.model} is "
            f"{kinds[multilabel]}; evaluate it on data of its own kind (--label_column)"
        )
    names = [config.id2label[i] for i in range(config.num_labels)]
    data = align_labels(data, names, args.input, owner=f"the model in {args.model}")
    saved_length, thresholds = run_settings(Path(args.model), names)
    metrics, rows = score_file(
        model,
        tokenizer,
        config,
        data,
        max_length=inference_max_length(model.config, args.max_length, saved_length),
        batch_size=args.batch_size,
        thresholds=thresholds,
    )
    rows_scored = EvalSet(args.input, data, True, len(data)).rows
    metrics = {"recipe": "evaluate", "model": str(args.model), "input": str(args.input)} | metrics
    metrics["test_rows"] = {str(args.input): rows_scored}
    settings = {
        "model_name_or_path": str(args.model),
        "dataset": str(args.input),
        "text_column": args.text_column,
        "label_column": args.label_column,
        "normalize_labels": args.normalize_labels,
        "max_length": inference_max_length(model.config, args.max_length, saved_length),
        "batch_size": args.batch_size,
    }
    results = results_markdown(f"{Path(args.model).name} on {args.input}", rows_scored, metrics)
    with RunWriter.start(out, "evaluate", overwrite=args.overwrite_output_dir) as run:
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", settings)
        run.write_text("predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        run.write_text("results.md", results)
        if run.is_main:
            for name, png in run_figures(load_run(run.output_dir)).items():
                run.write_bytes(name, png)
    print(f"\n{results}\nSaved to {out}")
    return metrics


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=user_path, metavar="DIR", help="a run's output directory")
    p.add_argument(
        "--input",
        required=True,
        type=user_path,
        metavar="FILE",
        help="a labelled .csv/.tsv/.json/.jsonl/.parquet",
    )
    p.add_argument("--text_column", default="text", help="column holding the text (default: text)")
    p.add_argument("--label_column", default="label", help="column holding the gold label (default: label)")
    p.add_argument(
        "--output_dir",
        "--output",
        type=user_path,
        metavar="DIR",
        help="where to write (default: outputs/eval-<model>-<input>)",
    )
    p.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace a previous run's files in --output_dir (never any other file)",
    )
    p.add_argument(
        "--normalize_labels",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="strip + casefold the file's labels, as a run trained with --normalize_labels true",
    )
    p.add_argument("--batch_size", type=int, default=64, help="texts per forward pass (default: 64)")
    p.add_argument("--max_length", type=int, default=None, help="default: the run's max_length")
    add_loading_flags(p)


EVALUATE = Subcommand(
    help="score a labelled file with a trained run: metrics, per-class table, confusion matrix, predictions",
    examples=EXAMPLES,
    add_arguments=add_arguments,
    run=cmd_evaluate,
)
