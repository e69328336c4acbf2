"""Train each domain-adaptation method on a labelled source + unlabelled target and score it.

The experiment behind `python -m nlptransfer.recipes.domain_adaptation`, as library functions:

    from nlptransfer.adaptation import Setup, load_domain, prepare_domain, run_pair
    from nlptransfer.adaptation_report import result_rows, summaries
    raw = {name: load_domain(name) for name in ("vader-movies", "vader-tweets")}
    domains = {name: prepare_domain(name, splits, label_names, ...) for name, splits in raw.items()}
    setup = Setup(model_args, transfer_args, training_args, tokenizer, label_names, cached, work_dir, run)
    result = run_pair(setup, domains["vader-movies"], domains["vader-tweets"], save_under="models")
    rows, summary = result_rows([result], setup.methods), summaries([result], setup.methods)

Every method (`METHODS`) trains through the one classifier-training function, `fit_classifier`,
with its trainer from `nlptransfer.trainers.adaptation`; `self_training` (`self_train`) retrains that way
on the source plus pseudo-labelled target texts (`nlptransfer.self_training`). A pair's result holds the
domain distance, the importance-weight range, per method the test scores (mean/std over seeds), in-domain
micro-F1, LogME and H-score of the source-trained model's representation (`representation`: the pooled
head input when the encoder trained, else logits) on the lightly labelled target sample, the teacher's own
score (self-training from a teacher), and (optionally) a target-only baseline with the noise-aware
negative-transfer verdict of each method (`selection.negative_transfer_check`). Target training labels are
read only through that sample.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback, set_seed

from nlptransfer.config import ModelArguments, TransferArguments
from nlptransfer.data import load_source, subsample
from nlptransfer.errors import DataError
from nlptransfer.evaluation.metrics import classification_metrics
from nlptransfer.features import extract_features, head_pooling
from nlptransfer.inference import predict_logits, probabilities
from nlptransfer.modeling import build_classifier, save_classifier
from nlptransfer.runs import RunWriter
from nlptransfer.selection import (
    feature_distances,
    h_score,
    importance_weights,
    logme,
    negative_transfer_check,
)
from nlptransfer.self_training import SELF_TRAINING, select_pseudo_labels
from nlptransfer.trainers.adaptation import (
    DomainAdversarialConfig,
    DomainAdversarialTrainer,
    FeatureAlignmentConfig,
    FeatureAlignmentTrainer,
    ImportanceWeightedTrainer,
    ImportanceWeightingConfig,
    MixedDomainCollator,
    as_config,
)
from nlptransfer.trainers.transfer import TransferTrainer, TransferTrainingArguments
from nlptransfer.training import fit_classifier

logger = logging.getLogger("nlptransfer")

METHODS = ("none", "dann", "coral", "mmd", "iw", SELF_TRAINING)
ADAPTS = ("dann", "coral", "mmd")  # the methods that read unlabelled target rows while training

# Hutto & Gilbert (ICWSM 2014) Table 5: 3-class overall F1, trained on a random half of the row's corpus,
# tested on the held-out half of each corpus (Naive Bayes for tweets, MaxEnt for the others).
PAPER_TABLE5 = {
    "vader-tweets": {"vader-tweets": 0.84, "vader-movies": 0.53, "vader-amazon": 0.53, "vader-nyt": 0.42},
    "vader-movies": {"vader-tweets": 0.56, "vader-movies": 0.75, "vader-amazon": 0.51, "vader-nyt": 0.45},
    "vader-amazon": {"vader-tweets": 0.67, "vader-movies": 0.55, "vader-amazon": 0.60, "vader-nyt": 0.43},
    "vader-nyt": {"vader-tweets": 0.58, "vader-movies": 0.55, "vader-amazon": 0.51, "vader-nyt": 0.50},
}
PAPER_NOTE = (
    "'paper 2014': Hutto & Gilbert (ICWSM 2014) Table 5, 3-class overall F1 of Naive Bayes (tweets) or "
    "MaxEnt (others) trained on a random half of the source and tested on the other half of the target; "
    "our halves are a different random split, and our models never see target labels."
)


@dataclass
class AdaptationTrainingArguments(DomainAdversarialConfig, ImportanceWeightingConfig):
    """The trainer configs' fields of every method: DANN's, importance weighting's, and what CORAL/MMD
    share with DANN (adaptation_weight, align_on; the method names the alignment)."""


# ----------------------------------------------------------------------------------------------
# domains


def load_domain(name: str, text_column: str = "text", label_column: str = "label", seed: int = 42):
    """A domain's train/validation/test splits (`data.load_source`); an empty one fails in one line."""
    try:
        return load_source(name, text_column=text_column, label_column=label_column, seed=seed)
    except DataError as err:
        if "empty" in str(err) or "no rows" in str(err):
            raise DataError(f"domain {name!r} has no texts ({err}); pass a dataset with texts") from err
        raise


def check_label_sets(source: DatasetDict, target: DatasetDict, s: str, t: str) -> None:
    a, b = source["train"].features["label"].names, target["train"].features["label"].names
    if set(a) != set(b):
        only_s, only_t = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise DataError(
            f"source {s!r} and target {t!r} have different label sets: only in source {only_s}, only in "
            f"target {only_t}; map both to the same labels"
        )


@dataclass
class Domain:
    """A domain's train/test texts and labels (in the source's label order) and their frozen features."""

    name: str
    splits: dict[str, dict]  # "train"/"test" -> {"text": list[str], "label": np.ndarray}
    labelled_idx: np.ndarray  # rows of the train split whose labels form the lightly labelled sample
    features: dict[str, np.ndarray] = field(default_factory=dict)  # split -> [n, dim]
    # split -> [n, dim]: the features distances and importance weights read (default: `features`)
    measure: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.measure = self.measure or self.features


def prepare_domain(
    name: str,
    splits: DatasetDict,
    label_names: list[str],
    feature_model,
    tokenizer,
    *,
    max_train: int | None = None,
    max_eval: int | None = None,
    seed: int = 42,
    labelled_samples: int = 200,
    max_length: int = 128,
    batch_size: int = 64,
    measure_model=None,
) -> Domain:
    """Capped train/test splits (labels re-encoded to `label_names`' order), the labelled-sample rows, and
    the frozen features of both splits (`extract_features`, cached on disk; what `feature_model`'s head
    reads, else `mean`). `measure_model`: a frozen classifier whose head reads other features for the
    distances and importance weights (`modeling.pooling.feature_pooling`); None: the same features."""
    order = {n: i for i, n in enumerate(label_names)}
    remap = [order[n] for n in splits["train"].features["label"].names]
    rows = {}
    for split, cap in (("train", max_train), ("test", max_eval)):
        ds = subsample(splits[split], cap, seed, label_column=None)  # target pools: labels unread
        rows[split] = {"text": list(ds["text"]), "label": np.array([remap[y] for y in ds["label"]])}
    n = len(rows["train"]["text"])
    labelled = np.sort(np.random.default_rng(seed).choice(n, min(n, labelled_samples), replace=False))
    pooling = "head" if head_pooling(feature_model) else "mean"
    features = {
        split: extract_features(
            feature_model, tokenizer, r["text"], pooling=pooling, max_length=max_length, batch_size=batch_size
        )
        for split, r in rows.items()
    }
    measure = {}
    if measure_model is not None:
        measure = {
            split: extract_features(
                measure_model, tokenizer, r["text"], max_length=max_length, batch_size=batch_size
            )
            for split, r in rows.items()
        }
    return Domain(name, rows, labelled, features, measure)


# ----------------------------------------------------------------------------------------------
# one training run


@dataclass
class Setup:
    """What every training run of an experiment shares."""

    model_args: ModelArguments
    transfer_args: TransferArguments
    training_args: AdaptationTrainingArguments
    tokenizer: object
    label_names: list[str]
    cached: bool  # frozen backbone + cached features: the head trains on feature rows, not texts
    work_dir: str  # the Trainer's scratch output_dir (nothing is saved there)
    run: RunWriter  # the run's output directory: saved models are written through it
    methods: Sequence[str] = METHODS
    seeds: int = 1  # seeds per method: training_args.seed, +1, ...
    split_seed: int = 42  # seed of the distance and importance-weight estimates
    distance_samples: int = 2000
    negative_transfer_guard: bool = True
    guard_seed_std: float | None = None  # std over seeds of macro-F1, for one-seed guard verdicts
    # self_training (see nlptransfer.self_training): pseudo-label rule, rounds, alignment, teacher
    pseudo_threshold: float | None = None
    pseudo_top_k: int | None = None
    pseudo_balance: str = "equal"
    self_training_rounds: int = 1
    align: str = "none"
    teacher: object = None  # None: the source-trained model; else .probabilities(texts) and .name

    def inputs(self, domain: Domain, split: str, rows=None):
        """Prediction inputs of a split (feature matrix or texts), optionally only `rows`."""
        x = domain.features[split] if self.cached else domain.splits[split]["text"]
        if rows is None:
            return x
        return x[rows] if self.cached else [x[i] for i in rows]


def method_trainer(method: str, args: AdaptationTrainingArguments) -> tuple[type, TransferTrainingArguments]:
    """The trainer class of `method` and its config cut from `args` (each takes only the fields it honours)."""
    if method == "none":
        return TransferTrainer, as_config(TransferTrainingArguments, args)
    if method == "dann":
        return DomainAdversarialTrainer, as_config(DomainAdversarialConfig, args)
    if method in ("coral", "mmd"):
        return FeatureAlignmentTrainer, as_config(FeatureAlignmentConfig, args, alignment=method)
    return ImportanceWeightedTrainer, as_config(ImportanceWeightingConfig, args)


class LastTrainingLog(TrainerCallback):
    """Keeps the Trainer's last training-loss log entry (with a trainer's own terms, e.g. domain_accuracy)."""

    def __init__(self):
        self.entry: dict = {}

    def on_train_end(self, args, state, control, **kwargs):
        losses = [entry for entry in state.log_history if "loss" in entry]
        self.entry = losses[-1] if losses else {}


def train_method(setup: Setup, method, seed, texts, labels, target_texts=None, weights=None, max_steps=None):
    """Train `method` on the labelled (texts, labels) [+ unlabelled target_texts] with `fit_classifier`;
    returns (model in eval mode, last training log entry). `weights`: one importance weight per text (iw)."""
    set_seed(seed)
    model = build_classifier(setup.model_args, setup.transfer_args, setup.label_names)
    targs = setup.training_args
    args = dataclasses.replace(
        targs,
        seed=seed,
        output_dir=setup.work_dir,
        eval_strategy="no",
        resume_from_checkpoint=None,
        max_steps=targs.max_steps if max_steps is None else max_steps,
    )
    trainer_cls, config = method_trainer(method, args)
    last_log = LastTrainingLog()
    kwargs = {
        "data_collator": MixedDomainCollator(None if setup.cached else setup.tokenizer),
        "callbacks": [last_log],
    }
    if method == "iw":
        kwargs["instance_weights"] = weights
    train = Dataset.from_dict({"text": list(texts), "label": [int(y) for y in labels]})
    fit_classifier(
        model,
        setup.tokenizer,
        config,
        DatasetDict(train=train),
        setup.label_names,
        max_length=setup.model_args.max_length,
        strategy=setup.transfer_args.strategy,
        cache_features=setup.cached,
        trainer_cls=trainer_cls,
        trainer_kwargs=kwargs,
        target_texts=target_texts if method in ADAPTS else None,
    )
    model.eval()
    return model, last_log.entry


def predict(setup: Setup, model, x) -> np.ndarray:
    """Logits [n, k]: cached features through the trained head, or texts through the whole model."""
    if setup.cached:
        with torch.inference_mode():
            head = model.classifier.eval()
            features = torch.as_tensor(np.asarray(x), dtype=head.weight.dtype, device=head.weight.device)
            return head(features).float().cpu().numpy()
    batch_size = setup.training_args.per_device_eval_batch_size
    return predict_logits(model, setup.tokenizer, list(x), batch_size, setup.model_args.max_length)


def f1s(setup: Setup, model, x, y) -> dict:
    return classification_metrics(predict(setup, model, x).argmax(-1), y, setup.label_names)


# ----------------------------------------------------------------------------------------------
# a source -> target pair


def run_pair(setup: Setup, source: Domain, target: Domain, save_under: str | None = None) -> dict:
    """Every method of `setup` with every seed on source -> target; `save_under`: save each method's
    first-seed model under `<save_under>/<method>/` of the run."""
    src_text, src_y = source.splits["train"]["text"], source.splits["train"]["label"]
    tgt_text = target.splits["train"]["text"]  # unlabelled: target.splits["train"]["label"] is not read here
    test_x, test_y = setup.inputs(target, "test"), target.splits["test"]["label"]
    lab = target.labelled_idx  # the lightly labelled target sample (LogME, target-only baseline)
    lab_y = target.splits["train"]["label"][lab]
    pair = f"{source.name}->{target.name}"
    distance = feature_distances(
        source.measure["train"],
        target.measure["train"],
        max_samples=setup.distance_samples,
        seed=setup.split_seed,
    )
    result = {
        "source": source.name,
        "target": target.name,
        "paper_2014": PAPER_TABLE5.get(source.name, {}).get(target.name),
        "distance": distance,
    }
    targs = setup.training_args
    weights = None
    if "iw" in setup.methods:
        weights = importance_weights(
            source.measure["train"],
            target.measure["train"],
            clip=targs.weight_clip,
            c=targs.domain_classifier_c,
            seed=setup.split_seed,
        )
        result["importance_weights"] = {
            "min": float(weights.min()),
            "median": float(np.median(weights)),
            "max": float(weights.max()),
        }
    seeds = [targs.seed + i for i in range(setup.seeds)]
    result["methods"] = {}
    source_models = {}  # seed -> the `none` model, reused as self-training's first teacher (same training)
    for method in setup.methods:
        runs, last_log, extra = [], {}, {}
        for k, seed in enumerate(seeds):
            logger.info("%s | %s | seed %d", pair, method, seed)
            if method == SELF_TRAINING:
                first = source_models.pop(seed, None)
                model, log, rounds = self_train(setup, seed, src_text, src_y, target, first)
                extra["self_training_seed0"] = extra.get("self_training_seed0", rounds)
            else:
                model, log = train_method(setup, method, seed, src_text, src_y, tgt_text, weights)
                if method == "none" and SELF_TRAINING in setup.methods:
                    if setup.teacher is None and setup.align == "none":
                        source_models[seed] = model
            scores = f1s(setup, model, test_x, test_y)
            in_domain = f1s(setup, model, setup.inputs(source, "test"), source.splits["test"]["label"])
            scores["in_domain_f1_micro"] = in_domain["f1_micro"]
            rep = representation(setup, model, target, lab)  # source model, target labels
            scores["logme"], scores["h_score"] = logme(rep, lab_y), h_score(rep, lab_y)
            runs.append(scores)
            if k == 0:
                last_log = log
                if save_under is not None:
                    merge = setup.transfer_args.merge_adapters
                    save_classifier(
                        model, setup.tokenizer, setup.run, merge, relpath=f"{save_under}/{method}"
                    )
        result["methods"][method] = {**aggregate(runs), "train_log_seed0": last_log, **extra}
        if method == SELF_TRAINING and setup.teacher is not None:  # the teacher's own score, beside
            teacher_probs = setup.teacher.probabilities(target.splits["test"]["text"])
            teacher = classification_metrics(teacher_probs.argmax(-1), test_y, setup.label_names)
            result["methods"][method]["teacher"] = {"name": str(setup.teacher.name), **teacher}
    result["representation_scored"] = scored_representation(setup)
    if setup.negative_transfer_guard:
        result["target_only_baseline"] = target_only_baseline(setup, target, seeds, len(src_y), pair)
        baseline = result["target_only_baseline"]["f1_macro_per_seed"]
        for method, scores in result["methods"].items():
            scores["guard"] = negative_transfer_check(
                scores["f1_macro_per_seed"], baseline, what=f"{pair} {method}", seed_std=setup.guard_seed_std
            )
    return result


def scored_representation(setup: Setup) -> str:
    """What LogME / H-score read: the pooled representation (the head's input) of the source-trained
    model when its encoder trained; with a frozen backbone that is the same for every source, so the
    head's outputs (logits)."""
    return "logits" if setup.transfer_args.strategy == "frozen" else "pooled"


def representation(setup: Setup, model, domain: Domain, rows) -> np.ndarray:
    """`scored_representation` of a trained model for `rows` of the domain's train split."""
    if scored_representation(setup) == "logits":
        return predict(setup, model, setup.inputs(domain, "train", rows))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: lora layers on
    texts = [domain.splits["train"]["text"][i] for i in rows]
    return extract_features(
        base,
        setup.tokenizer,
        texts,
        max_length=setup.model_args.max_length,
        batch_size=setup.training_args.per_device_eval_batch_size,
        cache=False,
    )


def self_train(setup: Setup, seed: int, src_text, src_y, target: Domain, source_model=None):
    """Self-training (see `nlptransfer.self_training`): the teacher (`setup.teacher`, else the model trained
    on the source with `setup.align`) labels the unlabelled target train texts; each round retrains from the
    pretrained weights on the source plus the confident pseudo-labels (class-balanced or proportional), and
    the retrained model labels the target for the next round. Reads the target's texts only, never its labels.
    Returns (model, last training log, one {round, pseudo_labels, per_class} per round)."""
    texts = target.splits["train"]["text"]
    x = setup.inputs(target, "train")
    if setup.teacher is None:  # `source_model`: the same training, already done by this seed's `none` run
        model = source_model
        if model is None:
            model, _ = train_method(setup, setup.align, seed, src_text, src_y, texts)
        probs = probabilities(predict(setup, model, x), False)
    else:
        probs = setup.teacher.probabilities(texts)
    rounds = []
    for r in range(setup.self_training_rounds):
        rows, pseudo = select_pseudo_labels(
            probs, threshold=setup.pseudo_threshold, top_k=setup.pseudo_top_k, balance=setup.pseudo_balance
        )
        logger.info("self-training round %d: %d pseudo-labelled target texts", r + 1, len(rows))
        model, log = train_method(
            setup,
            setup.align,
            seed,
            list(src_text) + [texts[i] for i in rows],
            np.concatenate([np.asarray(src_y), pseudo]).astype(int),
            texts,
        )
        probs = probabilities(predict(setup, model, x), False)
        counts = np.bincount(pseudo, minlength=len(setup.label_names))
        rounds.append(
            {
                "round": r + 1,
                "pseudo_labels": int(len(rows)),
                "per_class": {n: int(c) for n, c in zip(setup.label_names, counts, strict=True)},
            }
        )
    return model, log, rounds


def target_only_baseline(setup: Setup, target: Domain, seeds: list[int], n_source: int, pair: str) -> dict:
    """`none` trained on the labelled target sample alone, with as many optimizer steps as the source runs."""
    targs = setup.training_args
    steps = targs.max_steps
    if steps <= 0:
        steps = math.ceil(n_source / targs.per_device_train_batch_size) * math.ceil(targs.num_train_epochs)
    lab = target.labelled_idx
    texts, labels = [target.splits["train"]["text"][i] for i in lab], target.splits["train"]["label"][lab]
    test_x, test_y = setup.inputs(target, "test"), target.splits["test"]["label"]
    runs = []
    for seed in seeds:
        logger.info("%s | target-only baseline on %d labelled target texts | seed %d", pair, len(lab), seed)
        model, _ = train_method(setup, "none", seed, texts, labels, max_steps=int(steps))
        runs.append(f1s(setup, model, test_x, test_y))
    return {**aggregate(runs), "n_labelled": int(len(lab))}


def aggregate(runs: list[dict]) -> dict:
    """Mean over seeds of every score; std and per-seed values of micro-/macro-F1."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = float(np.mean(values))
        if key in ("f1_micro", "f1_macro"):
            out[key + "_std"] = float(np.std(values))
            out[key + "_per_seed"] = [float(v) for v in values]
    return out
