"""Domain pretraining: continued masked-LM training on a domain corpus (DAPT) or a task's own texts (TAPT).

Defaults (no arguments): the embedded all-MiniLM-L6-v2 continues masked-LM training on PubMed abstracts
(`pubmed-abstracts-unindexed`: none of them is a `pubmed-pubtype` text), whole-word masking, sized for a
2-core CPU. The output is a plain transformers checkpoint that the classification recipes accept.

    python -m nlptransfer.recipes.domain_pretraining
    python -m nlptransfer.recipes.domain_pretraining --extend_vocab 500 --vocab_init mean
    python -m nlptransfer.recipes.domain_pretraining --corpus pubmed-pubtype          # TAPT: train texts only
    python -m nlptransfer.recipes.domain_pretraining --corpus notes.txt --strategy lora
    python -m nlptransfer.recipes.text_classification --model_name_or_path outputs/domain-pretraining-pubmed

Corpus: any `load_source` source. A corpus with a `label` column (e.g. `pubmed-pubtype`) is split exactly as
the classification recipes split it (same seed, stratified), and only its *train* texts are trained on (TAPT);
its validation texts measure the masked-LM loss; the test split is never read. `--extend_vocab N` first mines
N domain words from the training texts (frequent there, rare in general English, cut into 2+ pieces by the
model's vocabulary; `nlptransfer.embeddings`), adds them to the tokenizer and initialises their embeddings
(`--vocab_init random|mean|focus`). `--strategy lora` trains LoRA adapters (plus the new embedding rows and
the MLM head transform) and writes the merged plain model at the top of output_dir and the adapter in adapter/.

The embedded MiniLM was trained for sentence embeddings and has no MLM head: `AutoModelForMaskedLM` gives it
a randomly initialised one, which this recipe trains along with the encoder (the log and model card say so;
the loss before training is then near ln(vocab size)). Texts are truncated to --max_length tokens (title and
start of each abstract), not concatenated.

Output directory: model + tokenizer (AutoModelForMaskedLM, and AutoModelForSequenceClassification for
fine-tuning: the base checkpoint's pooler is carried over), `metrics.json` (masked-LM loss and perplexity
before/after on held-out text, fertility before/after), `vocab_extension.json` (added words and their pieces),
`config.yaml`, `README.md`, `run.json`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from nlptransfer.runs import RunWriter

logger = logging.getLogger("nlptransfer")


@dataclass
class DomainPretrainingArguments:
    corpus: str = field(
        default="pubmed-abstracts-unindexed",
        metadata={
            "help": "Texts to continue pretraining on: an embedded name (pubmed-abstracts, pubmed-abstracts-"
            "unindexed; a labelled set such as pubmed-pubtype = TAPT on its train texts), a .txt file (one text "
            "per line) or any .csv/.jsonl/.parquet file or folder with a text column."
        },
    )
    text_column: str = field(default="text", metadata={"help": "Column holding the text."})
    label_column: str = field(
        default="auto",
        metadata={
            "help": "auto: split like the classification recipes when the corpus has a 'label' column "
            "(stratified; only train texts are used), else as unlabelled text. 'none' forces unlabelled."
        },
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/validation/test split."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Train on at most this many texts (seeded subsample)."}
    )
    max_eval_samples: int | None = field(
        default=500, metadata={"help": "Held-out texts (validation split) for the masked-LM loss."}
    )
    whole_word_mask: bool = field(
        default=True,
        metadata={
            "help": "Mask all pieces of a word together (DataCollatorForLanguageModeling whole_word_mask)."
        },
    )
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of tokens (or words) masked."})
    extend_vocab: int = field(
        default=0,
        metadata={
            "help": "Mine this many domain words from the training texts and add them to the vocabulary."
        },
    )
    new_words: str | None = field(
        default=None, metadata={"help": "Instead of mining: a UTF-8 file with one word to add per line."}
    )
    vocab_init: str = field(
        default="mean",
        metadata={
            "help": "Initialisation of new embeddings: random (transformers' default resize), mean (of the "
            "word's old pieces), focus (similar tokens in --aux_vectors).",
            "choices": list(embeddings.INIT_METHODS),
        },
    )
    aux_vectors: str = field(
        default="glove",
        metadata={
            "help": "Static space for --vocab_init focus: glove (GloVe 6B-50d asset) or domain (PPMI-SVD "
            "vectors trained on the training texts).",
            "choices": ["glove", "domain"],
        },
    )
    reference_corpus: str = field(
        default="vader",
        metadata={
            "help": "General text for mining (words frequent there are not domain words): vader (the 23.7k "
            "VADER snippets), none, or a .txt file."
        },
    )
    min_count: int = field(default=5, metadata={"help": "Mining: minimum frequency in the training texts."})

    def __post_init__(self):
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability={self.mlm_probability} must be between 0 and 1 (e.g. 0.15)")
        if self.extend_vocab < 0:
            raise ConfigError(f"extend_vocab={self.extend_vocab} must be >= 0 (0 = no vocabulary extension)")
        if self.extend_vocab and self.new_words:
            raise ConfigError("pass either --extend_vocab N (mine words) or --new_words FILE, not both")
        if self.vocab_init not in embeddings.INIT_METHODS:
            raise ConfigError(
                f"unknown vocab_init {self.vocab_init!r}; choose one of {', '.join(embeddings.INIT_METHODS)}"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be a positive number of texts, or left unset")


def make_parser() -> RecipeParser:
    return RecipeParser(
        [ModelArguments, DomainPretrainingArguments, TransferArguments, RunArguments],
        defaults="domain_pretraining/minilm_pubmed_dapt.yaml",
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
    set_seed(training_args.seed)
    loading = {"allow_pickle": model_args.allow_pickle, "trust_remote_code": model_args.trust_remote_code}
    masking = {"mlm_probability": args.mlm_probability, "whole_word_mask": args.whole_word_mask}

    # 1. Corpus (train texts; validation texts held out for the masked-LM loss) and model.
    train_texts, eval_texts, labelled = load_corpus(
        args.corpus,
        text_column=args.text_column,
        label_column=args.label_column,
        seed=args.split_seed,
        max_train=args.max_train_samples,
        max_eval=args.max_eval_samples,
    )
    logger.info(
        "%s: %s %d training texts, %d held-out texts (test split not used)",
        args.corpus,
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
    notes = []
    if new_head:
        notes.append(
            f"{model_args.model_name_or_path} has no masked-LM head in its checkpoint: the head "
            f"({', '.join(new_head)}) was initialised randomly and trained here along with the encoder."
        )
        logger.warning(notes[-1])

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
    with RunWriter.from_training_args(training_args, "domain_pretraining") as run:
        # 3. Masked-LM training (LoRA: adapters, the new embedding rows and a new head's transform).
        measure = {
            "max_length": model_args.max_length,
            "batch_size": training_args.per_device_eval_batch_size,
        }
        loss_before = embeddings.mlm_loss(model, tokenizer, eval_texts, **measure, **masking)
        logger.info(
            "held-out masked-LM loss before: %.3f (perplexity %.1f)", loss_before, math.exp(loss_before)
        )
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
            train_model, tokenizer, train_texts, training_args, max_length=model_args.max_length, **masking
        )
        if transfer_args.strategy == "lora":
            record_portable_base(train_model)  # the base loads from any working directory
            run.save_pretrained(train_model, "adapter", save_embedding_layers=bool(extension))
            run.save_pretrained(tokenizer, "adapter")
            model = train_model.merge_and_unload()
        loss_after = embeddings.mlm_loss(model, tokenizer, eval_texts, **measure, **masking)
        logger.info("held-out masked-LM loss after: %.3f (perplexity %.1f)", loss_after, math.exp(loss_after))

        # 4. Save and report.
        metrics = {
            "recipe": "domain_pretraining",
            "mode": "tapt" if labelled else "dapt",
            "corpus": args.corpus,
            "train_texts": len(train_texts),
            "heldout_texts": len(eval_texts),
            "mlm_loss_before": loss_before,
            "mlm_loss_after": loss_after,
            "perplexity_before": embeddings.perplexity(loss_before),
            "perplexity_after": embeddings.perplexity(loss_after),
            "fertility_base_tokenizer": fertility_before.as_dict(),
            "fertility": fertility_after.as_dict(),
            "new_mlm_head": new_head,
            "vocab_extension": len(extension.words) if extension else 0,
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
            f"\nDomain pretraining ({metrics['mode'].upper()}): {model_args.model_name_or_path} on {args.corpus}, "
            f"{len(train_texts)} texts, {train_output.global_step} steps in {seconds / 60:.1f} min\n"
            f"fertility {fertility_before.fertility:.3f} -> {fertility_after.fertility:.3f} subwords/word\n{table}\n"
            f"Saved to {run.output_dir}; fine-tune it with\n  python -m nlptransfer.recipes.text_classification "
            f"--model_name_or_path {run.output_dir}"
        )
        return metrics


if __name__ == "__main__":
    run_cli(main)
