"""Predictions from a trained model folder, the one place that loads one for inference: `load_predictor`
returns a `Predictor` whose `predict(texts)` gives one row per text (text, label, score, probabilities), the
rows `nlptransfer predict` writes and `nlptransfer serve` answers.

    predictor = load_predictor("outputs/sentiment-minilm-full")
    predictor.predict(["great film", "dull plot"])      # [{"text", "label", "score", "probabilities"}, ...]
    predictor.labels, predictor.multilabel, predictor.info   # label names, kind, card metadata

`TorchPredictor` serves a run directory (a plain model, or an adapter-only directory on its base);
`OnnxPredictor` an ONNX export (`nlptransfer export`, a folder with `export.json`) with onnxruntime.
`load_predictor` picks one from the folder's files. torch, transformers and onnxruntime are imported inside
the functions that use them.
"""

from __future__ import annotations

import json
from pathlib import Path

from nlptransfer.errors import ConfigError, ModelError, first_line

EXPORT_FILE = "export.json"  # what makes a folder an export (`nlptransfer export`), not a run directory
EXPORT_EXTRA = "pip install 'nlptransfer[export]'"


def require_packages(*names: str, purpose: str = "ONNX export and prediction") -> None:
    """Import each optional package, or one ConfigError line naming the missing ones and the extra."""
    import importlib

    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"{purpose} needs {', '.join(missing)} (not installed); install the extra: {EXPORT_EXTRA}"
        )


def load_run_model(model_dir: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False):
    """(model, tokenizer, config) of a run directory: a plain model, or an adapter-only directory.

    Loaded through `nlptransfer.modeling.load` (safetensors only unless `allow_pickle`, no model code run
    unless `trust_remote_code`). A top-level `adapter_config.json` (a peft method that
    does not merge, or `--merge_adapters false`) is loaded on its base model, the head rebuilt from the labels in the
    `config.json` saved beside it.
    """
    from transformers import AutoModelForSequenceClassification

    from nlptransfer.modeling.classifier import load_trained_classifier
    from nlptransfer.modeling.load import load_config, load_peft_model, load_tokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise ModelError(f"--model {str(path)!r} is not a directory; pass a run's output directory")
    if (path / EXPORT_FILE).is_file():
        from nlptransfer.run_dirs import read_run_file

        source = read_run_file(path / EXPORT_FILE).get("source_run", "its source run")
        raise ModelError(
            f"{path} is an ONNX export (export.json), which `nlptransfer predict --model` runs; this command "
            f"needs the PyTorch run directory it was exported from ({source})"
        )
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


def run_settings(path: Path, labels: list[str] | None = None) -> tuple[int, list[float] | None]:
    """(max_length, per-label thresholds or None) saved by the run; the thresholds are checked by
    `checked_thresholds` (in the order of `labels` when given)."""
    from nlptransfer.run_dirs import read_run_file

    max_length = 128
    saved = read_run_file(path / "config.yaml")
    if isinstance(saved.get("max_length"), int) and not isinstance(saved["max_length"], bool):
        max_length = saved["max_length"]
    found = read_run_file(path / "metrics.json").get("thresholds")
    return max_length, checked_thresholds(found, path / "metrics.json", labels)


def checked_thresholds(found, file: Path, labels: list[str] | None = None) -> list[float] | None:
    """The multi-label decision thresholds a run or export saved in `file` (`{label: probability}`, or a
    list), as floats; None when none are saved. Sigmoid probabilities are compared with them, so each must
    be a number in [0, 1]: anything else a hand edit left (a string, a list, NaN, 1.5) is one ModelError line
    naming the file and label, not a traceback at prediction time. With `labels`, a mapping is put in
    their order, and a label without a threshold or a list of another length is refused too."""
    import math

    if found is None:
        return None
    fix = "set each label's threshold to a number between 0 and 1 (e.g. 0.5)"
    if file.name == EXPORT_FILE:
        fix += ", or export the run again (nlptransfer export RUN_DIR --output ...)"
    if isinstance(found, dict):
        missing = [n for n in labels if n not in found] if labels is not None else []
        if missing:
            raise ModelError(
                f"{file} has no threshold for label(s) {', '.join(missing)} of config.json; {fix}"
            )
        names = list(found) if labels is None else labels
        items = [(repr(n), found[n]) for n in names]
    elif isinstance(found, list):
        if labels is not None and len(found) != len(labels):
            raise ModelError(
                f"{file} has {len(found)} thresholds for the model's {len(labels)} labels; {fix}"
            )
        items = [(f"#{i + 1}" if labels is None else repr(labels[i]), v) for i, v in enumerate(found)]
    else:
        shown = json.dumps(found)[:80]
        raise ModelError(f'{file}: "thresholds" is {shown}, not a mapping of label to threshold; {fix}')
    for name, value in items:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and 0 <= value <= 1):
            shown = json.dumps(value)[:80]
            raise ModelError(
                f"{file}: the threshold of label {name} is {shown}, not a number between 0 and 1; {fix}"
            )
    return [float(value) for _, value in items]


def inference_max_length(config, requested: int | None, saved: int) -> int:
    """The max_length to tokenize with: an explicit `--max_length` is checked against the model's position
    limit (one line when above); the run's saved one is clamped to it, so long texts are truncated."""
    from nlptransfer.modeling.load import check_max_length, position_limit

    if requested is not None:
        check_max_length(config, requested)
        return requested
    limit = position_limit(config)
    return min(saved, limit) if limit is not None else saved


class Predictor:
    """Labels for texts from a loaded model. Subclasses set `labels`, `multilabel`, `max_length`,
    `thresholds` (multi-label cut-offs or None) and implement `logits(texts, batch_size)`."""

    kind = "base"
    labels: list[str]
    multilabel: bool = False
    max_length: int = 128
    thresholds: list[float] | None = None
    path: Path

    def logits(self, texts: list[str], batch_size: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, texts: list[str], batch_size: int = 64) -> list[dict]:
        """One dict per text, in input order (see `rows_from_logits`)."""
        return rows_from_logits(
            self.logits(texts, batch_size), texts, self.labels, self.multilabel, self.thresholds
        )

    @property
    def info(self) -> dict:
        """What a client needs to know: the folder, back-end, labels, kind and max_length."""
        return {
            "model": str(self.path),
            "backend": self.kind,
            "labels": list(self.labels),
            "multilabel": self.multilabel,
            "max_length": self.max_length,
            "thresholds": self.thresholds,
        }


class TorchPredictor(Predictor):
    """A run directory loaded with PyTorch (`load_run_model`), in eval mode."""

    kind = "pytorch"

    def __init__(
        self,
        path: str | Path,
        *,
        max_length: int | None = None,
        allow_pickle: bool = False,
        trust_remote_code: bool = False,
    ):
        self.path = Path(path)
        self.model, self.tokenizer, self.config = load_run_model(
            self.path, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
        )
        self.model.eval()
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        saved_length, self.thresholds = run_settings(self.path, self.labels)
        self.max_length = inference_max_length(self.model.config, max_length, saved_length)
        self.multilabel = self.config.problem_type == "multi_label_classification"

    def logits(self, texts: list[str], batch_size: int):
        from nlptransfer.inference import predict_logits

        return predict_logits(self.model, self.tokenizer, texts, batch_size, self.max_length)


class OnnxPredictor(Predictor):
    """An ONNX export (`nlptransfer export`: export.json, the .onnx file it names, tokenizer, config.json)
    run with onnxruntime on the CPU; batched by `in_length_order` like `predict_logits`."""

    kind = "onnx"

    def __init__(self, path: str | Path, *, max_length: int | None = None):
        from nlptransfer.modeling.load import load_config, load_tokenizer
        from nlptransfer.run_dirs import read_run_file

        require_packages("onnxruntime", purpose="an ONNX export")
        import onnxruntime

        self.path = Path(path)
        self.record = read_run_file(self.path / EXPORT_FILE)
        model_file = self.path / str(self.record.get("model_file") or "model.onnx")
        if not model_file.is_file():
            raise ModelError(
                f"{self.path} is an export without its model file {model_file.name}; export the run again "
                "(nlptransfer export RUN_DIR --output ...)"
            )
        self.config = load_config(self.path)
        self.tokenizer = load_tokenizer(self.path)
        self.labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        self.multilabel = self.config.problem_type == "multi_label_classification"
        self.thresholds = checked_thresholds(
            self.record.get("thresholds"), self.path / EXPORT_FILE, self.labels
        )
        saved_length = self.record.get("max_length")
        saved_length = saved_length if isinstance(saved_length, int) and saved_length > 0 else 128
        self.max_length = inference_max_length(self.config, max_length, saved_length)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = onnxruntime.InferenceSession(
                str(model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime's own error types: a damaged or foreign file
            raise ModelError(
                f"onnxruntime cannot load {model_file}: {first_line(err)}; export the run again"
            ) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        check_onnx_graph(self.session, model_file, len(self.labels))

    def logits(self, texts: list[str], batch_size: int):
        import numpy as np

        from nlptransfer.inference import in_length_order

        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return in_length_order(
            self.tokenizer, texts, batch_size, self.max_length, self._run_batch, tensors="np"
        )

    def _run_batch(self, batch):
        import numpy as np

        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in self.input_names}
        rows = len(feeds["input_ids"])
        if feeds["input_ids"].shape[1] == 0:  # only empty texts (a word-level tokenizer): one masked pad
            pad = self.tokenizer.pad_token_id or 0
            feeds = {n: np.full((rows, 1), pad if n == "input_ids" else 0, np.int64) for n in feeds}
        return self.session.run(["logits"], feeds)[0].astype(np.float32)

    @property
    def info(self) -> dict:
        """`Predictor.info` plus the export's record: format, quantisation, source run, agreement check."""
        keep = ("format", "quantize", "source_run", "opset", "check")
        return super().info | {"export": {k: self.record[k] for k in keep if k in self.record}}


ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what `nlptransfer export` writes


def check_onnx_graph(session, model_file: Path, num_labels: int) -> None:
    """One ModelError line unless the graph takes int64 `input_ids` (with `attention_mask`, `token_type_ids`
    at most) and returns `logits` with one column per label, as `nlptransfer export` writes it: another ONNX
    file failed at the first text with onnxruntime's traceback (or a KeyError)."""
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    width = (outputs.get("logits") or [None])[-1]
    problem = None
    if "input_ids" not in inputs or not set(inputs) <= set(ONNX_INPUTS):
        problem = f"takes {', '.join(inputs) or 'no inputs'}, not input_ids and attention_mask"
    elif any(kind != "tensor(int64)" for kind in inputs.values()):
        problem = f"takes {', '.join(sorted(set(inputs.values())))} inputs, not tensor(int64)"
    elif "logits" not in outputs:
        problem = f"returns {', '.join(outputs) or 'nothing'}, not logits"
    elif isinstance(width, int) and width != num_labels:
        problem = f"returns {width} logits per text, but config.json names {num_labels} labels"
    if problem:
        raise ModelError(
            f"{model_file} {problem}: it is not a graph `nlptransfer export` wrote; export the run again "
            "(nlptransfer export RUN_DIR --output ...)"
        )


def load_predictor(
    path: str | Path,
    *,
    max_length: int | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> Predictor:
    """The `Predictor` for a model folder: an ONNX export (export.json: onnxruntime) or a run directory
    (PyTorch)."""
    if (Path(path) / EXPORT_FILE).is_file():
        return OnnxPredictor(path, max_length=max_length)
    return TorchPredictor(
        path, max_length=max_length, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code
    )


def check_finite(probs) -> None:
    """One ModelError line when any row of probabilities (or logits) is NaN or infinite: a model whose
    weights diverged must not produce predictions or scores."""
    import numpy as np

    probs = np.asarray(probs)
    broken = np.flatnonzero(~np.isfinite(probs).reshape(len(probs), -1).all(-1)) if probs.size else []
    if len(broken):
        raise ModelError(
            f"the model produced NaN or infinite probabilities for {len(broken)} of {len(probs)} texts (the "
            f"first: text #{broken[0] + 1}); its weights are broken (a run that diverged?): retrain it, e.g. "
            "with a lower --learning_rate"
        )


def rows_from_logits(logits, texts: list[str], names: list[str], multilabel: bool, thresholds) -> list[dict]:
    """One dict per text, in order: text, label (a list for multi-label), score, probabilities. NaN or
    infinite probabilities (a model whose weights diverged) are one ModelError line, never a row."""
    import numpy as np

    from nlptransfer.inference import decide, probabilities

    rows = []
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are refused just below, in one line
        probs = probabilities(np.asarray(logits), multilabel)
    check_finite(probs)
    if multilabel:
        if thresholds is not None and len(thresholds) != len(names):
            raise ConfigError(
                f"{len(thresholds)} thresholds for {len(names)} labels ({', '.join(names)}); pass one per label "
                "or None (0.5 each)"
            )
        cut = list(thresholds) if thresholds is not None else None
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


def predict_rows(model, tokenizer, config, texts: list[str], max_length: int, batch_size: int, thresholds):
    """`rows_from_logits` of a loaded PyTorch classifier (see `load_run_model`)."""
    from nlptransfer.inference import predict_logits

    logits = predict_logits(model, tokenizer, texts, batch_size, max_length)
    names = [config.id2label[i] for i in range(config.num_labels)]
    return rows_from_logits(
        logits, texts, names, config.problem_type == "multi_label_classification", thresholds
    )
