"""Distil: a fine-tuned teacher transfers to a smaller student (logit + relational knowledge distillation).

Defaults (no arguments): the embedded all-MiniLM-L6-v2 (6 layers) is fine-tuned on VADER movie snippets
(3-class) as the teacher; the student is the teacher cut to its first 3 layers (built from the teacher's
config, weights copied) and trained with logit distillation (T, alpha) plus RKD distance- and angle-wise
losses (Park et al. 2019). For comparison, the same 3-layer student is trained on the labels alone with the
same budget. All three are tested on the held-out half; speed in texts/s is measured on the same machine.

    python -m nlptransfer.recipes.distill
    python -m nlptransfer.recipes.distill --config recipes/distill/minilm_vader.yaml --student_layers 2
    python -m nlptransfer.recipes.distill --teacher outputs/sentiment-minilm-full --output_dir outputs/d
    python -m nlptransfer.recipes.distill --rkd_distance_weight 0 --rkd_angle_weight 0   # logits only

Output directory: the student (`pipeline("text-classification", model=<dir>)`), the teacher under
`teacher/` when this run trained it, `metrics.json`, `results.md`, `config.yaml`, `README.md`, `run.json`.
The inference-speed benchmark on a saved run: `python -m benchmarks.bench_distillation --run <dir>`.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from transformers import set_seed

from nlptransfer.config import (
    DataArguments,
    ModelArguments,
    RecipeParser,
    TransferArguments,
    config_to_dict,
)
from nlptransfer.data import load_source, subsample
from nlptransfer.errors import ModelError, run_cli
from nlptransfer.evaluation.metrics import classification_metrics, collapse_warning, make_compute_metrics
from nlptransfer.modeling import (
    build_classifier,
    count_parameters,
    fit_max_length,
    load_classifier,
    load_tokenizer,
    save_classifier,
)
from nlptransfer.modeling.pooling import model_pooling, resolve_run_pooling
from nlptransfer.recipes._classification import load_snippet
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import markdown_table, model_card
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.distillation import (
    DistillationTrainer,
    DistillationTrainingArguments,
    check_compatible,
    label_list,
    pick_student_layers,
    truncated_student,
)
from nlptransfer.training import FitResult, encode, fit_classifier, predict

logger = logging.getLogger("nlptransfer")


@dataclass
class DistillArguments:
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "A fine-tuned classifier directory to use as the teacher. Unset: fine-tune "
            "--model_name_or_path on --dataset first (--teacher_epochs)."
        },
    )
    teacher_epochs: float = field(
        default=2, metadata={"help": "Epochs of the teacher fine-tune (no --teacher)."}
    )
    student: str | None = field(
        default=None,
        metadata={
            "help": "A student model directory (same tokenizer vocabulary and labels as the teacher). Unset: "
            "the teacher cut to --student_layers layers."
        },
    )
    student_layers: int = field(default=3, metadata={"help": "Layers the truncated student keeps."})
    layer_pick: str = field(
        default="first",
        metadata={
            "help": "Which teacher layers the student keeps: first (0..k-1) or spread (evenly, top layer kept).",
            "choices": ["first", "spread"],
        },
    )
    compare_student_alone: bool = field(
        default=True,
        metadata={
            "help": "Also train the same student on the labels only (no teacher) with the same budget."
        },
    )


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, DataArguments, DistillArguments, DistillationTrainingArguments],
        defaults="distill/minilm_vader.yaml",
        prog="python -m nlptransfer.recipes.distill",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, data_args, distill_args, training_args = make_parser().parse(argv)
    setup_logging(training_args.verbose)
    set_seed(training_args.seed)

    # 1. Data.
    splits = load_source(
        data_args.dataset,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        seed=data_args.split_seed,
        normalize_labels=data_args.normalize_labels,
    )
    label_names = splits["train"].features["label"].names
    caps = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }
    for split, cap in caps.items():
        splits[split] = subsample(splits[split], cap, data_args.split_seed, label_column=None)

    # 2. Teacher and student are loaded and checked before the output directory is touched.
    resolve_run_pooling(model_args, "full")  # "auto" -> the pooling used, logged, in config.yaml
    loading = {"allow_pickle": model_args.allow_pickle, "trust_remote_code": model_args.trust_remote_code}
    tokenizing = {"trust_remote_code": model_args.trust_remote_code}
    if distill_args.teacher:
        teacher = load_classifier(distill_args.teacher, **loading)
        tokenizer = load_tokenizer(distill_args.teacher, **tokenizing)
        if label_list(teacher) != label_names:
            raise ModelError(
                f"teacher {distill_args.teacher!r} has labels {label_list(teacher)} but {data_args.dataset} has "
                f"{label_names}; distil on data with the teacher's labels"
            )
    else:
        tokenizer = load_tokenizer(model_args.model_name_or_path, **tokenizing)
        teacher = build_classifier(model_args, TransferArguments(strategy="full"), label_names)
    student_tokenizer = tokenizer
    if distill_args.student:
        student = load_classifier(distill_args.student, label_names, **loading)
        student_tokenizer = load_tokenizer(distill_args.student, **tokenizing)
        check_compatible(teacher, student, tokenizer, student_tokenizer)
    else:  # the teacher cut to --student_layers: checked now, before the teacher trains
        layers = pick_student_layers(teacher.config, distill_args.student_layers, distill_args.layer_pick)
    for model in [teacher] + ([student] if distill_args.student else []):
        fit_max_length(model_args, model.config)  # a --max_length given fits both (a default is lowered)
    with RunWriter.from_training_args(training_args, "distill") as run:
        fits = {}
        with tempfile.TemporaryDirectory(prefix="nlptransfer-distill-") as scratch:
            # 3. Teacher: fine-tuned here unless given.
            if not distill_args.teacher:
                args = replace(
                    training_args,
                    output_dir=f"{scratch}/teacher",
                    num_train_epochs=distill_args.teacher_epochs,
                )
                fits["teacher"] = fit_classifier(
                    teacher, tokenizer, args, splits, label_names, max_length=model_args.max_length
                )
            else:
                fits["teacher"] = as_fit_result(teacher, tokenizer, label_names, model_args, training_args)
            if not distill_args.student:
                student = truncated_student(teacher, layers)
                logger.info("student: teacher layers %s of %d", layers, teacher.config.num_hidden_layers)
            initial = copy.deepcopy(student)

            # 4. Distil into the student.
            encoded = encode(splits, tokenizer, model_args.max_length, False, len(label_names))
            trainer = DistillationTrainer(
                model=student,
                teacher_model=teacher,
                args=replace(training_args, output_dir=f"{scratch}/student"),
                train_dataset=encoded["train"],
                eval_dataset=encoded["validation"],
                processing_class=tokenizer,
                compute_metrics=make_compute_metrics(label_names),
            )
            started = time.perf_counter()
            output = trainer.train()
            fits["student (distilled)"] = as_fit = as_fit_result(
                student,
                tokenizer,
                label_names,
                model_args,
                training_args,
                train_metrics={**output.metrics, "wall_seconds": round(time.perf_counter() - started, 1)},
                log_history=list(trainer.state.log_history),
            )
            if warning := collapse_warning(
                predict(as_fit, list(splits["validation"]["text"]))[0], label_names
            ):
                logger.warning(warning)

            # 5. The same student on the labels alone, same budget.
            if distill_args.compare_student_alone:
                args = replace(training_args, output_dir=f"{scratch}/alone")
                fits["student (labels only)"] = fit_classifier(
                    initial, tokenizer, args, splits, label_names, max_length=model_args.max_length
                )

        # 6. Test every model; speed on the same machine (texts/s over the test split, ordered batches).
        rows, results = [], {}
        for name, fit in fits.items():
            started = time.perf_counter()
            preds, _ = predict(fit, list(splits["test"]["text"]))
            seconds = time.perf_counter() - started
            scores = classification_metrics(preds, splits["test"]["label"], label_names)
            _, n_params = count_parameters(fit.model)
            layers = fit.model.config.num_hidden_layers
            speed = len(splits["test"]) / seconds
            results[name] = {
                **scores,
                "texts_per_second": speed,
                "parameters": n_params,
                "layers": layers,
                "train": fit.train_metrics,
            }
            rows.append(
                {
                    "model": name,
                    "layers": layers,
                    "parameters": f"{n_params / 1e6:.1f}M",
                    "accuracy": scores["accuracy"],
                    "macro-F1": scores["f1_macro"],
                    "texts/s": f"{speed:.0f}",
                }
            )
        table = markdown_table(rows, ["model", "layers", "parameters", "accuracy", "macro-F1", "texts/s"])

        # 7. Save: the student (plain transformers), the teacher if trained here, metrics, card.
        command = command_line("distill", argv)
        metrics = {
            "recipe": "distill",
            "dataset": data_args.dataset,
            "test": results,
            "log_history": fits["student (distilled)"].log_history,
        }
        save_classifier(student, tokenizer, run)
        if not distill_args.teacher:
            save_classifier(teacher, tokenizer, run, relpath="teacher")
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, data_args, distill_args, training_args))
        run.write_text("results.md", table + "\n")
        trainable, n_params = count_parameters(student)
        card = model_card(
            title=f"{student.config.num_hidden_layers}-layer student distilled on {data_args.dataset}",
            base_model=distill_args.teacher or model_args.model_name_or_path,
            dataset=data_args.dataset,
            strategy="distillation (logits + RKD)",
            pooling=model_pooling(student),
            label_names=label_names,
            results_table=table,
            trainable=trainable,
            total=n_params,
            command=command,
            notes=[
                f"Loss: {training_args.distill_alpha} * KL(T={training_args.distill_temperature}) * T^2 + "
                f"{1 - training_args.distill_alpha:g} * CE + {training_args.rkd_distance_weight} * RKD-distance + "
                f"{training_args.rkd_angle_weight} * RKD-angle (Park et al. 2019, on {training_args.rkd_pooling}-"
                "pooled last hidden states).",
                "texts/s: ordered batched prediction over the test split on this machine, in this run (other jobs "
                "may have shared the CPU); benchmarks/bench_distillation.py measures it on its own.",
            ],
            load_snippet=load_snippet(run.output_dir, "full", True, model_pooling(student)),
        )
        run.write_text("README.md", card)
        print(f"\nDistillation on {data_args.dataset} (test split)\n{table}\nSaved to {run.output_dir}")
        return metrics


def as_fit_result(model, tokenizer, label_names, model_args, training_args, **measured) -> FitResult:
    """A model trained elsewhere (the given teacher, the distilled student) as the `FitResult` that
    `fit_classifier` returns, so `predict` tests it the same way; `measured`: train_metrics, log_history."""
    trainable, total = count_parameters(model)
    return FitResult(
        model=model,
        tokenizer=tokenizer,
        label_names=label_names,
        multilabel=False,
        max_length=model_args.max_length,
        batch_size=training_args.per_device_eval_batch_size,
        trainable_parameters=trainable,
        total_parameters=total,
        **measured,
    )


if __name__ == "__main__":
    run_cli(main)
