"""Domain adaptation: labelled source, unlabelled target; no adaptation vs DANN vs CORAL/MMD vs importance weights.

Defaults (no arguments): the embedded all-MiniLM-L6-v2 (frozen, cached features) trained on `vader-movies`
(train half, labelled), adapted to `vader-tweets` (its train half with the labels hidden), tested on the
held-out half of tweets. Each method (`--method`, several allowed) is trained with `--seeds` seeds. The run also measures
the domain distance (MMD, proxy A-distance on the frozen features), LogME of the source model on a small
labelled target sample, and (`--negative_transfer_guard`) a target-only baseline trained on that sample: a
method that scores below it is flagged as negative transfer.

    python -m nlptransfer.recipes.domain_adaptation
    python -m nlptransfer.recipes.domain_adaptation --target vader-amazon --method none dann iw
    python -m nlptransfer.recipes.domain_adaptation --matrix true --seeds 3 --output_dir outputs/da-matrix
    python -m nlptransfer.recipes.domain_adaptation --config recipes/domain_adaptation/minilm_full.yaml

`--matrix true` runs every ordered source->target pair of `--domains` and writes `cross_domain.md/.csv`
and `cross_domain.png` (heatmaps per method beside Hutto & Gilbert's 2014 Table 5 baselines), plus how
well distance predicts the transfer gap and whether LogME ranks the sources like the trained models do.

Output directory: `results.md`/`results.csv` (or `cross_domain.*`), `metrics.json`, `config.yaml`,
`README.md` (model card), `run.json`; single-pair runs save each method's seed-0 model under
`models/<method>/` (`pipeline("text-classification", model=<dir>/models/dann)`).
With `--strategy frozen` the backbone's features cannot move, so DANN/CORAL/MMD adapt the head's
outputs (logits); with `full`/`lora` they adapt the pooled representation.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import set_seed

from nlptransfer.config import ModelArguments, RecipeParser, TransferArguments, config_to_dict
from nlptransfer.data import load_source, subsample
from nlptransfer.errors import ConfigError, DataError, run_cli
from nlptransfer.evaluation.metrics import classification_metrics
from nlptransfer.evaluation.statistics import spearman
from nlptransfer.features import (
    FeatureHead,
    _feature_dataset,
    extract_features,
    freeze_backbone_eval,
    head_reads_pooler,
)
from nlptransfer.inference import predict_logits
from nlptransfer.modeling import build_classifier, count_parameters, load_tokenizer, save_classifier
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import csv_text, domain_heatmap_figure, markdown_table, model_card
from nlptransfer.runs import RunWriter
from nlptransfer.selection import feature_distances, importance_weights, logme, negative_transfer_check
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
from nlptransfer.training import encode

logger = logging.getLogger("nlptransfer")

METHODS = ("none", "dann", "coral", "mmd", "iw")
VADER = ["vader-movies", "vader-tweets", "vader-amazon", "vader-nyt"]

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
class DomainAdaptationArguments:
    source: str = field(
        default="vader-movies", metadata={"help": "Labelled source domain: an embedded name or a local file."}
    )
    target: str = field(
        default="vader-tweets",
        metadata={
            "help": "Target domain: its train split is used without labels, its test split for evaluation."
        },
    )
    method: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata={
            "help": f"Methods to run (several allowed), any of: {', '.join(METHODS)} (none = source only).",
            "aliases": ["--methods"],
        },
    )
    matrix: bool = field(
        default=False,
        metadata={"help": "Run every ordered source->target pair of --domains (cross_domain.md/.csv/.png)."},
    )
    domains: list[str] = field(default_factory=lambda: list(VADER), metadata={"help": "Domains of --matrix."})
    seeds: int = field(default=1, metadata={"help": "Seeds per method (mean +- std over them)."})
    text_column: str = field(default="text", metadata={"help": "Text column (local files)."})
    label_column: str = field(default="label", metadata={"help": "Label column (local files)."})
    split_seed: int = field(
        default=42, metadata={"help": "Seed of each domain's train/validation/test split."}
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use at most this many source (and unlabelled target) training texts."},
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Test on at most this many target texts (seeded subsample)."}
    )
    target_labelled_samples: int = field(
        default=200,
        metadata={
            "help": "Size of the lightly labelled target sample (from the target train split) used for LogME "
            "and the target-only baseline; never used by the adaptation methods."
        },
    )
    negative_transfer_guard: bool = field(
        default=True,
        metadata={
            "help": "Also train a target-only baseline on the labelled target sample and warn when a method "
            "that used the source scores below it."
        },
    )
    distance_samples: int = field(
        default=2000, metadata={"help": "Texts per domain for the MMD / proxy A-distance estimates."}
    )
    save_models: bool = field(
        default=True,
        metadata={"help": "Single-pair runs: save each method's first-seed model under models/<method>/."},
    )

    def __post_init__(self):
        bad = [m for m in self.method if m not in METHODS]
        if bad or not self.method:
            raise ConfigError(
                f"unknown method {', '.join(map(repr, bad)) or '(none given)'}; choose from {', '.join(METHODS)} "
                "(--method)"
            )
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds} must be >= 1")
        if self.target_labelled_samples < 10:
            raise ConfigError(f"target_labelled_samples={self.target_labelled_samples} must be >= 10")
        if self.matrix and len(set(self.domains)) < 2:
            raise ConfigError("--matrix needs at least two --domains")


@dataclass
class DomainAdaptationTrainingArguments(DomainAdversarialConfig, ImportanceWeightingConfig):
    """The trainer configs' fields of every method run here: DANN's, importance weighting's, and what
    CORAL/MMD share with DANN (adaptation_weight, align_on; --method names the alignment)."""


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, DomainAdaptationArguments, TransferArguments, DomainAdaptationTrainingArguments],
        defaults="domain_adaptation/minilm_frozen.yaml",
        prog="python -m nlptransfer.recipes.domain_adaptation",
        description=__doc__.split("\n\n")[0],
    )


# ----------------------------------------------------------------------------------------------
# data


def load_domain(name: str, da: DomainAdaptationArguments) -> DatasetDict:
    try:
        splits = load_source(
            name, text_column=da.text_column, label_column=da.label_column, seed=da.split_seed
        )
    except DataError as err:
        if "empty" in str(err) or "no rows" in str(err):
            raise DataError(f"domain {name!r} has no texts ({err}); pass a dataset with texts") from err
        raise
    return splits


def check_label_sets(source: DatasetDict, target: DatasetDict, s: str, t: str) -> None:
    a, b = source["train"].features["label"].names, target["train"].features["label"].names
    if set(a) != set(b):
        only_s, only_t = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise DataError(
            f"source {s!r} and target {t!r} have different label sets: only in source {only_s}, only in "
            f"target {only_t}; map both to the same labels"
        )


class Domain:
    """A domain's splits (labels re-encoded to the source's order) and their cached frozen features."""

    def __init__(self, name, splits, da, feature_model, tokenizer, max_length, batch_size, label_names):
        self.name = name
        order = {n: i for i, n in enumerate(label_names)}
        own = splits["train"].features["label"].names
        remap = [order[n] for n in own]
        self.splits = {}
        for split in ("train", "test"):
            ds = splits[split]
            cap = da.max_train_samples if split == "train" else da.max_eval_samples
            ds = subsample(ds, cap, da.split_seed, label_column=None)  # target pools: labels unread
            self.splits[split] = {
                "text": list(ds["text"]),
                "label": np.array([remap[y] for y in ds["label"]]),
            }
        rng = np.random.default_rng(da.split_seed)
        n = len(self.splits["train"]["text"])
        self.labelled_idx = np.sort(rng.choice(n, min(n, da.target_labelled_samples), replace=False))
        self.features = {}
        if feature_model is not None:
            pooling = "head" if head_reads_pooler(feature_model) else "mean"
            for split, rows in self.splits.items():
                self.features[split] = extract_features(
                    feature_model, tokenizer, rows["text"], pooling=pooling, max_length=max_length,
                    batch_size=batch_size,
                )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# one training run


@dataclass
class Setup:
    """What every training run of this recipe shares."""

    model_args: ModelArguments
    transfer_args: TransferArguments
    training_args: DomainAdaptationTrainingArguments
    da: DomainAdaptationArguments
    tokenizer: object
    label_names: list[str]
    cached: bool  # frozen backbone + cached features: the head trains on feature rows, not texts
    work_dir: str  # the Trainer's scratch output_dir (nothing is saved there)
    run: RunWriter  # the run's output directory: every file is written through it

    def inputs(self, domain: Domain, split: str, rows=None):
        """Model inputs of a split (feature matrix or texts), optionally only `rows`."""
        x = domain.features[split] if self.cached else domain.splits[split]["text"]
        if rows is None:
            return x
        return x[rows] if self.cached else [x[i] for i in rows]


def make_trainer(
    method, model, args: DomainAdaptationTrainingArguments, train_ds, target_ds, tokenizer, weights
):
    """The trainer of `method`, its config cut from `args` (each takes only the fields it honours)."""
    common = dict(model=model, train_dataset=train_ds, processing_class=tokenizer)
    if method == "none":
        collator = MixedDomainCollator(tokenizer if "input_ids" in train_ds.column_names else None)
        config = as_config(TransferTrainingArguments, args)
        return TransferTrainer(args=config, data_collator=collator, **common)
    if method == "dann":
        config = as_config(DomainAdversarialConfig, args)
        return DomainAdversarialTrainer(args=config, target_dataset=target_ds, **common)
    if method in ("coral", "mmd"):
        config = as_config(FeatureAlignmentConfig, args, alignment=method)
        return FeatureAlignmentTrainer(args=config, target_dataset=target_ds, **common)
    config = as_config(ImportanceWeightingConfig, args)
    return ImportanceWeightedTrainer(args=config, instance_weights=weights, **common)


def train_one(setup: Setup, method, seed, x, labels, target_x=None, weights=None, max_steps=None):
    """Train `method` on the labelled (x, labels) [+ unlabelled target_x]; returns (model, last log entry)."""
    set_seed(seed)
    model = build_classifier(setup.model_args, setup.transfer_args, setup.label_names)
    args = dataclasses.replace(
        setup.training_args, seed=seed, output_dir=setup.work_dir, eval_strategy="no",
        max_steps=setup.training_args.max_steps if max_steps is None else max_steps,
    )  # fmt: skip
    if setup.transfer_args.strategy == "frozen":
        freeze_backbone_eval(model)
    adapt = method not in ("none", "iw")  # the methods that read unlabelled target rows during training
    if setup.cached:  # the model's own head trains on the cached backbone features
        train_ds = _feature_dataset(x, labels, model, "train")
        target_ds = (
            Dataset.from_dict({"features": np.asarray(target_x)}).with_format("torch") if adapt else None
        )
        trainer_model = FeatureHead(model)
    else:
        splits = {"train": Dataset.from_dict({"text": list(x), "label": [int(y) for y in labels]})}
        if adapt:  # unlabelled: a dummy label column for `encode`, dropped right after
            splits["target"] = Dataset.from_dict({"text": list(target_x), "label": [0] * len(target_x)})
        enc = encode(
            DatasetDict(splits), setup.tokenizer, setup.model_args.max_length, False, len(setup.label_names)
        )
        train_ds, trainer_model = enc["train"], model
        target_ds = enc["target"].remove_columns("labels") if adapt else None
    trainer = make_trainer(method, trainer_model, args, train_ds, target_ds, setup.tokenizer, weights)
    trainer.train()
    model.eval()
    last = [entry for entry in trainer.state.log_history if "loss" in entry]
    return model, (last[-1] if last else {})


def predict(setup: Setup, model, x) -> np.ndarray:
    """Logits [n, k]: cached features through the trained head, or texts through the whole model."""
    if setup.cached:
        with torch.inference_mode():
            head = model.classifier.eval()
            features = torch.as_tensor(np.asarray(x), dtype=head.weight.dtype, device=head.weight.device)
            return head(features).float().cpu().numpy()
    return predict_logits(
        model, setup.tokenizer, list(x), setup.training_args.per_device_eval_batch_size,
        setup.model_args.max_length,
    )  # fmt: skip


def f1s(setup: Setup, model, x, y) -> dict:
    return classification_metrics(predict(setup, model, x).argmax(-1), y, setup.label_names)


# ----------------------------------------------------------------------------------------------
# a source -> target pair


def run_pair(setup: Setup, source: Domain, target: Domain, save_under: str | None) -> dict:
    da = setup.da
    src_x, src_y = setup.inputs(source, "train"), source.splits["train"]["label"]
    tgt_x = setup.inputs(target, "train")  # unlabelled: target.splits["train"]["label"] is not read here
    test_x, test_y = setup.inputs(target, "test"), target.splits["test"]["label"]
    lab = target.labelled_idx  # the lightly labelled target sample (LogME, target-only baseline)
    lab_x, lab_y = setup.inputs(target, "train", lab), target.splits["train"]["label"][lab]
    pair = f"{source.name}->{target.name}"
    result = {
        "source": source.name,
        "target": target.name,
        "paper_2014": PAPER_TABLE5.get(source.name, {}).get(target.name),
        "distance": feature_distances(
            source.features["train"], target.features["train"], max_samples=da.distance_samples,
            seed=da.split_seed,
        ),
    }  # fmt: skip
    weights = None
    if "iw" in da.method:
        targs = setup.training_args
        weights = importance_weights(
            source.features["train"],
            target.features["train"],
            clip=targs.weight_clip,
            c=targs.domain_classifier_c,
            seed=da.split_seed,
        )
        result["importance_weights"] = {"min": float(weights.min()), "median": float(np.median(weights)),
                                        "max": float(weights.max())}  # fmt: skip
    seeds = [setup.training_args.seed + i for i in range(da.seeds)]
    result["methods"] = {}
    for method in da.method:
        runs, last_log = [], {}
        for k, seed in enumerate(seeds):
            logger.info("%s | %s | seed %d", pair, method, seed)
            model, log = train_one(setup, method, seed, src_x, src_y, tgt_x, weights)
            scores = f1s(setup, model, test_x, test_y)
            scores["in_domain_f1_micro"] = f1s(
                setup, model, setup.inputs(source, "test"), source.splits["test"]["label"]
            )["f1_micro"]
            scores["logme"] = logme(
                predict(setup, model, lab_x), lab_y
            )  # source model's outputs, target labels
            runs.append(scores)
            if k == 0:
                last_log = log
                if save_under is not None:
                    merge = setup.transfer_args.merge_adapters
                    save_classifier(
                        model, setup.tokenizer, setup.run, merge, relpath=f"{save_under}/{method}"
                    )
        result["methods"][method] = {**_aggregate(runs), "train_log_seed0": last_log}
    if da.negative_transfer_guard:
        # Same number of optimizer steps as the source runs, on the labelled target sample alone.
        targs = setup.training_args
        steps = targs.max_steps
        if steps <= 0:
            steps = math.ceil(len(src_y) / targs.per_device_train_batch_size) * math.ceil(
                targs.num_train_epochs
            )
        runs = []
        for seed in seeds:
            logger.info(
                "%s | target-only baseline on %d labelled target texts | seed %d", pair, len(lab), seed
            )
            model, _ = train_one(setup, "none", seed, lab_x, lab_y, max_steps=int(steps))
            runs.append(f1s(setup, model, test_x, test_y))
        baseline = _aggregate(runs)
        result["target_only_baseline"] = {**baseline, "n_labelled": int(len(lab))}
        for method, scores in result["methods"].items():
            scores["guard"] = negative_transfer_check(
                scores["f1_macro"], baseline["f1_macro"], what=f"{pair} {method}"
            )
    return result


def _aggregate(runs: list[dict]) -> dict:
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        out[key] = float(np.mean(values))
        if key in ("f1_micro", "f1_macro"):
            out[key + "_std"] = float(np.std(values))
            out[key + "_per_seed"] = [float(v) for v in values]
    return out


# ----------------------------------------------------------------------------------------------
# reports


def result_rows(results: list[dict], methods: Sequence[str]) -> list[dict]:
    rows = []
    for r in results:
        base = r.get("target_only_baseline")
        for method in methods:
            s = r["methods"][method]
            row = {
                "source": r["source"],
                "target": r["target"],
                "method": method,
                "micro-F1": s["f1_micro"],
                "micro std": s["f1_micro_std"],
                "macro-F1": s["f1_macro"],
                "macro std": s["f1_macro_std"],
                "LogME": s["logme"],
                "paper 2014": r["paper_2014"] if r["paper_2014"] is not None else "",
            }
            if "distance" in r:
                row["MMD"] = r["distance"]["mmd"]
                row["proxy A-dist"] = r["distance"]["proxy_a_distance"]
            if base:
                row["target-only macro-F1"] = base["f1_macro"]
                row["negative transfer"] = "YES" if s["guard"]["negative_transfer"] else "no"
            rows.append(row)
    return rows


def summaries(results: list[dict], methods: Sequence[str]) -> dict:
    """Does distance predict the transfer gap? Does LogME rank the sources as the trained models do?"""
    ref = "none" if "none" in methods else methods[0]
    out: dict = {"reference_method": ref}
    gaps = [r["methods"][ref]["in_domain_f1_micro"] - r["methods"][ref]["f1_micro"] for r in results]
    for key in ("mmd", "proxy_a_distance"):
        dist = [r["distance"][key] for r in results if "distance" in r]
        if len(dist) == len(results):
            out[f"spearman_{key}_vs_gap"] = spearman(dist, gaps)
    ranking = {}
    for target in sorted({r["target"] for r in results}):
        cands = [r for r in results if r["target"] == target]
        if len(cands) < 2:
            continue
        by_logme = [r["source"] for r in sorted(cands, key=lambda r: -r["methods"][ref]["logme"])]
        by_f1 = [r["source"] for r in sorted(cands, key=lambda r: -r["methods"][ref]["f1_macro"])]
        ranking[target] = {"by_logme": by_logme, "by_trained_macro_f1": by_f1, "same_order": by_logme == by_f1,
                           "same_best": by_logme[0] == by_f1[0]}  # fmt: skip
    out["source_ranking"] = ranking
    return out


def heatmap_png(results: list[dict], methods: Sequence[str], domains: Sequence[str]) -> bytes:
    """Micro-F1 per source (rows) and target (columns): one panel per method, then the paper's Table 5.

    Diagonal: in-domain micro-F1 (ours: of the first pair trained on that source, reference method).
    """
    ref = "none" if "none" in methods else methods[0]
    cells = [(domains.index(r["source"]), domains.index(r["target"]), r) for r in results]
    panels = {}
    for method in methods:
        grid = np.full((len(domains), len(domains)), np.nan)
        for i, j, r in cells:
            grid[i, j] = r["methods"][method]["f1_micro"]
            if np.isnan(grid[i, i]):
                grid[i, i] = r["methods"][ref]["in_domain_f1_micro"]
        panels[f"{method} (ours)"] = grid
    paper = np.diag([PAPER_TABLE5.get(d, {}).get(d, np.nan) for d in domains])
    paper[~np.eye(len(domains), dtype=bool)] = np.nan
    for i, j, r in cells:
        paper[i, j] = np.nan if r["paper_2014"] is None else r["paper_2014"]
    panels["paper 2014"] = paper
    short = [d.removeprefix("vader-") for d in domains]
    title = "3-class micro-F1 (diagonal: in-domain)"
    return domain_heatmap_figure(panels, short, title=title, vmin=0.3, vmax=0.95)


# ----------------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, da, transfer_args, training_args = make_parser().parse(argv)
    setup_logging()

    # 1. Data: every domain once, checked before anything is built or written.
    names = list(dict.fromkeys(da.domains)) if da.matrix else [da.source, da.target]
    if not da.matrix and da.source == da.target:
        raise ConfigError(f"source and target are both {da.source!r}; pick a different --target")
    raw = {name: load_domain(name, da) for name in names}
    pairs = list(itertools.permutations(names, 2)) if da.matrix else [(da.source, da.target)]
    for s, t in pairs:
        check_label_sets(raw[s], raw[t], s, t)
    label_names = raw[pairs[0][0]]["train"].features["label"].names

    # 2. Model, tokenizer, frozen features (cached on disk; shared by distances, iw, LogME, frozen training).
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    feature_model = build_classifier(model_args, TransferArguments(strategy="frozen"), label_names)
    pooled_ok = head_reads_pooler(feature_model)
    cached = transfer_args.strategy == "frozen" and transfer_args.cache_features and pooled_ok
    with RunWriter.from_training_args(training_args, "domain_adaptation") as run:
        domains = {
            n: Domain(
                n,
                raw[n],
                da,
                feature_model,
                tokenizer,
                model_args.max_length,
                training_args.per_device_eval_batch_size,
                label_names,
            )  # fmt: skip
            for n in names
        }
        trainable, total = count_parameters(build_classifier(model_args, transfer_args, label_names))
        setup = Setup(
            model_args, transfer_args, training_args, da, tokenizer, label_names, cached,
            # The Trainer wants an output_dir per run; nothing is saved there (save_strategy "no"): scratch space.
            work_dir=tempfile.mkdtemp(prefix="nlptransfer-da-"), run=run,
        )  # fmt: skip

        # 3. Train every method on every pair.
        results = []
        for s, t in pairs:
            save_under = "models" if da.save_models and not da.matrix else None
            results.append(run_pair(setup, domains[s], domains[t], save_under))

        # 4. Reports.
        rows = result_rows(results, da.method)
        summary = summaries(results, da.method)
        columns = list(rows[0])
        table = markdown_table(rows, columns)
        stem = "cross_domain" if da.matrix else "results"
        metrics = {
            "recipe": "domain_adaptation",
            "strategy": transfer_args.strategy,
            "adapted_representation": (
                training_args.align_on
                if training_args.align_on != "auto"
                else "logits"
                if transfer_args.strategy == "frozen"
                else "pooled"
            ),
            "seeds": da.seeds,
            "pairs": {f"{r['source']}->{r['target']}": r for r in results},
            "summary": summary,
            "trainable_parameters": trainable,
            "total_parameters": total,
        }
        command = command_line("domain_adaptation", argv)
        run.write_text(f"{stem}.md", table + "\n\n" + _summary_text(summary) + "\n\n" + PAPER_NOTE + "\n")
        run.write_text(f"{stem}.csv", csv_text(rows, lineterminator="\r\n"))
        if da.matrix and run.is_main:
            run.write_bytes("cross_domain.png", heatmap_png(results, da.method, names))
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, da, transfer_args, training_args))
        first = da.method[0]
        card = model_card(
            title=f"{Path(model_args.model_name_or_path).name}: domain adaptation {da.source} -> {da.target}"
            if not da.matrix else f"{Path(model_args.model_name_or_path).name}: cross-domain matrix",
            base_model=model_args.model_name_or_path,
            dataset=", ".join(names),
            strategy=transfer_args.strategy,
            label_names=label_names,
            results_table=table + "\n\n" + _summary_text(summary),
            trainable=trainable,
            total=total,
            command=command,
            notes=[PAPER_NOTE, f"methods: {', '.join(da.method)}; mean over {da.seeds} seed(s); target labels "
                   f"used only for testing, LogME and the target-only baseline ({da.target_labelled_samples} texts)."],
            load_snippet="# no models saved (matrix run or --save_models false)" if save_under is None else
            f"from transformers import pipeline\nclf = pipeline('text-classification', model='{run.output_dir}/models/{first}')",
        )  # fmt: skip
        run.write_text("README.md", card)
        _cleanup(Path(setup.work_dir))
        print(f"\nDomain adaptation [{transfer_args.strategy}], {da.seeds} seed(s)\n{table}\n{_summary_text(summary)}\n"
              f"Saved to {run.output_dir}")  # fmt: skip
        return metrics


def _summary_text(summary: dict) -> str:
    lines = []
    for key in ("mmd", "proxy_a_distance"):
        rho = summary.get(f"spearman_{key}_vs_gap")
        if rho is not None:
            lines.append(f"- Spearman({key}, transfer gap) = {rho:+.2f} (gap = in-domain - cross-domain micro-F1, "
                         f"{summary['reference_method']})")  # fmt: skip
    for target, r in summary.get("source_ranking", {}).items():
        lines.append(
            f"- {target}: LogME ranks sources {' > '.join(r['by_logme'])}; trained models (macro-F1) "
            f"{' > '.join(r['by_trained_macro_f1'])} ({'same order' if r['same_order'] else 'different order'})"
        )
    return "\n".join(lines)


def _cleanup(work_dir: Path) -> None:
    """The Trainer's scratch output_dir (nothing is saved there with save_strategy no)."""
    import shutil

    shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    run_cli(main)
