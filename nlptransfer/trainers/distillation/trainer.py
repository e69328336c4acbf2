"""`DistillationTrainer`: a fine-tuned teacher classifier transfers to a smaller student.

Loss per batch (student logits s, teacher logits t, labels y, temperature T):

    alpha * KL(softmax(t/T) || softmax(s/T)) * T**2      logit distillation (Hinton et al. 2015; the T**2
  + (1 - alpha) * CE(s, y)                               keeps its gradients on the scale of the CE term;
                                                         CE over the batch's labelled rows only)
  + rkd_distance_weight * L_D + rkd_angle_weight * L_A   relational KD (Park et al., CVPR 2019)

Relational knowledge distillation transfers the *structure* of the batch rather than each output: on the
pooled representations of the batch (student and teacher may have different widths), L_D compares the
pairwise Euclidean distances, each matrix divided by its mean over distinct pairs (the paper's
normalisation mu), and L_A the cosines of the angles of every triplet (e_ij . e_kj with e the unit
difference vectors); both with the Huber (smooth L1) loss, as in the paper. Both are exactly 0 when the
student's representations equal the teacher's (up to a global scale for L_D). The losses are in
`nlptransfer.losses`, the config in `config.py`.

Rows whose label is `UNLABELLED` (-100: unlabelled transfer texts, see `run.distillation_train_set`) learn
from the teacher alone: the cross-entropy skips them (0 for a batch without a labelled row).

The student must read the teacher's inputs: same tokenizer vocabulary and the same label set
(`check_compatible` raises `ModelError` otherwise). `truncated_student(teacher, layers)` builds a smaller
student from the teacher's config with only the chosen layers and copies their weights; `pick_student_layers`
chooses them (first k, `alternate` = every other from the bottom as DistilBERT, `spread`, or explicit indices).

    from nlptransfer.trainers.distillation import DistillationTrainer, DistillationTrainingArguments
    student = truncated_student(teacher, [0, 1, 2])
    trainer = DistillationTrainer(model=student, teacher_model=teacher, args=DistillationTrainingArguments(
        "out", distill_temperature=2.0, distill_alpha=0.5, rkd_distance_weight=1.0, rkd_angle_weight=2.0),
        train_dataset=encoded_train, processing_class=tokenizer)
"""

from __future__ import annotations

import copy
import logging
import re

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, PreTrainedModel

from nlptransfer.errors import ConfigError, ModelError
from nlptransfer.losses import logit_distillation_loss, pooled, rkd_angle_loss, rkd_distance_loss
from nlptransfer.trainers.distillation.config import DistillationTrainingArguments
from nlptransfer.trainers.transfer import TransferTrainer

logger = logging.getLogger("nlptransfer")

UNLABELLED = -100  # the `labels` of a transfer text: never read, ignored by the cross-entropy term
LAYER_PICKS = ("first", "alternate", "spread")
_LAYER = re.compile(r"\.(?:layer|layers|h|block|blocks)\.(\d+)\.")


# ------------------------------------------------------------------------------------ students


def label_list(model: PreTrainedModel) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


def check_compatible(
    teacher: PreTrainedModel, student: PreTrainedModel, teacher_tokenizer=None, student_tokenizer=None
):
    """Raise `ModelError` (one line) when the student cannot learn from the teacher's logits and inputs."""
    t_labels, s_labels = label_list(teacher), label_list(student)
    if t_labels != s_labels:
        raise ModelError(
            f"teacher and student have different label sets: teacher {t_labels}, student {s_labels}; give the "
            "student the teacher's labels in the same order (id2label), or distil into a truncated teacher"
        )
    if teacher_tokenizer is not None and student_tokenizer is not None:
        t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
        if t_vocab != s_vocab:
            differ = len(set(t_vocab.items()) ^ set(s_vocab.items()))
            raise ModelError(
                f"teacher and student tokenizers cannot be aligned: vocabularies of {len(t_vocab)} and "
                f"{len(s_vocab)} tokens ({differ} token/id pairs differ), so one input_ids batch cannot feed "
                "both; use a student with the teacher's tokenizer (e.g. --student_layers 3)"
            )
    s_vocab_size = getattr(student.config, "vocab_size", None)
    t_vocab_size = getattr(teacher.config, "vocab_size", None)
    if s_vocab_size is not None and t_vocab_size is not None and s_vocab_size < t_vocab_size:
        raise ModelError(
            f"student embeddings hold {s_vocab_size} tokens but the teacher's vocabulary has {t_vocab_size}; "
            "use a student with the teacher's tokenizer"
        )


def truncated_student(teacher: PreTrainedModel, layers: int | list[int]) -> PreTrainedModel:
    """A copy of `teacher` keeping only transformer layers `layers` (an int k: the first k).

    Built from the teacher's config with fewer layers; the kept layers, the embeddings and the head are
    copied from the teacher (DistilBERT-style initialisation).
    """
    total = getattr(teacher.config, "num_hidden_layers", None)
    if total is None:
        raise ModelError(f"{type(teacher).__name__} has no num_hidden_layers; pass a student model instead")
    keep = list(range(layers)) if isinstance(layers, int) else sorted(int(i) for i in layers)
    if not keep or keep[-1] >= total or keep[0] < 0 or len(set(keep)) != len(keep):
        raise ConfigError(
            f"student layers {layers} must be distinct indices within the teacher's 0..{total - 1}"
        )
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(keep)
    student = AutoModelForSequenceClassification.from_config(config)
    state = {}
    for key, value in teacher.state_dict().items():
        match = _LAYER.search(key)
        if match is None:
            state[key] = value
        elif int(match.group(1)) in keep:
            new = match.group(0).replace(match.group(1), str(keep.index(int(match.group(1)))))
            state[key[: match.start()] + new + key[match.end() :]] = value
    student.load_state_dict(state, strict=True)
    return student


def pick_student_layers(config, layers: int | str, pick: str = "first") -> list[int]:
    """The teacher layers (of `config`) the student keeps: `layers` = k (an int, or its text) picked by `pick`
    (first: 0..k-1; alternate: every other layer from the bottom, DistilBERT-style, 6 -> 3 gives 0,2,4;
    spread: evenly with the top layer kept, 1,3,5), or explicit comma-separated indices ("0,2,4"). Checked
    before any training, so a bad --student_layers fails before the run starts."""
    total = getattr(config, "num_hidden_layers", None)
    if total is None:
        raise ModelError(f"{config.model_type} has no num_hidden_layers; pass a student model instead")
    text = str(layers).strip()
    if "," in text:
        try:
            keep = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"--student_layers {text!r}: give a number of layers or indices like 0,2,4"
            ) from None
        bad = [i for i in keep if not 0 <= i < total]
        if bad or len(set(keep)) != len(keep) or not keep:
            raise ConfigError(
                f"--student_layers {text}: layer indices must be distinct and within the teacher's 0..{total - 1} "
                f"({total} layers; e.g. {','.join(map(str, alternate_layers(total, max(1, total // 2))))})"
            )
        return sorted(keep)
    k = layers if isinstance(layers, int) and not isinstance(layers, bool) else None
    if k is None and text.lstrip("-").isdigit():
        k = int(text)
    if k is None or not 1 <= k <= total:
        raise ConfigError(f"--student_layers {text} must be between 1 and the teacher's {total} layers")
    if pick not in LAYER_PICKS:
        raise ConfigError(f"unknown layer_pick {pick!r}; choose one of {', '.join(LAYER_PICKS)}")
    return {
        "first": list(range(k)),
        "alternate": alternate_layers(total, k),
        "spread": spread_layers(total, k),
    }[pick]


def spread_layers(total: int, k: int) -> list[int]:
    """k layer indices spread evenly over 0..total-1, always keeping the last one (e.g. 6, 3 -> [1, 3, 5])."""
    if not 1 <= k <= total:
        raise ConfigError(f"student_layers={k} must be between 1 and the teacher's {total} layers")
    return [round((i + 1) * total / k) - 1 for i in range(k)]


def alternate_layers(total: int, k: int) -> list[int]:
    """k layer indices evenly strided from the bottom layer (6, 3 -> [0, 2, 4]; 12, 6 -> [0, 2, ..., 10]):
    the "one layer out of two" initialisation of DistilBERT (Sanh et al. 2019)."""
    if not 1 <= k <= total:
        raise ConfigError(f"student_layers={k} must be between 1 and the teacher's {total} layers")
    return [i * total // k for i in range(k)]


# ------------------------------------------------------------------------------------ trainer


class DistillationTrainer(TransferTrainer):
    """A `Trainer` whose loss distils `teacher_model` into `model`; see the module docstring.

    The teacher stays frozen in eval mode on the Trainer's device; evaluation scores the student alone.
    The loss components (kd, ce, rkd_distance, rkd_angle) are logged beside the loss.
    """

    args: DistillationTrainingArguments

    def __init__(self, *args, teacher_model: PreTrainedModel, **kwargs):
        if kwargs.get("data_collator") is None and kwargs.get("processing_class") is not None:
            kwargs["data_collator"] = DataCollatorWithPadding(kwargs["processing_class"])
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, DistillationTrainingArguments):
            raise ConfigError("DistillationTrainer needs DistillationTrainingArguments")
        check_compatible(teacher_model, self.accelerator.unwrap_model(self.model))
        self.teacher = teacher_model.to(self.accelerator.device).eval().requires_grad_(False)
        self.model_accepts_loss_kwargs = False  # every term is a per-batch mean
        self._parts: dict[str, list[float]] = {}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        args = self.args
        relational = args.rkd_distance_weight > 0 or args.rkd_angle_weight > 0
        student_out = model(**inputs, output_hidden_states=relational)
        with torch.no_grad():
            teacher_out = self.teacher(**inputs, output_hidden_states=relational)
        s, t = student_out.logits, teacher_out.logits
        labels = labels.view(-1)
        labelled = labels != UNLABELLED  # transfer texts carry no label: logit and relational terms only
        parts = {"ce": F.cross_entropy(s[labelled], labels[labelled]) if labelled.any() else s.sum() * 0.0}
        loss = (1 - args.distill_alpha) * parts["ce"]
        if args.distill_alpha > 0:
            parts["kd"] = logit_distillation_loss(s, t, args.distill_temperature)
            loss = loss + args.distill_alpha * parts["kd"]
        if relational and len(s) > 2:  # relations need at least three examples in the batch
            mask = inputs.get("attention_mask")
            zs = pooled(student_out.hidden_states[-1], mask, args.rkd_pooling)
            zt = pooled(teacher_out.hidden_states[-1], mask, args.rkd_pooling)
            if args.rkd_distance_weight > 0:
                parts["rkd_distance"] = rkd_distance_loss(zs, zt)
                loss = loss + args.rkd_distance_weight * parts["rkd_distance"]
            if args.rkd_angle_weight > 0:
                parts["rkd_angle"] = rkd_angle_loss(zs, zt)
                loss = loss + args.rkd_angle_weight * parts["rkd_angle"]
        if model.training:
            for name, value in parts.items():
                self._parts.setdefault(name, []).append(float(value.detach()))
        return (loss, student_out) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._parts:  # training logs: add the mean of each component since the last log
            logs.update({f"loss_{k}": round(sum(v) / len(v), 4) for k, v in self._parts.items()})
            self._parts = {}
        super().log(logs, start_time)
