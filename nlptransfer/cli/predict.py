"""`nlptransfer predict`: labels for texts from a trained run directory, one row per input in input order.

Also loads a run directory for `explain` (`load_run_model`, `run_settings`). torch and transformers are
imported inside the functions that use them, so `nlptransfer --help` does not load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlptransfer.cli.common import Subcommand, add_loading_flags, check_output
from nlptransfer.errors import ConfigError, DataError, ModelError

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
# loading a trained run directory


def load_run_model(model_dir: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False):
    """(model, tokenizer, config) of a run directory: a plain model, or an adapter-only directory.

    Loaded through `nlptransfer.modeling.load` (safetensors only unless `allow_pickle`, no model code run
    unless `trust_remote_code`). A top-level `adapter_config.json` (prompt tuning, or lora/ia3 with
    `--merge_adapters false`) is loaded on its base model, the head rebuilt from the labels in the
    `config.json` saved beside it.
    """
    from transformers import AutoModelForSequenceClassification

    from nlptransfer.modeling.classifier import load_trained_classifier
    from nlptransfer.modeling.load import load_config, load_peft_model, load_tokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise ModelError(f"--model {str(path)!r} is not a directory; pass a run's output directory")
    if not (path / "config.json").is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise ModelError(
            f"{path} has no config.json (found: {found}); pass the output directory of a finished run"
        )
    flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code}
    config = load_config(path, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    if (path / "adapter_config.json").is_file():
        labels = {
            "num_labels": config.num_labels,
            "id2label": config.id2label,
            "label2id": config.label2id,
            "problem_type": config.problem_type,
        }
        model = load_peft_model(
            path,
            auto_class=AutoModelForSequenceClassification,
            base_overrides=labels,
            task_type="SEQ_CLS",
            **flags,
        )
    else:
        model = load_trained_classifier(path, **flags)
    return model, tokenizer, config


def run_settings(path: Path) -> tuple[int, list[float] | None]:
    """(max_length, per-label thresholds or None) saved by the run."""
    from nlptransfer.run_dirs import read_run_file

    max_length, thresholds = 128, None
    saved = read_run_file(path / "config.yaml")
    if isinstance(saved.get("max_length"), int) and not isinstance(saved["max_length"], bool):
        max_length = saved["max_length"]
    found = read_run_file(path / "metrics.json").get("thresholds")
    if isinstance(found, dict):
        thresholds = list(found.values())
    elif isinstance(found, list):
        thresholds = found
    return max_length, thresholds


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
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"could not read {path} as {ext}: {first}; check that it is valid {ext}") from None
    if text_column not in ds.column_names:
        raise DataError(
            f"{path} has no column {text_column!r}; columns found: {', '.join(ds.column_names)}; "
            "pass the right one with --text_column"
        )
    return ["" if t is None else str(t) for t in ds[text_column]]


def predict_rows(model, tokenizer, config, texts: list[str], max_length: int, batch_size: int, thresholds):
    """One dict per text, in order: text, label (a list for multi-label), score, probabilities."""
    import numpy as np

    from nlptransfer.inference import decide, predict_logits, probabilities

    logits = predict_logits(model, tokenizer, texts, batch_size, max_length)
    names = [config.id2label[i] for i in range(config.num_labels)]
    rows = []
    multilabel = config.problem_type == "multi_label_classification"
    probs = probabilities(logits, multilabel)
    if multilabel:
        cut = thresholds if thresholds and len(thresholds) == len(names) else None
        for text, p, chosen in zip(texts, probs, decide(probs, True, cut), strict=True):
            rows.append(
                {
                    "text": text,
                    "label": [names[j] for j in np.flatnonzero(chosen)],
                    "probabilities": {n: round(float(pj), 6) for n, pj in zip(names, p, strict=True)},
                }
            )
        return rows
    for text, p, best in zip(texts, probs, decide(probs, False), strict=True):
        rows.append(
            {
                "text": text,
                "label": names[best],
                "score": round(float(p[best]), 6),
                "probabilities": {n: round(float(pj), 6) for n, pj in zip(names, p, strict=True)},
            }
        )
    return rows


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


def inference_max_length(config, requested: int | None, saved: int) -> int:
    """The max_length to tokenize with: an explicit `--max_length` is checked against the model's position
    limit (one line when above); the run's saved one is clamped to it, so long texts are truncated."""
    from nlptransfer.modeling.load import check_max_length, position_limit

    if requested is not None:
        check_max_length(config, requested)
        return requested
    limit = position_limit(config)
    return min(saved, limit) if limit is not None else saved


def cmd_predict(args: argparse.Namespace) -> list[dict]:
    from nlptransfer.runs import write_text_atomic

    check_positive(args, "batch_size", "max_length")
    if bool(args.input) == bool(args.text):
        raise ConfigError('pass either --input FILE or --text "..." (one or more), not both and not neither')
    out = check_output(args.output, args.overwrite, (".jsonl", ".csv"))
    texts = read_texts(args.input, args.text_column) if args.input else list(args.text)
    if not texts:
        raise DataError(f"{args.input} holds no texts; add rows or pass --text")
    model, tokenizer, config = load_run_model(
        args.model, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
    )
    max_length, thresholds = run_settings(Path(args.model))
    rows = predict_rows(
        model,
        tokenizer,
        config,
        texts,
        inference_max_length(model.config, args.max_length, max_length),
        args.batch_size,
        thresholds,
    )
    if out is None:
        sys.stdout.write(format_rows(rows, "jsonl"))
    else:
        write_text_atomic(out, format_rows(rows, out.suffix.lower().lstrip(".")), overwrite=args.overwrite)
        print(f"wrote {len(rows)} predictions to {out}", file=sys.stderr)
    return rows


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="a run's output directory")
    p.add_argument("--input", metavar="FILE", help=".csv/.tsv/.json/.jsonl/.parquet/.txt file of texts")
    p.add_argument("--text", action="append", metavar="TEXT", help="a text to classify (repeatable)")
    p.add_argument("--text_column", default="text", help="column holding the text (default: text)")
    p.add_argument("--output", metavar="FILE", help=".jsonl or .csv (default: jsonl on stdout)")
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
