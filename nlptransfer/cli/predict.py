"""`nlptransfer predict`: labels for texts from a trained run directory, one row per input in input order.

The model is loaded by `nlptransfer.predictor` (also `explain`, `evaluate` and `serve`). torch and transformers are
imported inside the functions that use them, so `nlptransfer --help` does not load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlptransfer.cli.common import Subcommand, add_loading_flags, check_output, user_path
from nlptransfer.errors import ConfigError, DataError, first_line
from nlptransfer.predictor import load_predictor

EXAMPLES = """examples:
  nlptransfer predict --model outputs/sentiment-minilm-full --text "great film" --text "dull plot"
  nlptransfer predict --model outputs/lora --input reviews.csv --text_column review --output preds.csv
  nlptransfer predict --model outputs/pt --input texts.txt --output preds.jsonl --overwrite

Input: .csv/.tsv/.json/.jsonl/.parquet (the --text_column) or .txt (one text per line, blank lines
skipped). Output: one row per input, in input order, with the predicted label, its score and every
label's probability; .jsonl or .csv by extension; printed as jsonl when --output is not given.
Multi-label models: sigmoid probabilities, labels above the run's tuned thresholds (metrics.json) or 0.5.
Only safetensors weights load and no code shipped with a model runs, unless --allow_pickle true /
--trust_remote_code true (for a source you trust)."""

# ----------------------------------------------------------------------------------------------
# predict


def read_texts(source: str, text_column: str) -> list[str]:
    """Texts of a .txt (one per non-blank line) or table file (the `text_column`), in file order."""
    from nlptransfer.data import EXTENSIONS, check_utf8

    path = Path(source)
    if not path.is_file():
        raise DataError(f"--input {source!r} is not a file; pass a .csv/.jsonl/.txt file")
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"--input {source}: unsupported extension {ext!r}; use one of {', '.join(EXTENSIONS)}"
        )
    if ext != ".parquet":
        check_utf8(path)
    if ext == ".txt":
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    import datasets

    kwargs = {"delimiter": "\t"} if ext == ".tsv" else {}
    try:
        ds = datasets.load_dataset(EXTENSIONS[ext], data_files={"train": str(path)}, split="train", **kwargs)
    except Exception as err:  # parser errors of pandas / pyarrow / json: one line
        raise DataError(
            f"could not read {path} as {ext}: {first_line(err)}; check that it is valid {ext}"
        ) from None
    if text_column not in ds.column_names:
        raise DataError(
            f"{path} has no column {text_column!r}; columns found: {', '.join(ds.column_names)}; "
            "pass the right one with --text_column"
        )
    return ["" if t is None else str(t) for t in ds[text_column]]


def format_rows(rows: list[dict], fmt: str) -> str:
    """`jsonl`: one JSON object per row. `csv`: text, label (multi-label joined by `;`), score, p_<label>."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    from nlptransfer.reporting.tables import csv_text

    names = list(rows[0]["probabilities"]) if rows else []
    columns = (
        ["text", "label"] + (["score"] if rows and "score" in rows[0] else []) + [f"p_{n}" for n in names]
    )
    table = []
    for r in rows:
        label = ";".join(r["label"]) if isinstance(r["label"], list) else r["label"]
        flat = {"text": r["text"], "label": label, **{f"p_{n}": p for n, p in r["probabilities"].items()}}
        if "score" in r:
            flat["score"] = r["score"]
        table.append(flat)
    return csv_text(table, columns)


def check_positive(args: argparse.Namespace, *flags: str) -> None:
    """Each `--flag` given (not None) is a whole number >= 1, or one ConfigError line naming it."""
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise ConfigError(f"--{flag} {value} must be a whole number of at least 1; pass e.g. --{flag} 1")


def check_unicode(texts: list[str], source: str | None) -> None:
    """One line for a text that is not valid Unicode (an unpaired surrogate: bytes of a --text argument that
    are not UTF-8, or a lone \\ud800 escape in a JSON file), which the tokenizer would fail on with a
    traceback; `source`: the --input file, None for --text."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            if source is None:
                raise ConfigError(
                    f"--text #{i + 1} is not valid Unicode (an unpaired surrogate: bytes that are not "
                    "UTF-8); pass the text as UTF-8"
                ) from None
            raise DataError(
                f"{source}: text #{i + 1} is not valid Unicode (an unpaired surrogate, e.g. a lone \\ud800 "
                "escape); fix that row or remove it"
            ) from None


def check_text_column(args: argparse.Namespace) -> None:
    """A --text_column given (None when not) for input that has no columns is one ConfigError line, not
    silently unused: --text strings and a .txt file are one text per argument or line."""
    if args.text_column is None:
        return
    tables = "table inputs (--input .csv/.tsv/.json/.jsonl/.parquet)"
    if args.text:
        raise ConfigError(f"--text_column applies only to {tables}, not to --text; drop --text_column")
    if Path(args.input).suffix.lower() == ".txt":
        raise ConfigError(
            f"--text_column applies only to {tables}, not to {args.input} (a .txt file is one text per line); "
            "drop --text_column"
        )


def cmd_predict(args: argparse.Namespace) -> list[dict]:
    from nlptransfer.run_dirs import check_output_apart
    from nlptransfer.runs import write_text_atomic

    check_positive(args, "batch_size", "max_length")
    if bool(args.input) == bool(args.text):
        raise ConfigError('pass either --input FILE or --text "..." (one or more), not both and not neither')
    check_text_column(args)
    out = check_output(args.output, args.overwrite, (".jsonl", ".csv"))
    # never into the run (its predictions.jsonl holds the test rows), never over the file being read
    check_output_apart(out, args.model, "--output", "the model folder")
    check_output_apart(out, args.input, "--output", "the --input file")
    texts = read_texts(args.input, args.text_column or "text") if args.input else list(args.text)
    if not texts:
        raise DataError(f"{args.input} holds no texts; add rows or pass --text")
    check_unicode(texts, args.input)
    predictor = load_predictor(
        args.model,
        max_length=args.max_length,
        allow_pickle=args.allow_pickle,
        trust_remote_code=args.trust_remote_code,
    )
    rows = predictor.predict(texts, args.batch_size)
    if out is None:
        sys.stdout.write(format_rows(rows, "jsonl"))
    else:
        write_text_atomic(out, format_rows(rows, out.suffix.lower().lstrip(".")), overwrite=args.overwrite)
        print(f"wrote {len(rows)} predictions to {out}", file=sys.stderr)
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=user_path, metavar="DIR", help="a run's output directory")
    p.add_argument(
        "--input", type=user_path, metavar="FILE", help=".csv/.tsv/.json/.jsonl/.parquet/.txt file of texts"
    )
    p.add_argument("--text", action="append", metavar="TEXT", help="a text to classify (repeatable)")
    p.add_argument(
        "--text_column", default=None, help="column holding the text of a table --input (default: text)"
    )
    p.add_argument(
        "--output", type=user_path, metavar="FILE", help=".jsonl or .csv (default: jsonl on stdout)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--batch_size", type=int, default=64, help="texts per forward pass (default: 64)")
    p.add_argument("--max_length", type=int, default=None, help="default: the run's max_length")
    add_loading_flags(p)


PREDICT = Subcommand(
    help="predict labels for texts with a trained run directory",
    examples=EXAMPLES,
    add_arguments=add_arguments,
    run=cmd_predict,
)
