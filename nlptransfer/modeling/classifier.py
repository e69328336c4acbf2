"""Build a classifier for a task under a transfer strategy, save it so plain transformers/peft load it, and
load a fine-tuned one back (`load_classifier`).

Strategies (`TransferArguments.strategy`): the rows of `nlptransfer.strategies.TABLE`, built by
`nlptransfer.modeling.adapters.apply_strategy`. With `task_type="SEQ_CLS"` peft keeps the new
classification head trainable *and* saves it with the adapter (modules_to_save).
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.errors import ModelError
from nlptransfer.modeling.adapters import apply_strategy, merges
from nlptransfer.modeling.load import fit_max_length, load_config, load_model, record_portable_base, resolve
from nlptransfer.modeling.pooling import MODEL_TYPE, pooled_classifier, resolve_pooling
from nlptransfer.runs import RunWriter
from nlptransfer.wordvec import WORDVEC_TYPE, check_head_settings


def build_classifier(
    model_args: ModelArguments,
    transfer_args: TransferArguments,
    label_names: list[str],
    problem_type: str = "single_label_classification",
) -> PreTrainedModel | PeftModel:
    """A sequence classifier with a new head for `label_names`, prepared for the chosen strategy.

    `model_args.pooling` "pooler": the model's own transformers classifier (AutoModelForSequenceClassification);
    cls/mean/max: `PooledForSequenceClassification` over the pretrained encoder ("auto" is resolved here
    when the recipe has not resolved it yet, see `pooling.resolve_pooling`). A word-vector checkpoint
    (`nlptransfer_wordvec`, from `embeddings.word_vectors.prepare_word_vectors`): its own architecture with a
    new mean/max-pooled MLP head."""
    name = model_args.model_name_or_path
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {label: i for i, label in enumerate(label_names)},
        "problem_type": problem_type,
    }
    pooling = model_args.pooling
    if pooling == "auto":
        pooling, _ = resolve_pooling(resolve(name), pooling, transfer_args.strategy)
    flags = {
        "allow_pickle": model_args.allow_pickle,
        "trust_remote_code": model_args.trust_remote_code,
        "from_scratch": model_args.from_scratch,
    }
    config = load_config(name, trust_remote_code=model_args.trust_remote_code, **labels)
    if config.model_type == WORDVEC_TYPE:  # word vectors (nlptransfer.embeddings.word_vectors): a new head
        config.pooling = pooling
        check_head_settings(config)
        if not model_args.from_scratch:
            flags["ignore_mismatched_sizes"] = True  # a trained word-vector classifier: other labels
        model = load_model(AutoModelForSequenceClassification, name, config=config, **flags)
    elif pooling != "pooler" and config.model_type != MODEL_TYPE:
        # cls/mean/max: the pretrained encoder (AutoModel: any checkpoint naming) under a new pooled head
        encoder = load_model(AutoModel, name, **flags)
        model = pooled_classifier(encoder, pooling, **labels)
    else:
        if config.model_type == MODEL_TYPE:  # a saved pooled classifier: keep its encoder, new labels
            config.pooling = pooling if pooling != "pooler" else config.pooling
        if config.model_type == MODEL_TYPE and not model_args.from_scratch:
            flags["ignore_mismatched_sizes"] = True  # its trained head has other labels: a new one
        model = load_model(AutoModelForSequenceClassification, name, config=config, **flags)
    fit_max_length(model_args, model.config)
    return apply_strategy(model, transfer_args)


def load_classifier(
    name_or_path: str,
    label_names: list[str] | None = None,
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> PreTrainedModel:
    """A sequence classifier from a checkpoint (`load_model`: safetensors only unless `allow_pickle`), with
    its own head; with `label_names`, a checkpoint whose head has another number of labels (or a bare
    encoder) gets a new head for these labels instead."""
    flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code}
    model = load_model(AutoModelForSequenceClassification, name_or_path, **flags)
    if label_names is not None and model.config.num_labels != len(label_names):
        labels = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {n: i for i, n in enumerate(label_names)},
        }
        model = load_model(
            AutoModelForSequenceClassification, name_or_path, **flags, **labels, ignore_mismatched_sizes=True
        )
    return model


def load_trained_classifier(
    name_or_path: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False
) -> PreTrainedModel:
    """A fine-tuned classifier exactly as saved (`load_model`); a folder that is not one (a bare encoder,
    a domain-pretraining output: its head would be random) is one ModelError line naming what it is."""
    name = str(name_or_path)
    model, info = load_model(
        AutoModelForSequenceClassification,
        name,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
        output_loading_info=True,
    )
    prefix = model.base_model_prefix + "."
    head_missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith(prefix))
    if head_missing:
        archs = ", ".join(model.config.architectures or []) or model.config.model_type
        raise ModelError(
            f"{name!r} is not a trained classifier: it is a {archs} checkpoint without classification head "
            f"weights ({', '.join(head_missing[:3])} missing), so every answer would come from a random head; "
            "pass the output directory of a classification run, or fine-tune this model first "
            "(nlptransfer run text_classification --model_name_or_path ...)"
        )
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_classifier(
    model, tokenizer, output: RunWriter | str | Path, merge_adapters: bool = True, *, relpath: str = ""
) -> list[str]:
    """Save a classifier into `output` (a run's RunWriter, or a folder) under `relpath`; returns the files
    written, relative to the output directory (main process only: [] on the others).

    Full/frozen models: a plain transformers model (`pipeline("text-classification", model=output_dir)`).
    peft models: the adapter and the trained head in PEFT format under `adapter/`, with the label config
    beside it (`AutoPeftModelForSequenceClassification.from_pretrained(dir, num_labels=...)`). For a method
    that merges (`nlptransfer.strategies.TABLE`: lora, dora, ia3, loha, lokr, vera) with `merge_adapters`,
    the top level holds the merged plain model; otherwise (always for prompt/prefix tuning, ln_tuning and
    the other methods that cannot merge) the top level holds the adapter as well.
    """
    run = output if isinstance(output, RunWriter) else RunWriter(output)
    if not run.is_main:
        return []
    top = Path(relpath)
    written = []
    if isinstance(model, PeftModel):
        record_portable_base(model)  # the base, loadable from any working directory
        adapter = top / "adapter"
        written += run.save_pretrained(model, adapter)
        written += run.save_pretrained(model.base_model.config, adapter)  # id2label/label2id for the head
        written += run.save_pretrained(tokenizer, adapter)
        if merge_adapters and merges(model):
            written += run.save_pretrained(model.merge_and_unload(), top)
        else:
            written += run.save_pretrained(model, top)
            written += run.save_pretrained(model.base_model.config, top)
    else:
        written += run.save_pretrained(model, top)
    written += run.save_pretrained(tokenizer, top)
    return sorted(set(written))
