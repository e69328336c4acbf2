"""The steps of a distillation run (`nlptransfer.recipes.distill`): the training set of labelled rows plus
unlabelled transfer texts, the distillation itself, and every model scored on every test set.

    train = distillation_train_set(encoded["train"], transfer, tokenizer, max_length)   # labels -100: unread
    fit, steps = distil(student, teacher, tokenizer, args, train, encoded["validation"], label_names, 64)
    results, rows = score_models({"teacher": teacher_fit, "student": fit}, test_sets, in_domain="vader-movies")
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from datasets import Dataset, Value, concatenate_datasets

from nlptransfer.data.eval_files import EvalSet
from nlptransfer.evaluation.metrics import make_compute_metrics
from nlptransfer.modeling import count_parameters
from nlptransfer.trainers.distillation.config import DistillationTrainingArguments
from nlptransfer.trainers.distillation.trainer import UNLABELLED, DistillationTrainer
from nlptransfer.training import FitResult, score_split


def as_fit_result(model, tokenizer, label_names, max_length: int, batch_size: int, **measured) -> FitResult:
    """A model trained elsewhere (a given teacher, the distilled student) as the `FitResult` that
    `fit_classifier` returns, so `predict` tests it the same way; `measured`: train_metrics, log_history."""
    trainable, total = count_parameters(model)
    return FitResult(
        model=model,
        tokenizer=tokenizer,
        label_names=label_names,
        multilabel=False,
        max_length=max_length,
        batch_size=batch_size,
        trainable_parameters=trainable,
        total_parameters=total,
        **measured,
    )


def distillation_train_set(
    encoded_train: Dataset, transfer: Dataset | None, tokenizer, max_length: int
) -> Dataset:
    """The labelled training rows followed by the transfer texts, tokenized, with `labels` = -100 (the
    cross-entropy skips them; only the teacher's outputs teach on them). `transfer`: a `text` column only."""
    if transfer is None or len(transfer) == 0:
        return encoded_train

    def tokenize(batch):
        out = tokenizer(list(batch["text"]), truncation=True, max_length=max_length)
        out["labels"] = [UNLABELLED] * len(out["input_ids"])
        return out

    unlabelled = transfer.select_columns(["text"]).map(
        tokenize, batched=True, remove_columns=["text"], desc="tokenize transfer texts"
    )
    labelled = encoded_train.cast_column("labels", Value("int64"))  # ClassLabel cannot hold -100
    return concatenate_datasets([labelled, unlabelled.cast(labelled.features)])


def distil(
    student,
    teacher,
    tokenizer,
    training_args: DistillationTrainingArguments,
    train: Dataset,
    validation: Dataset,
    label_names: list[str],
    max_length: int,
    output_dir: str,
) -> tuple[FitResult, int]:
    """Train `student` on `train` with a `DistillationTrainer` (checkpoints in `output_dir`, a scratch folder);
    (the student as a `FitResult`, the optimizer steps it took: the labels-only control gets as many)."""
    trainer = DistillationTrainer(
        model=student,
        teacher_model=teacher,
        args=replace(training_args, output_dir=output_dir),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        compute_metrics=make_compute_metrics(label_names),
    )
    started = time.perf_counter()
    output = trainer.train()
    fit = as_fit_result(
        student,
        tokenizer,
        label_names,
        max_length,
        training_args.per_device_eval_batch_size,
        train_metrics={
            **output.metrics,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "steps": trainer.state.global_step,
            "train_rows": len(train),
        },
        log_history=list(trainer.state.log_history),
    )
    return fit, trainer.state.global_step


def score_models(
    fits: Mapping[str, FitResult], tests: Mapping[str, EvalSet], in_domain: str
) -> tuple[dict, dict]:
    """Every model on every test set: (`results[model]` = its in-domain scores, texts/s over the in-domain
    test split (ordered batches, this machine, this run), parameters and layers; `by_set[test set][model]` =
    its scores on each set)."""
    results, by_set = {}, {name: {} for name in tests}
    for model_name, fit in fits.items():
        for set_name, test in tests.items():
            started = time.perf_counter()
            scores = score_split(fit, test.data).scores
            seconds = time.perf_counter() - started
            by_set[set_name][model_name] = scores
            if set_name == in_domain:
                _, n_params = count_parameters(fit.model)
                results[model_name] = {
                    **scores,
                    "texts_per_second": len(test.data) / seconds,
                    "parameters": n_params,
                    "layers": fit.model.config.num_hidden_layers,
                    "optimizer_steps": fit.log_history[-1].get("step") if fit.log_history else None,
                    "train": fit.train_metrics,
                }
    return results, by_set


def result_rows(results: dict, by_set: dict, in_domain: str, teacher: str = "teacher") -> list[dict]:
    """The results table: one row per model (in-domain test split), the share of the teacher's micro-F1 it
    keeps, then micro-F1 on every other test set."""
    rows = []
    kept_base = results[teacher]["f1_micro"] if teacher in results else None
    for name, r in results.items():
        row = {
            "model": name,
            "layers": r["layers"],
            "parameters": f"{r['parameters'] / 1e6:.1f}M",
            "accuracy": r["accuracy"],
            "macro-F1": r["f1_macro"],
            "micro-F1 kept": f"{r['f1_micro'] / kept_base:.0%}" if kept_base else "",
            "texts/s": f"{r['texts_per_second']:.0f}",
        }
        for set_name, scores in by_set.items():
            if set_name != in_domain:
                row[f"micro-F1 {set_name}"] = scores[name]["f1_micro"]
        rows.append(row)
    return rows


def distill_card_notes(training_args, distill_args, n_transfer: int, steps: int) -> list[str]:
    """The model card's notes: the loss, the data the student learnt from, the control, the speed figure."""
    t = training_args
    return [
        f"Loss: {t.distill_alpha} * KL(T={t.distill_temperature}) * T^2 + {1 - t.distill_alpha:g} * CE (labelled "
        f"rows only) + {t.rkd_distance_weight} * RKD-distance + {t.rkd_angle_weight} * RKD-angle (Park et al. "
        f"2019, on {t.rkd_pooling}-pooled last hidden states).",
        f"Student data: the labelled training rows plus {n_transfer} unlabelled transfer texts "
        f"({', '.join(distill_args.transfer_texts) or 'none'}; their labels, if any, are never read; texts "
        "of the validation and test sets are dropped). The labels-only student takes the same "
        f"{steps} optimizer steps on the labelled rows.",
        "texts/s: ordered batched prediction over the test split on this machine, in this run (other jobs "
        "may have shared the CPU); benchmarks/bench_distillation.py measures it at batch 1 and 64.",
    ]
