"""Distil: a fine-tuned teacher transfers to a smaller student (logit + relational knowledge distillation).

Defaults (no arguments): the embedded all-MiniLM-L6-v2 (6 layers) is fine-tuned on VADER movie snippets
(3-class) as the teacher; the student keeps 2 of its 6 layers, strided from the bottom (0 and 3: config
built from the teacher's, weights copied; `--student_layers 3` keeps 0, 2, 4 as DistilBERT) and learns from
the teacher's logits (T, alpha) plus RKD distance- and angle-wise losses (Park et al. 2019) on the labelled
snippets AND on unlabelled transfer texts (the other VADER domains' training halves: `--transfer_texts`,
labels never read). For comparison, the same student is trained on the labels alone for the same number of
optimizer steps. All are tested on the held-out half (and on
`--eval_datasets` / `--eval_files`); speed in texts/s is measured on the same machine.

    python -m nlptransfer.recipes.distill
    python -m nlptransfer.recipes.distill --student_layers 0,2,4 --transfer_texts unlabelled.txt
    python -m nlptransfer.recipes.distill --teacher outputs/sentiment-minilm-full --output_dir outputs/d
    python -m nlptransfer.recipes.distill --rkd_distance_weight 0 --rkd_angle_weight 0   # logits only
    python -m nlptransfer.recipes.distill --transfer_texts none            # the labelled set only

Output directory: the student (`pipeline("text-classification", model=<dir>)`), the teacher under
`teacher/` when this run trained it, `metrics.json`, `results.md`, `config.yaml`, `README.md`, `run.json`.
The benchmark (seeds, paired test, speed at batch 1 and 64): `python -m benchmarks.bench_distillation`.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from transformers import set_seed

from nlptransfer.config import DataArguments, ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.data import load_source, subsample
from nlptransfer.data.eval_files import cap_test_sets, load_test_sets
from nlptransfer.data.transfer_texts import entries, parse_transfer_entry, transfer_dataset
from nlptransfer.errors import ConfigError, ModelError, run_cli
from nlptransfer.evaluation.metrics import collapse_warning
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
from nlptransfer.run_dirs import check_input_outside_output
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.distillation import (
    LAYER_PICKS,
    DistillationTrainingArguments,
    check_compatible,
    label_list,
    pick_student_layers,
    truncated_student,
)
from nlptransfer.trainers.distillation.run import (
    as_fit_result,
    distil,
    distill_card_notes,
    distillation_train_set,
    result_rows,
    score_models,
)
from nlptransfer.training import encode, fit_classifier, predict

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
    student_layers: str = field(
        default="2",
        metadata={
            "help": "The truncated student's layers: a number k (picked by --layer_pick) or the teacher "
            "layer indices it keeps, e.g. 0,2,4."
        },
    )
    layer_pick: str = field(
        default="alternate",
        metadata={
            "help": "Which k teacher layers the student keeps: first (0..k-1), alternate (every other from "
            "the bottom, DistilBERT: 0,2,4 of 6) or spread (evenly, top layer kept: 1,3,5).",
            "choices": list(LAYER_PICKS),
        },
    )
    compare_student_alone: bool = field(
        default=True,
        metadata={
            "help": "Also train the same student on the labels only (no teacher) for as many optimizer steps."
        },
    )
    transfer_texts: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Unlabelled texts the student also learns the teacher's outputs on (labels never read): "
            "SOURCE[:SPLIT] or SOURCE:text=COLUMN,split=train|validation|test|all, e.g. vader-tweets:train "
            "unlabelled.txt; 'none' for the labelled set only."
        },
    )
    max_transfer_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many transfer texts (seeded subsample)."}
    )

    def __post_init__(self):
        if str(self.student_layers).strip().isdigit():  # a count: an int, as the YAML's `student_layers: 3`
            self.student_layers = int(self.student_layers)
        self.transfer_texts = entries(self.transfer_texts)
        for entry in self.transfer_texts:
            parse_transfer_entry(entry)  # a bad option fails before any data is read
        if self.teacher is None and not self.teacher_epochs > 0:  # not left to fail inside the run
            raise ConfigError(
                f"teacher_epochs={self.teacher_epochs} must be > 0 (e.g. 2), or pass a fine-tuned --teacher"
            )
        if self.max_transfer_samples is not None and self.max_transfer_samples < 1:
            raise ConfigError(f"max_transfer_samples={self.max_transfer_samples} must be >= 1, or unset")


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
    for flag, source in (("--teacher", distill_args.teacher), ("--student", distill_args.student)):
        check_input_outside_output(source, training_args.output_dir, flag)  # e.g. <a previous run>/teacher

    # 1. Data: the labelled splits, the test sets (+ --eval_datasets/--eval_files), the unlabelled transfer texts.
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
    tests = load_test_sets(data_args, splits)  # in train's label order
    held_out = [t for s in ("validation", "test") for t in splits[s]["text"]]
    held_out += [t for test in tests.values() for t in test.data["text"]]
    transfer = transfer_dataset(
        distill_args.transfer_texts,
        held_out,  # a transfer text that is a validation or test text is dropped
        text_column=data_args.text_column,
        max_samples=distill_args.max_transfer_samples,
        seed=data_args.split_seed,
    )
    caps = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_eval_samples,
    }
    for split, cap in caps.items():
        splits[split] = subsample(splits[split], cap, data_args.split_seed, label_column=None)
    dataset = data_args.dataset
    others = {k: v for k, v in tests.items() if k != dataset}
    tests = {dataset: replace(tests[dataset], data=splits["test"])}
    tests |= cap_test_sets(others, data_args.max_eval_samples, data_args.split_seed, "label")

    # 2. Teacher and student are loaded and checked before the output directory is touched.
    resolve_run_pooling(model_args, "full")  # "auto" -> the pooling used, logged, in config.yaml
    loading = {"allow_pickle": model_args.allow_pickle, "trust_remote_code": model_args.trust_remote_code}
    tokenizing = {"trust_remote_code": model_args.trust_remote_code}
    if distill_args.teacher:
        teacher = load_classifier(distill_args.teacher, **loading)
        tokenizer = load_tokenizer(distill_args.teacher, **tokenizing)
        if label_list(teacher) != label_names:
            raise ModelError(
                f"teacher {distill_args.teacher!r} has labels {label_list(teacher)} but {dataset} has "
                f"{label_names}; distil on data with the teacher's labels"
            )
    else:
        tokenizer = load_tokenizer(model_args.model_name_or_path, **tokenizing)
        teacher = build_classifier(model_args, TransferArguments(strategy="full"), label_names)
    if distill_args.student:
        student = load_classifier(distill_args.student, label_names, **loading)
        check_compatible(teacher, student, tokenizer, load_tokenizer(distill_args.student, **tokenizing))
    else:  # the teacher cut to --student_layers: checked now, before the teacher trains
        layers = pick_student_layers(teacher.config, distill_args.student_layers, distill_args.layer_pick)
    for model in [teacher] + ([student] if distill_args.student else []):
        fit_max_length(model_args, model.config)  # a --max_length given fits both (a default is lowered)
    max_length, eval_batch = model_args.max_length, training_args.per_device_eval_batch_size
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
                    teacher, tokenizer, args, splits, label_names, max_length=max_length
                )
            else:
                fits["teacher"] = as_fit_result(teacher, tokenizer, label_names, max_length, eval_batch)
            if not distill_args.student:
                student = truncated_student(teacher, layers)
                logger.info("student: teacher layers %s of %d", layers, teacher.config.num_hidden_layers)
            initial = copy.deepcopy(student)

            # 4. Distil into the student: labelled rows + unlabelled transfer texts (labels -100, never read).
            encoded = encode(splits, tokenizer, max_length, False, len(label_names))
            train = distillation_train_set(encoded["train"], transfer, tokenizer, max_length)
            fits["student (distilled)"], steps = distil(
                student,
                teacher,
                tokenizer,
                training_args,
                train,
                encoded["validation"],
                label_names,
                max_length,
                f"{scratch}/student",
            )
            val_preds = predict(fits["student (distilled)"], list(splits["validation"]["text"]))[0]
            if warning := collapse_warning(val_preds, label_names):
                logger.warning(warning)

            # 5. The same student on the labels alone, as many optimizer steps (more epochs over the labels).
            if distill_args.compare_student_alone:
                args = replace(training_args, output_dir=f"{scratch}/alone", max_steps=steps)
                fits["student (labels only)"] = fit_classifier(
                    initial, tokenizer, args, splits, label_names, max_length=max_length
                )

        # 6. Test every model on every test set; speed on the same machine (in-domain test split).
        results, by_set = score_models(fits, tests, dataset)
        rows = result_rows(results, by_set, dataset)
        table = markdown_table(rows, list(rows[0]))

        # 7. Save: the student (plain transformers), the teacher if trained here, metrics, card.
        metrics = {
            "recipe": "distill",
            "dataset": dataset,
            "test": results,
            "log_history": fits["student (distilled)"].log_history,
            "transfer_texts": {"sources": distill_args.transfer_texts, "rows": len(transfer or [])},
        }
        if others:
            metrics["test_sets"] = by_set
            metrics["test_rows"] = {name: test.rows for name, test in tests.items()}
        save_classifier(student, tokenizer, run)
        if not distill_args.teacher:
            save_classifier(teacher, tokenizer, run, relpath="teacher")
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, data_args, distill_args, training_args))
        run.write_text("results.md", table + "\n")
        trainable, n_params = count_parameters(student)
        card = model_card(
            title=f"{student.config.num_hidden_layers}-layer student distilled on {dataset}",
            base_model=distill_args.teacher or model_args.model_name_or_path,
            dataset=dataset,
            strategy="distillation (logits + RKD)",
            pooling=model_pooling(student),
            label_names=label_names,
            results_table=table,
            trainable=trainable,
            total=n_params,
            command=command_line("distill", argv),
            notes=distill_card_notes(training_args, distill_args, len(transfer or []), steps),
            load_snippet=load_snippet(run.output_dir, "full", True, model_pooling(student)),
        )
        run.write_text("README.md", card)
        print(f"\nDistillation on {dataset} (test split)\n{table}\nSaved to {run.output_dir}")
        return metrics


if __name__ == "__main__":
    run_cli(main)
