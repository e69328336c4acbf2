"""`nlptransfer export`: a trained classifier run -> an ONNX folder (optionally int8) that `predict` runs.

The work is `nlptransfer.export.export_run`; torch, transformers and onnx are imported inside it, so
`nlptransfer --help` does not load them.
"""

from __future__ import annotations

import argparse
import sys

from nlptransfer.cli.common import Subcommand, add_loading_flags, user_path
from nlptransfer.cli.predict import check_positive

EXAMPLES = """examples:
  nlptransfer export outputs/sentiment-minilm-full --format onnx                 # -> outputs/sentiment-minilm-full-onnx
  nlptransfer export outputs/sentiment-minilm-full --format onnx --quantize int8 # -> ...-onnx-int8
  nlptransfer export outputs/mt/tasks/sentiment --output exports/sentiment --max_rows 500
  nlptransfer predict --model outputs/sentiment-minilm-full-onnx-int8 --text "great film"

Every classifier a run trains exports (full, merged or adapter-only LoRA runs: merged in memory, pooled
heads, multi-label with its thresholds, word-vector classifiers, a multitask run's tasks/<name>). The folder
holds model.onnx (or only model.int8.onnx with --quantize int8), the tokenizer, config.json (labels),
export.json and README.md. Before writing, the exported model is compared with the PyTorch model on the run's
test rows (predictions.jsonl; else a few probe texts): agreement, largest probability difference and both
models' scores go to export.json and the card; agreement below --min_agreement writes nothing unless --force.
Default --output: <RUN_DIR>-onnx[-int8] beside the run (never inside a run directory); an existing folder is
only replaced with --overwrite, and only when it holds a previous export. Needs the export extra:
pip install 'nlptransfer[export]' (torch.onnx + onnxruntime; optimum-onnx 0.1.0 needs transformers < 4.58)."""


def agreement(value: str) -> float:
    """--min_agreement: a fraction between 0 and 1."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {value!r}")
    return number


def cmd_export(args: argparse.Namespace) -> dict:
    from nlptransfer.export import export_run

    check_positive(args, "batch_size", "max_rows")
    record = export_run(
        args.run_dir,
        args.output,
        fmt=args.format,
        quantize=args.quantize,
        force=args.force,
        min_agreement=args.min_agreement,
        overwrite=args.overwrite,
        max_rows=args.max_rows,
        batch_size=args.batch_size,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
    )
    check = record["check"]
    print(
        f"wrote {record['output']} ({record['model_file']}); agreement with PyTorch {check['agreement']:.2%} "
        f"on {check['source']}, largest probability difference {check['max_probability_difference']:.2e}",
        file=sys.stderr,
    )
    return record


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dir", type=user_path, metavar="RUN_DIR", help="a classification run's output directory"
    )
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default: onnx)")
    p.add_argument(
        "--quantize", choices=["int8"], default=None, help="int8: dynamic quantisation (default: none)"
    )
    p.add_argument(
        "--output",
        "--output_dir",
        type=user_path,
        metavar="DIR",
        help="the export folder (default: <RUN_DIR>-onnx[-int8])",
    )
    p.add_argument(
        "--overwrite",
        "--overwrite_output_dir",
        action="store_true",
        help="replace a previous export in --output (never any other file)",
    )
    p.add_argument(
        "--min_agreement",
        type=agreement,
        default=None,
        metavar="FRACTION",
        help="refuse the export when the decisions agree with PyTorch's on fewer rows (default: 0.99, "
        "with --quantize int8 0.95)",
    )
    p.add_argument("--force", action="store_true", help="write the export even below --min_agreement")
    p.add_argument(
        "--max_rows",
        type=int,
        default=None,
        help="check on the run's first N test rows (predictions.jsonl) only (default: all); refused for a run "
        "without them, which is checked on built-in probe texts",
    )
    p.add_argument("--batch_size", type=int, default=64, help="texts per forward pass (default: 64)")
    add_loading_flags(p)


EXPORT = Subcommand(
    help="export a trained classifier run to ONNX (optionally int8) for onnxruntime",
    examples=EXAMPLES,
    add_arguments=add_arguments,
    run=cmd_export,
)
