"""Translation-pair transfer: a parent model trained on a high-resource pair initialises a low-resource child.

The low-resource MT setting of Zoph et al. (2016) and Kocmi & Bojar (2018). One run reports, on the child's
test set: the child trained from scratch, the child transferred from the parent, and the parent applied
zero-shot (when parent and child share the target language).

Defaults (no arguments, offline): parent Spanish->English on `bible-es-en` (Reina-Valera 1909 -> KJV,
30k verse pairs), a small Marian (the opus-mt architecture) trained by the recipe with a shared Unigram
tokenizer over parent + child text, and cached under the nlptransfer cache, so a second run reuses it;
child Italian->English on 3,000 pairs of `bible-it-en` (Diodati 1649 -> KJV). Test: the Gospel of John,
a whole book no model saw in any language.

    python -m nlptransfer.recipes.translation_pair
    python -m nlptransfer.recipes.translation_pair --child_dataset bible-ro-en --child_train_size 2000
    python -m nlptransfer.recipes.translation_pair --parent_model Helsinki-NLP/opus-mt-fr-en \
        --child_dataset my_pairs.tsv --output_dir outputs/mine          # online, or a local checkpoint dir
    python -m nlptransfer.recipes.translation_pair --config recipes/translation_pair/marian_extend_vocab.yaml

Output directory: the transferred child (`AutoModelForSeq2SeqLM.from_pretrained(<dir>).generate(...)`; beam
settings in its generation_config.json; transformers 5 removed the "translation" pipeline), `adapter/` for
the peft methods, `metrics.json`, `config.yaml`, `predictions.jsonl` (test sources, references and every system's
output), `README.md` (model card) and `run.json`.

The machinery (offline parent, length filter, child training, scoring, saving) is `nlptransfer.translation`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from transformers import AutoModelForSeq2SeqLM, set_seed

from nlptransfer.config import RecipeParser, TransferArguments, config_to_dict
from nlptransfer.config_training import check_eval_batches
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import markdown_table, model_card
from nlptransfer.run_dirs import check_input_outside_output
from nlptransfer.runs import RunWriter
from nlptransfer.trainers.translation import (
    TranslationTrainingArguments,
    apply_seq2seq_strategy,
    check_seq2seq_strategy,
    check_seq2seq_targets,
)
from nlptransfer.translation import (
    PARENT_MIN_BLEU,
    RUNS,
    ChildPair,
    ChildTest,
    TranslationArguments,
    card_notes,
    extend_child_vocabulary,
    filtered_features,
    fit_child,
    load_child,
    load_parent,
    load_snippet,
    save_child,
    score_own_pair,
)

# PARENT_MIN_BLEU and TranslationArguments stay importable from here (they live in nlptransfer.translation).
__all__ = ["PARENT_MIN_BLEU", "TranslationArguments", "main", "make_parser"]

COLUMNS = ["system", "BLEU", "chrF", "child train pairs", "train min"]


def make_parser() -> RecipeParser:
    return RecipeParser(
        [TranslationArguments, TransferArguments, TranslationTrainingArguments],
        defaults="translation_pair/marian_es_it_en.yaml",
        prog="python -m nlptransfer.recipes.translation_pair",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    args, transfer_args, training_args = make_parser().parse(argv)
    setup_logging(training_args.verbose)
    seed = training_args.seed
    set_seed(seed)
    started = time.time()
    check_seq2seq_strategy(transfer_args)
    if "transfer" not in args.runs and transfer_args.strategy != "full":
        raise ConfigError("--strategy applies to the transfer run; add transfer to --runs")
    check_input_outside_output(args.parent_model, training_args.output_dir, "--parent_model")

    # 1. Data: the child pair (its languages name the local files' sides), a seeded training sample, test pairs.
    child = load_child(args, seed)
    check_eval_batches(training_args, len(child.splits["validation"]), "child validation pairs")

    # 2. Parent: a pretrained checkpoint, or the offline Marian trained (once, cached) on the parent pair.
    parent, tokenizer, parent_name, parent_pair = load_parent(args, child.train, seed)
    if "transfer" in args.runs:
        check_seq2seq_targets(parent, transfer_args)  # a --target_modules typo: one line, nothing written
    # The child pairs, tokenised once for both children (an extended vocabulary re-tokenises them for the
    # transfer child); no pair fitting the length limits fails here, before anything is written.
    features = None
    if "scratch" in args.runs or ("transfer" in args.runs and args.vocab == "shared"):
        features = filtered_features(child.train, tokenizer, args)

    with RunWriter.from_training_args(training_args, "translation_pair") as run:
        tests = ChildTest.of(child.test, args, training_args.per_device_eval_batch_size)
        fits, warnings, model = {}, [], None
        if "zero_shot" in args.runs:  # 3.
            warnings = zero_shot(parent, tokenizer, args, parent_pair, child, tests, seed)
        if "scratch" in args.runs:  # 4.
            fits["scratch"] = scratch_child(parent, tokenizer, features, child, args, training_args, tests)
        if "transfer" in args.runs:  # 5.
            model, tokenizer, fits["transfer"] = transfer_child(
                parent, tokenizer, features, child, args, transfer_args, training_args, tests
            )

        # 6. Report: metrics.json, config.yaml, predictions, the transferred child + model card.
        table = results_table(tests.results, fits, len(child.train), parent_pair)
        metrics = run_metrics(args, parent_name, child, tests, fits, warnings, started)
        if model is not None:
            save_child(model, tokenizer, run, tests.generation, transfer_args.merge_adapters)
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(args, transfer_args, training_args))
        run.write_text("README.md", card(args, transfer_args, metrics, table, tests, run.output_dir, argv))
        run.write_text("predictions.jsonl", tests.predictions_jsonl())
        print(summary(args, table, metrics, run.output_dir))
        return metrics


# ----------------------------------------------------------------------------------------------
# stages


def zero_shot(
    parent, tokenizer, args, parent_pair, child: ChildPair, tests: ChildTest, seed: int
) -> list[str]:
    """3. The parent translating the child's source language as it is; and, for the offline parent, the parent
    on its own pair's test set (for the Bible: the same verses of John, the same references). Returns warnings."""
    warnings: list[str] = []
    if not args.parent_model:
        tests.results["parent_own_pair"] = score_own_pair(
            parent, tokenizer, args, len(tests.sources), tests.generation, warnings, seed
        )
    scores = tests.score("zero_shot", parent, tokenizer)
    tgt = child.target_lang
    if not (parent_pair is None or tgt is None or parent_pair[1] == tgt):
        scores["note"] = "the parent writes another target language: near 0 expected"
    return warnings


def scratch_child(
    parent, tokenizer, features, child: ChildPair, args, training_args, tests: ChildTest
) -> dict:
    """4. The parent's architecture and tokenizer, random weights, the child data only; returns its fit."""
    set_seed(training_args.seed)
    scratch = AutoModelForSeq2SeqLM.from_config(parent.config)
    fit = fit_child(scratch, tokenizer, features, child.splits["validation"], args, training_args, "scratch")
    tests.score("scratch", scratch, tokenizer)
    return fit


def transfer_child(
    parent, tokenizer, features, child: ChildPair, args, transfer_args, training_args, tests: ChildTest
):
    """5. The parent's weights (vocabulary shared or extended), strategy and freezing options; returns
    (the child model, its tokenizer, its fit)."""
    set_seed(training_args.seed)
    added = []
    if args.vocab == "extend":
        tokenizer, added = extend_child_vocabulary(parent, tokenizer, child.train, args)
        features = filtered_features(child.train, tokenizer, args)
    model = apply_seq2seq_strategy(parent, transfer_args)
    fit = fit_child(
        model,
        tokenizer,
        features,
        child.splits["validation"],
        args,
        training_args,
        "transfer",
        freeze=args.freeze,
        embeddings_only_steps=args.embeddings_only_steps,
    )
    fit["added_tokens"] = len(added)
    tests.score("transfer", model, tokenizer)
    return model, tokenizer, fit


# ----------------------------------------------------------------------------------------------
# report


def results_table(results: dict, fits: dict, n_train: int, parent_pair) -> str:
    """The markdown table of every system's BLEU/chrF, its child training pairs and minutes."""
    own = "->".join(parent_pair) if parent_pair else "parent data"
    labels = {
        "parent_own_pair": f"parent on its own pair ({own})",
        "zero_shot": "parent zero-shot",
        "scratch": "child from scratch",
        "transfer": "child from parent",
    }
    rows = []
    for system in ("parent_own_pair", *RUNS):
        if system in results:
            fit = fits.get(system, {})
            rows.append(
                {
                    "system": labels[system],
                    "BLEU": f"{results[system]['bleu']:.2f}",
                    "chrF": f"{results[system]['chrf']:.2f}",
                    "child train pairs": n_train if fit else 0,
                    "train min": f"{fit.get('train_seconds', 0) / 60:.1f}",
                }
            )
    return markdown_table(rows, COLUMNS)


def run_metrics(args, parent_name: str, child: ChildPair, tests: ChildTest, fits, warnings, started) -> dict:
    """metrics.json: every system's BLEU/chrF, the gain of transfer over scratch, the children's training."""
    results = tests.results
    gain = None
    if "scratch" in results and "transfer" in results:
        gain = {k: results["transfer"][k] - results["scratch"][k] for k in ("bleu", "chrf")}
    n_test = len(tests.sources)
    first = f", first {n_test} pairs" if n_test < len(child.splits["test"]) else ""
    return {
        "recipe": "translation_pair",
        "parent": parent_name,
        "child_dataset": args.child_dataset,
        "child_pair": child.name,
        "child_train_size": len(child.train),
        "test": {"n": n_test, "source": f"{args.child_dataset} test split{first}"},
        "results": results,
        "transfer_gain": gain,
        "training": fits,
        "generation": {k: tests.generation[k] for k in ("num_beams", "max_new_tokens", "length_penalty")},
        "wall_seconds": round(time.time() - started, 1),
        "warnings": warnings,
    }


def card(args, transfer_args, metrics: dict, table: str, tests: ChildTest, output_dir, argv) -> str:
    """README.md: the saved child's model card, or the results alone when no transfer child was trained."""
    pair = metrics["child_pair"]
    if "transfer" not in metrics["training"]:
        return f"# Translation-pair transfer ({pair})\n\nNo transfer child was trained (runs: {args.runs}).\n\n{table}\n"
    fit = metrics["training"]["transfer"]
    parent = args.parent_model or args.parent_dataset
    return model_card(
        title=f"{pair} translation transferred from {Path(str(parent)).name}",
        base_model=str(args.parent_model or f"offline Marian parent ({args.parent_dataset})"),
        dataset=args.child_dataset,
        strategy=transfer_args.strategy,
        label_names=[],
        results_table=table,
        trainable=fit["trainable_parameters"],
        total=fit["total_parameters"],
        command=command_line("translation_pair", argv),
        notes=card_notes(args, len(tests.sources), metrics["transfer_gain"])
        + [f"Warning: {w}." for w in metrics["warnings"]],
        load_snippet=load_snippet(output_dir, tests.sources[0], args.source_prefix),
        pipeline_tag="translation",
    )


def summary(args, table: str, metrics: dict, output_dir) -> str:
    """What the run prints at the end."""
    gain = metrics["transfer_gain"]
    lines = [
        f"\nTranslation-pair transfer, child {metrics['child_pair']} ({args.child_dataset}, "
        f"{metrics['child_train_size']} training pairs), test n={metrics['test']['n']}",
        f"parent: {metrics['parent']}",
        table,
    ]
    if gain:
        lines.append(f"transfer gain over scratch: BLEU {gain['bleu']:+.2f}, chrF {gain['chrf']:+.2f}")
    lines += [f"WARNING: {w}" for w in metrics["warnings"]]
    lines.append(f"wall time {metrics['wall_seconds'] / 60:.1f} min. Saved to {output_dir}")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
