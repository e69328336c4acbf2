"""Domain pretraining: continued masked-LM training on a task's own texts (TAPT) or a domain corpus (DAPT).

Defaults (no arguments): TAPT (Gururangan et al. 2020's cheap winner): the embedded all-MiniLM-L6-v2 continues
masked-LM training on the *training* abstracts of `pubmed-pubtype` (split as the classification recipe splits
it), packed into 128-token blocks, whole-word masking, after warming up its new MLM head alone; sized for a
2-core CPU. The output is a plain transformers checkpoint that the classification recipes accept.

    python -m nlptransfer.recipes.domain_pretraining                                   # TAPT on pubmed-pubtype
    python -m nlptransfer.recipes.domain_pretraining --config recipes/domain_pretraining/minilm_pubmed_dapt.yaml
    python -m nlptransfer.recipes.domain_pretraining --corpus task --task_dataset my_task.csv
    python -m nlptransfer.recipes.domain_pretraining --corpus notes.txt --extend_vocab 500 --strategy lora
    python -m nlptransfer.recipes.text_classification --model_name_or_path outputs/domain-pretraining-pubtype-tapt

Corpus: `--corpus task --task_dataset NAME` (TAPT) trains on the task's train texts only, split exactly as the
classification recipes split it (same --split_seed, stratified); its validation texts measure the masked-LM
loss; its test split is never read. Any other `load_source` source is DAPT (a labelled one, e.g.
`--corpus pubmed-pubtype`, is TAPT on its train texts as well). `--extend_vocab N` first mines N domain words
from the training texts (frequent there, rare in general English, cut into 2+ pieces by the model's
vocabulary; `nlptransfer.embeddings`), adds them to the tokenizer and initialises their embeddings
(`--vocab_init random|mean|focus`). `--strategy lora` trains LoRA adapters (plus the new embedding rows and
the MLM head transform) and writes the merged plain model at the top of output_dir and the adapter in adapter/.

Packing (`--packing true`, the default): every text is tokenised whole and the token stream is cut into
blocks of --block_size tokens, so no step pays for padding and no text is truncated; `--packing false`: one
text per example, truncated to --max_length. The held-out texts are measured the same way.

Head warm-up: a checkpoint without an MLM head (MiniLM: the head weights are missing from what is loaded)
gets a random one; `--head_warmup_steps N` first trains it alone (encoder frozen) at
--head_warmup_learning_rate, then everything trains. The held-out masked-LM loss is measured before, after
the warm-up and after pretraining (metrics.json, model card).

Output directory: model + tokenizer (AutoModelForMaskedLM, and AutoModelForSequenceClassification for
fine-tuning: the base checkpoint's pooler is carried over), `metrics.json` (masked-LM loss and perplexity
before / after the head warm-up / after, fertility before/after, blocks and tokens trained),
`vocab_extension.json` (added words and their pieces), `config.yaml`, `README.md`, `run.json`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from transformers import set_seed

from nlptransfer import embeddings
from nlptransfer.config import (
    ModelArguments,
    RecipeParser,
    RunArguments,
    TransferArguments,
    config_to_dict,
)
from nlptransfer.data import load_corpus
from nlptransfer.errors import ConfigError, run_cli
from nlptransfer.modeling import fit_max_length, load_tokenizer
from nlptransfer.modeling.load import record_portable_base
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import pretraining_card, pretraining_table
from nlptransfer.run_dirs import check_input_outside_output
from nlptransfer.runs import RunWriter

logger = logging.getLogger("nlptransfer")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, embeddings.DomainPretrainingArguments, TransferArguments, RunArguments],
        defaults="domain_pretraining/minilm_pubmed_tapt.yaml",
        prog="python -m nlptransfer.recipes.domain_pretraining",
        description=__doc__.split("\n\n")[0],
    )


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, args, transfer_args, training_args = make_parser().parse(argv)
    setup_logging(training_args.verbose)
    if transfer_args.strategy not in ("full", "lora"):
        raise ConfigError(
            f"domain pretraining supports --strategy full or lora, not {transfer_args.strategy!r}"
        )
    # the model is reloaded when the run saves (its pooler): --overwrite_output_dir must not remove it first
    check_input_outside_output(
        model_args.model_name_or_path, training_args.output_dir, "--model_name_or_path"
    )
    set_seed(training_args.seed)
    loading = {"allow_pickle": model_args.allow_pickle, "trust_remote_code": model_args.trust_remote_code}
    masking = {"mlm_probability": args.mlm_probability, "whole_word_mask": args.whole_word_mask}

    # 1. Corpus (train texts; validation texts held out for the masked-LM loss; test never read) and model.
    train_texts, eval_texts, labelled = load_corpus(
        args.corpus,
        text_column=args.text_column,
        label_column=args.label_column,
        seed=args.split_seed,
        max_train=args.max_train_samples,
        max_eval=args.max_eval_samples,
        task_dataset=args.task_dataset,
    )
    corpus = args.task_dataset if args.corpus.strip().lower() == embeddings.TASK_CORPUS else args.corpus
    logger.info(
        "%s: %s %d training texts, %d held-out texts (test split not used)",
        corpus,
        "TAPT on the task's train split:" if labelled else "DAPT:",
        len(train_texts),
        len(eval_texts),
    )
    new_words = embeddings.read_word_list(args.new_words) if args.new_words else None
    reference = None
    if args.extend_vocab and args.reference_corpus.lower() != "none":
        reference = embeddings.reference_texts(args.reference_corpus)
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    model, base_path, new_head = embeddings.load_mlm_model(model_args.model_name_or_path, **loading)
    fit_max_length(model_args, model.config)
    if args.packing:
        fit_max_length(args, model.config, "block_size")
    notes = []

    # 2. Vocabulary: measure, mine, extend, initialise.
    fertility_before = embeddings.tokenizer_fertility(tokenizer, eval_texts)
    extension = None
    if args.extend_vocab or new_words:
        tokenizer, extension = embeddings.extend_domain_vocabulary(
            model,
            tokenizer,
            train_texts,
            new_words,
            size=args.extend_vocab,
            reference_texts=reference,
            min_count=args.min_count,
            init=args.vocab_init,
            aux_vectors=args.aux_vectors,
            seed=training_args.seed,
        )
        more = " ..." if len(extension.words) > 15 else ""
        notes.append(
            f"Vocabulary extended by {len(extension.words)} domain words ({args.vocab_init} init): "
            f"{', '.join(extension.words[:15])}{more}"
        )
    fertility_after = embeddings.tokenizer_fertility(tokenizer, eval_texts)
    length = args.block_size if args.packing else model_args.max_length
    shape = {"length": length, "whole_word_mask": args.whole_word_mask, "packing": args.packing}
    train_features = embeddings.mlm_features(tokenizer, train_texts, **shape)
    eval_features = embeddings.mlm_features(tokenizer, eval_texts, **shape)
    with RunWriter.from_training_args(training_args, "domain_pretraining") as run:
        # 3. Masked-LM training: the new head alone first, then everything (LoRA: adapters, the new
        # embedding rows and a new head's transform). The held-out loss before, after the warm-up, after.
        resuming = bool(training_args.resume_from_checkpoint)  # the checkpoint holds the warmed-up head
        warmup_steps = args.head_warmup_steps if new_head and not resuming else 0
        if new_head:
            notes.insert(
                0,
                embeddings.new_head_note(
                    model_args.model_name_or_path, new_head, warmup_steps, args.head_warmup_learning_rate
                ),
            )
            logger.warning(notes[0])
        losses = {}

        def measure(when: str, label: str) -> None:  # the held-out loss, same seeded masking every time
            losses[when] = embeddings.mlm_loss(
                model,
                tokenizer,
                eval_features,
                batch_size=training_args.per_device_eval_batch_size,
                **masking,
            )
            logger.info(
                "held-out masked-LM loss %s: %.3f (perplexity %.1f)",
                label,
                losses[when],
                embeddings.perplexity(losses[when]),
            )

        measure("before", "before")
        warmup = None
        if warmup_steps:
            warmup = embeddings.warm_up_head(
                model,
                tokenizer,
                train_features,
                training_args,
                steps=warmup_steps,
                learning_rate=args.head_warmup_learning_rate,
                **masking,
            )
            measure("after_warmup", "after the head warm-up")
        train_model = model
        if transfer_args.strategy == "lora":
            train_model = embeddings.mlm_lora_model(
                model,
                extension.new_ids if extension else [],
                new_head=bool(new_head),
                r=transfer_args.lora_r,
                lora_alpha=transfer_args.lora_alpha,
                lora_dropout=transfer_args.lora_dropout,
                target_modules=transfer_args.target_modules,
            )
        train_output, seconds, log_history = embeddings.train_mlm(
            train_model, tokenizer, train_features, training_args, **masking
        )
        if transfer_args.strategy == "lora":
            record_portable_base(train_model)  # the base loads from any working directory
            run.save_pretrained(train_model, "adapter", save_embedding_layers=bool(extension))
            run.save_pretrained(tokenizer, "adapter")
            model = train_model.merge_and_unload()
        measure("after", "after")

        # 4. Save and report.
        metrics = {
            "recipe": "domain_pretraining",
            "mode": "tapt" if labelled else "dapt",
            "corpus": corpus,
            "train_texts": len(train_texts),
            "heldout_texts": len(eval_texts),
            **{f"mlm_loss_{when}": loss for when, loss in losses.items()},
            **{f"perplexity_{when}": embeddings.perplexity(loss) for when, loss in losses.items()},
            "fertility_base_tokenizer": fertility_before.as_dict(),
            "fertility": fertility_after.as_dict(),
            "new_mlm_head": new_head,
            "head_warmup": warmup.as_dict() if warmup else None,
            "vocab_extension": len(extension.words) if extension else 0,
            "examples": embeddings.feature_stats(
                train_features, eval_features, packing=args.packing, length=length
            ),
            "train": {**train_output.metrics, "wall_seconds": round(seconds, 1)},
            "log_history": log_history,
        }
        embeddings.save_domain_model(model, tokenizer, run, base_path, **loading)
        if extension:
            run.write_json("vocab_extension.json", extension.as_dict())
        command = command_line("domain_pretraining", argv)
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, args, transfer_args, training_args))
        table = pretraining_table(metrics)
        card = pretraining_card(
            metrics,
            base_model=model_args.model_name_or_path,
            strategy=transfer_args.strategy,
            whole_word_mask=args.whole_word_mask,
            table=table,
            command=command,
            notes=notes,
            output_dir=run.output_dir,
        )
        run.write_text("README.md", card)
        print(
            f"\nDomain pretraining ({metrics['mode'].upper()}): {model_args.model_name_or_path} on {corpus}, "
            f"{len(train_texts)} texts, {train_output.global_step} steps in {seconds / 60:.1f} min\n"
            f"fertility {fertility_before.fertility:.3f} -> {fertility_after.fertility:.3f} subwords/word\n{table}\n"
            f"Saved to {run.output_dir}; fine-tune it with\n  python -m nlptransfer.recipes.text_classification "
            f"--model_name_or_path {run.output_dir}"
        )
        return metrics


if __name__ == "__main__":
    run_cli(main)
