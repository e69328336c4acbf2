"""`nlptransfer export`: a trained classifier run -> an ONNX folder that onnxruntime runs, optionally int8.

    record = export_run("outputs/sentiment-minilm-full", quantize="int8")   # -> outputs/sentiment-minilm-full-onnx-int8
    load_predictor("outputs/sentiment-minilm-full-onnx-int8").predict(["great film"])

Every classifier the project trains exports: plain `*ForSequenceClassification` runs (full fine-tuning,
merged adapters), the `nlptransfer_pooled` cls/mean/max heads, multi-label runs (their tuned thresholds
travel in export.json), the word-vector classifier and a multitask run's task exports (`RUN/tasks/<name>`).
An adapter-only run directory is merged in memory (peft `merge_and_unload`); a method that cannot merge
(prompt tuning, prefix tuning...) is refused in one line.

The graph is written by `torch.onnx.export` (the torch.export-based exporter, `dynamo=True`) with dynamic
batch and sequence axes, opset `OPSET`: inputs `input_ids`, `attention_mask` (and `token_type_ids` when the
tokenizer makes them), output `logits`. `--quantize int8` applies onnxruntime's dynamic quantisation (int8
weights, QInt8) and ships only the quantised file. optimum-onnx is not used: its 0.1.0 release requires
transformers < 4.58, and this project runs on transformers 5.

Before anything is written, the exported model is run (through `OnnxPredictor`, as `predict` will run it) on
the run's own test rows (`predictions.jsonl`: text + gold; or a few built-in probe texts when the run has
none) beside the PyTorch model: the agreement of their decisions and the largest probability difference go
into export.json and the model card, with the scores of both on those rows (`classification_metrics`, the
recipes' metrics). Agreement below `min_agreement` refuses the export (nothing written) unless `force`.

The folder (default: `<RUN_DIR>-onnx` or `<RUN_DIR>-onnx-int8` beside the run; a task of a multitask run:
`<RUN>-<task>-onnx`), written through a `RunWriter` (run.json lists its files): model.onnx or
model.int8.onnx, the tokenizer files, config.json (labels), export.json, README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import tempfile
import warnings
from pathlib import Path

from nlptransfer.errors import ConfigError, DataError, ModelError, first_line
from nlptransfer.predictor import EXPORT_FILE, OnnxPredictor, TorchPredictor, require_packages
from nlptransfer.run_dirs import (
    MARKER,
    check_output_apart,
    check_output_dir,
    check_same_command,
    read_run_file,
)

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
OPSET = 18  # the torch.export-based exporter's native opset; onnxruntime 1.32 runs up to 23
PROBE_TEXTS = [
    "a wonderful, moving film with great actors",
    "the worst service I have ever had, never again",
    "it was fine.",
    "The patients were treated with a new drug and recovered.",
    "Stocks fell sharply after the announcement on Tuesday.",
    "",
    "not bad at all, but not great either",
    "x " * 300,  # longer than any max_length: truncation
]

__all__ = [
    "FORMATS",
    "OPSET",
    "QUANTIZATIONS",
    "default_output",
    "export_onnx",
    "export_run",
    "quantize_int8",
]


# ----------------------------------------------------------------------------------------------
# checks before any work


def check_classifier_run(run_dir: Path) -> None:
    """One ModelError line unless `run_dir` holds a classifier a run trained (config.json of a
    *ForSequenceClassification, or an adapter-only run); names what it is otherwise."""
    hint = "pass the output directory of a classification run (nlptransfer run sentiment|text_classification ...)"
    if not run_dir.exists():
        raise ModelError(f"RUN_DIR {str(run_dir)!r} does not exist; {hint}")
    if not run_dir.is_dir():
        raise ModelError(f"RUN_DIR {str(run_dir)!r} is a file, not a run directory; {hint}")
    if (run_dir / EXPORT_FILE).is_file():
        raise ModelError(f"{run_dir} is already an export (export.json); export the run it came from")
    tasks = sorted(p.name for p in (run_dir / "tasks").glob("*") if (p / "config.json").is_file())
    if tasks:
        raise ModelError(
            f"{run_dir} is a multitask run; export one of its tasks: nlptransfer export {run_dir / 'tasks' / tasks[0]}"
            f" (tasks: {', '.join(tasks)})"
        )
    if not (run_dir / "config.json").is_file():
        found = ", ".join(sorted(p.name for p in run_dir.iterdir())[:8]) or "nothing"
        raise ModelError(f"{run_dir} is not a classifier run: it has no config.json (found: {found}); {hint}")
    config = read_run_file(run_dir / "config.json")
    if (run_dir / "adapter_config.json").is_file():
        return  # an adapter-only run: load_peft_model checks that it is a classification adapter
    archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    if not any(a.endswith("ForSequenceClassification") for a in archs):
        what = ", ".join(archs) or str(config.get("model_type", "unknown"))
        raise ModelError(f"{run_dir} is not a classifier run: its config.json holds a {what} model; {hint}")
    if config.get("problem_type") == "regression":
        raise ModelError(f"{run_dir} holds a regression model, not a classifier; export takes classifiers")


def default_output(run_dir: str | Path, quantize: str | None = None) -> Path:
    """`<RUN_DIR>-onnx[-int8]` beside the run; a folder inside a run (a multitask task) is named after the
    run and its path in it (`<RUN>-tasks-<name>-onnx`), so no file lands inside a run directory."""
    path = Path(run_dir).resolve()
    root = next((p for p in (path, *path.parents) if (p / MARKER).is_file()), path)
    stem = "-".join([root.name, *path.relative_to(root).parts])
    return root.with_name(f"{stem}-onnx" + (f"-{quantize}" if quantize else ""))


def check_output(out: Path, run_dir: Path, overwrite: bool) -> None:
    """One line if `out` is the run directory, holds it or lies inside it, holds a run of another command
    (`check_same_command`: a trained model is never replaced), or is a folder that may not be written
    (`check_output_dir`: non-empty and not a previous export, or one without `overwrite`)."""
    check_output_apart(out, run_dir, "--output", "the run directory")  # an export never writes into a run
    check_same_command(out, "export", "--output", "--overwrite")
    check_output_dir(out, overwrite, False)


def merged(model, run_dir: Path):
    """A plain model: a peft model's adapter merged into its weights (`merge_and_unload`), in memory."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return model
    method = str(getattr(model.active_peft_config, "peft_type", "this")).split(".")[-1].lower()
    refusal = (
        f"{run_dir} holds a {method} adapter, which cannot be merged into the model's weights, so it has no "
        "plain ONNX graph; retrain with a mergeable method (lora, ia3, ...), or run the directory with "
        "nlptransfer predict"
    )
    if model.active_peft_config.is_prompt_learning:
        raise ModelError(refusal)
    try:
        return model.merge_and_unload()
    except (AttributeError, NotImplementedError, ValueError, TypeError):
        raise ModelError(refusal) from None


def check_rows(run_dir: Path, max_rows: int | None) -> tuple[list[str], list | None, str]:
    """(texts, gold labels or None, where they come from): the run's predictions.jsonl (its test rows, the
    first `max_rows`), or the built-in probe texts when the run has none; `max_rows` limits test rows only,
    so with the probe texts it is one ConfigError line, not silently left unapplied."""
    path = run_dir / "predictions.jsonl"

    def probes(why: str) -> tuple[list[str], None, str]:
        if max_rows is not None:
            raise ConfigError(
                f"--max_rows limits the check to the run's first test rows, but {why} ({path}): the check "
                f"runs on the {len(PROBE_TEXTS)} built-in probe texts; drop --max_rows"
            )
        return list(PROBE_TEXTS), None, f"{len(PROBE_TEXTS)} built-in probe texts ({why})"

    if not path.is_file():
        return probes("the run has no predictions.jsonl")
    from nlptransfer.data.files import check_utf8

    texts, gold = [], []
    check_utf8(path)  # one line naming the byte offset, not a UnicodeDecodeError traceback
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise DataError(f"{path} line {n} is not JSON; restore the run's predictions.jsonl") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f"{path} line {n} has no text; restore the run's predictions.jsonl")
            texts.append(row["text"])
            gold.append(row.get("gold"))
            if max_rows is not None and len(texts) >= max_rows:
                break
    if not texts:
        return probes("predictions.jsonl is empty")
    return texts, gold, f"the run's first {len(texts)} test rows (predictions.jsonl)"


# ----------------------------------------------------------------------------------------------
# exporting


def model_inputs(tokenizer) -> list[str]:
    """The inputs the graph takes: input_ids, attention_mask and token_type_ids if the tokenizer makes them."""
    made = tokenizer(["a text", "a longer text"])
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in made]


def logits_module(model, names: list[str]):
    """`model` as a module whose forward takes `names` (input_ids, attention_mask[, token_type_ids]) and
    returns only the logits tensor: explicit parameters, so the exporter names the graph's inputs after them."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    class LogitsWithTypes(Logits):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    if names[:2] != ["input_ids", "attention_mask"]:
        raise ModelError(
            f"the tokenizer makes {', '.join(names)}; an export needs input_ids and attention_mask"
        )
    return (LogitsWithTypes if "token_type_ids" in names else Logits)().eval()


@contextlib.contextmanager
def quiet_library_logs():
    """Library log lines that are not the user's to act on stay out (the exporter's "torchvision is not
    installed", onnxruntime's "consider pre-processing before quantization"); errors still show."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def export_onnx(model, tokenizer, path: Path, opset: int = OPSET) -> Path:
    """`model`'s logits as an ONNX graph at `path` (weights inside the file; fp32), dynamic batch and
    sequence axes, through `torch.onnx.export(dynamo=True)`."""
    import io

    import torch

    names = model_inputs(tokenizer)
    example = tokenizer(
        ["a short text to trace", "another, somewhat longer text to trace the model with padding"],
        padding=True,
        return_tensors="pt",
    )
    args = tuple(example[n] for n in names)
    dims = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}  # ranges inferred (positions)
    model = model.float().eval()
    try:
        # the exporter prints its progress on stdout, where `predict` writes rows: kept out
        with torch.no_grad(), quiet_library_logs(), contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(
                logits_module(model, names),
                args,
                dynamo=True,
                input_names=names,
                output_names=["logits"],
                opset_version=opset,
                dynamic_shapes={name: dims for name in names},
                verbose=False,
            )
            program.save(str(path), external_data=False)
    except Exception as err:  # the exporter's many error types: one line naming the model
        kind = type(model).__name__
        raise ModelError(f"torch.onnx.export could not export this {kind}: {first_line(err)}") from None
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """onnxruntime's dynamic quantisation: int8 weights (QInt8, one scale per output channel), activations
    quantised at run time. Per-tensor scales lost 1.3 micro-F1 points on two VADER domains with the sentiment
    run; per-channel scales keep every domain within 0.35 points at the same size and speed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_library_logs():
        try:
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
        except Exception as err:  # onnxruntime.quantization raises ValueError, RuntimeError, onnx's errors...
            raise ModelError(
                f"onnxruntime could not quantise {source.name} to int8: {first_line(err)}; export without "
                "--quantize, or try another onnxruntime version (pip install -U onnxruntime)"
            ) from None
    return target


def compare(torch_side: TorchPredictor, onnx_side: OnnxPredictor, texts, gold, batch_size: int) -> dict:
    """Agreement of the two back-ends' decisions, their largest probability and logit differences, and (with
    gold labels) each one's scores on the rows."""
    import numpy as np

    from nlptransfer.evaluation.metrics import classification_metrics
    from nlptransfer.inference import decide, probabilities

    multilabel, names = torch_side.multilabel, torch_side.labels
    result = {"rows": len(texts)}
    decisions = {}
    for side, predictor in (("pytorch", torch_side), ("exported", onnx_side)):
        logits = np.asarray(predictor.logits(texts, batch_size), dtype=np.float64)
        probs = probabilities(logits, multilabel)
        decisions[side] = (logits, probs, decide(probs, multilabel, torch_side.thresholds))
    (lt, pt, dt), (lo, po, do) = decisions["pytorch"], decisions["exported"]
    same = (dt == do).all(-1) if multilabel else dt == do
    result["agreement"] = float(same.mean())
    result["max_probability_difference"] = float(np.abs(pt - po).max())
    result["max_logit_difference"] = float(np.abs(lt - lo).max())
    if gold is None:
        return result
    index = {n: i for i, n in enumerate(names)}
    if multilabel:
        refs = np.zeros((len(gold), len(names)), dtype=int)
        for i, labels in enumerate(gold):
            refs[i, [index[n] for n in labels or [] if n in index]] = 1
        keep = np.ones(len(gold), dtype=bool)
    else:
        keep = np.array([g in index for g in gold])
        refs = np.array([index.get(g, -1) for g in gold])
    if not keep.any():  # no row with a gold label the model knows: nothing to score
        return result
    for side in ("pytorch", "exported"):
        preds = decisions[side][2]
        result[f"{side}_scores"] = classification_metrics(
            preds[keep], refs[keep], names, multilabel=multilabel
        )
    result["scored_rows"] = int(keep.sum())
    return result


DEFAULT_MIN_AGREEMENT = {None: 0.99, "int8": 0.95}  # by --quantize


def export_run(
    run_dir: str | Path,
    output: str | Path | None = None,
    *,
    fmt: str = "onnx",
    quantize: str | None = None,
    force: bool = False,
    min_agreement: float | None = None,
    overwrite: bool = False,
    max_rows: int | None = None,
    batch_size: int = 64,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> dict:
    """Export the classifier in `run_dir` (see the module docstring); returns the export.json record.
    `min_agreement` None: 0.99 for fp32, 0.95 for int8 (int8 rounding flips near-tied rows: 97.8% agreement
    on the sentiment run's test rows, with micro-F1 within 0.31 points on every VADER domain)."""
    options = {  # the options given, for the card's reproduce command
        "--quantize": quantize,
        "--min_agreement": min_agreement,
        "--force": force,
        "--overwrite": overwrite,
        "--max_rows": max_rows,
        "--batch_size": batch_size if batch_size != 64 else None,
        "--allow_pickle": allow_pickle,
        "--trust_remote_code": trust_remote_code,
    }
    if min_agreement is None:
        min_agreement = DEFAULT_MIN_AGREEMENT.get(quantize, DEFAULT_MIN_AGREEMENT[None])
    from nlptransfer.runs import RunWriter

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported; use --format onnx")
    if quantize not in (None, *QUANTIZATIONS):
        raise ConfigError(f"--quantize {quantize!r} is not supported; use --quantize int8 or leave it out")
    require_packages("onnx", "onnxscript", "onnxruntime")
    run_dir = Path(run_dir)
    check_classifier_run(run_dir)
    out = Path(output) if output is not None else default_output(run_dir, quantize)
    check_output(out, run_dir, overwrite)
    texts, gold, where = check_rows(run_dir, max_rows)  # before loading the model: a bad file fails fast
    source = TorchPredictor(run_dir, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    source.model = merged(source.model, run_dir).eval()
    names = source.labels
    model_file = "model.int8.onnx" if quantize else "model.onnx"
    record = {
        "format": fmt,
        "quantize": quantize,
        "model_file": model_file,
        "source_run": str(run_dir.resolve()),  # not "." when exported from inside the run
        "opset": OPSET,
        "inputs": model_inputs(source.tokenizer),
        "outputs": ["logits"],
        "labels": names,
        "multilabel": source.multilabel,
        "thresholds": dict(zip(names, map(float, source.thresholds), strict=True))
        if source.multilabel and source.thresholds and len(source.thresholds) == len(names)
        else None,
        "max_length": source.max_length,
        "min_agreement": min_agreement,
    }
    with tempfile.TemporaryDirectory(prefix="nlptransfer-export-") as tmp:
        work, folder = Path(tmp) / "work", Path(tmp) / "export"
        work.mkdir()
        folder.mkdir()
        fp32 = export_onnx(source.model, source.tokenizer, (folder if not quantize else work) / "model.onnx")
        if quantize:
            quantize_int8(fp32, folder / model_file)
        source.tokenizer.save_pretrained(folder)
        source.model.config.save_pretrained(folder)
        (folder / EXPORT_FILE).write_text(json.dumps(record), encoding="utf-8")
        check = compare(source, OnnxPredictor(folder), texts, gold, batch_size)
        check["source"] = where
        record["check"] = check
        record["forced"] = check["agreement"] < min_agreement
        if record["forced"] and not force:
            raise ModelError(
                f"the exported model agrees with the PyTorch model on {check['agreement']:.2%} of "
                f"{check['rows']} rows, below --min_agreement {min_agreement}; nothing written (pass --force to "
                "write it anyway, or export without --quantize)"
            )
        (folder / EXPORT_FILE).unlink()
        with RunWriter.start(out, "export", overwrite=overwrite) as run:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                run.write_bytes(path.relative_to(folder).as_posix(), path.read_bytes())
            run.write_json(EXPORT_FILE, record)
            run.write_text("README.md", export_card(record, out, export_command(run_dir, out, fmt, options)))
    record["output"] = str(out)
    return record


def export_command(run_dir: Path, out: Path, fmt: str, options: dict) -> str:
    """The card's `nlptransfer export` command: the resolved run and output folders (not `.` or a path
    relative to where it was typed), then the options given (True: a bare flag; None/False: not given),
    shell-quoted, so it reads and runs the same from any folder."""
    words = ["nlptransfer", "export", str(run_dir.resolve()), "--output", str(out.resolve()), "--format", fmt]
    for flag, value in options.items():
        if value is True:
            words.append(flag)
        elif value is not None and value is not False:
            words += [flag, str(value)]
    return shlex.join(words)


def export_card(record: dict, out: Path, command: str) -> str:
    """The export's README.md: what it is, the agreement check and the measured scores (`render_card`)."""
    from nlptransfer.reporting import markdown_table
    from nlptransfer.reporting.cards import render_card

    out = out.resolve()  # the card is read from elsewhere: the folder by its full path
    check = record["check"]
    kind = "int8 (dynamic quantisation, QInt8 weights)" if record["quantize"] else "fp32"
    body = [
        f"ONNX export ({kind}, opset {record['opset']}) of the classifier in `{record['source_run']}`: "
        f"{'multi-label' if record['multilabel'] else 'single-label'}, labels {', '.join(record['labels'])}, "
        f"max_length {record['max_length']}. Inputs {', '.join(record['inputs'])}; output `logits`.",
        "",
        "## Check at export",
        "",
        f"On {check['source']}: the exported model's decisions agree with the PyTorch model's on "
        f"{check['agreement']:.2%} of the rows; largest probability difference {check['max_probability_difference']:.2e}, "
        f"largest logit difference {check['max_logit_difference']:.2e} (refused below {record['min_agreement']}"
        + (", written anyway with --force)." if record["forced"] else ")."),
        "",
    ]
    if "exported_scores" in check:
        metrics = [
            m for m in ("accuracy", "f1_micro", "f1_macro", "f1_samples") if m in check["exported_scores"]
        ]
        rows = [
            {"model": "exported (onnxruntime)", **check["exported_scores"]},
            {"model": "PyTorch run", **check["pytorch_scores"]},
        ]
        body += [
            f"## Measured on the run's test rows ({check['scored_rows']} rows)",
            "",
            markdown_table(rows, ["model", *metrics]),
            "",
        ]
    else:
        body += ["No accuracy measured: the run has no test rows with gold labels (predictions.jsonl).", ""]
    snippet = (
        "from nlptransfer.predictor import load_predictor\n\n"
        f"predictor = load_predictor({json.dumps(str(out))})\n"
        'predictor.predict(["a wonderful, moving film"])  # [{"text", "label", "score", "probabilities"}]'
    )
    return render_card(
        title=f"{out.name}: ONNX export of {Path(record['source_run']).name}",
        body=body,
        load_snippet=snippet,
        command=command,
        use_note=(
            f'Or `nlptransfer predict --model {shlex.quote(str(out))} --text "..."`, or onnxruntime directly '
            f"on `{record['model_file']}` (tokenize with this folder's tokenizer, truncate to max_length; "
            "softmax the logits, or a sigmoid per label and export.json's thresholds for multi-label)."
        ),
        tags=("nlptransfer", "onnx", "text-classification"),
        notes=["Exported with torch.onnx (optimum-onnx 0.1.0 requires transformers < 4.58)."],
    )
