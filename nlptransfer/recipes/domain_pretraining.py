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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    Trainer,
    set_seed,
)

from nlptransfer import embeddings
from nlptransfer.config import (
    ModelArguments,
    RecipeParser,
    RunArguments,
    TransferArguments,
    config_to_dict,
)
from nlptransfer.data import load_source, subsample_indices
from nlptransfer.errors import ConfigError, DataError, ModelError, run_cli
from nlptransfer.modeling import load_model, load_tokenizer, resolve
from nlptransfer.recipes._common import command_line, setup_logging
from nlptransfer.reporting import markdown_table, render_card
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


# ----------------------------------------------------------------------------------------------
# steps


def load_corpus(args: DomainPretrainingArguments) -> tuple[list[str], list[str], bool]:
    """(train texts, held-out validation texts, labelled?) of the corpus; the test split is never used."""
    kwargs = {"text_column": args.text_column, "seed": args.split_seed}
    if args.label_column.lower() == "auto":
        try:
            splits, labelled = load_source(args.corpus, label_column="label", **kwargs), True
        except DataError as err:
            if "has no column 'label'" not in str(err) and "has no labels" not in str(err):
                raise
            splits, labelled = load_source(args.corpus, label_column=None, **kwargs), False
    else:
        label_column = None if args.label_column.lower() == "none" else args.label_column
        splits, labelled = (
            load_source(args.corpus, label_column=label_column, **kwargs),
            label_column is not None,
        )
    train, held_out = splits["train"], splits["validation"]
    # A random set of texts kept in corpus order (labels, if any, are never read).
    if args.max_train_samples and args.max_train_samples < len(train):
        train = train.select(subsample_indices(len(train), args.max_train_samples, args.split_seed))
    if args.max_eval_samples and args.max_eval_samples < len(held_out):
        held_out = held_out.select(subsample_indices(len(held_out), args.max_eval_samples, args.split_seed))
    return list(train["text"]), list(held_out["text"]), labelled


def load_mlm_model(model_args: ModelArguments):
    """AutoModelForMaskedLM, its resolved path and the names of the head weights the checkpoint lacked
    (initialised here)."""
    model, info = load_model(
        AutoModelForMaskedLM,
        model_args.model_name_or_path,
        allow_pickle=model_args.allow_pickle,
        trust_remote_code=model_args.trust_remote_code,
        output_loading_info=True,
    )
    prefix = model.base_model_prefix + "."
    new_head = sorted(k for k in info["missing_keys"] if not k.startswith(prefix))
    return model, resolve(model_args.model_name_or_path), new_head


def read_words(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--new_words file {path!r} not found; pass a text file with one word per line")
    try:
        words = [w.strip() for w in p.read_text(encoding="utf-8").splitlines() if w.strip()]
    except UnicodeDecodeError:
        raise DataError(f"--new_words file {path!r} is not UTF-8 text; re-save it as UTF-8") from None
    if not words:
        raise DataError(f"--new_words file {path!r} is empty; put one word per line")
    return words


def read_reference(name: str) -> list[str] | None:
    if name.lower() == "none":
        return None
    if name.lower() == "vader":
        return embeddings.reference_texts()
    return list(load_source(name, label_column=None)["train"]["text"])


class MaskingCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` that also pads `offset_mapping` (which whole-word masking reads
    and `tokenizer.pad` leaves ragged in transformers 5)."""

    def __post_init__(self):
        if self.whole_word_mask:  # whole-word masking always uses [MASK] (transformers warns and sets it)
            self.mask_replace_prob, self.random_replace_prob = 1.0, 0.0
        super().__post_init__()

    def torch_call(self, examples):
        if examples and "offset_mapping" in examples[0]:
            longest = max(len(e["input_ids"]) for e in examples)
            examples = [
                {
                    **e,
                    "offset_mapping": list(e["offset_mapping"])
                    + [(0, 0)] * (longest - len(e["offset_mapping"])),
                }
                for e in examples
            ]
        return super().torch_call(examples)


def mlm_loss(model, tokenizer, texts: list[str], args: DomainPretrainingArguments, max_length: int,
             batch_size: int, seed: int = 0) -> float:  # fmt: skip
    """Mean masked-LM loss over the masked tokens of `texts`, with a fixed (seeded) masking."""
    collator = MaskingCollator(
        tokenizer, mlm_probability=args.mlm_probability, whole_word_mask=args.whole_word_mask, seed=seed
    )
    features = encode(tokenizer, texts, max_length, args.whole_word_mask)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collator(features[start : start + batch_size])
            n = int((batch["labels"] != -100).sum())
            if n == 0:
                continue
            total += float(model(**batch).loss) * n
            count += n
    if count == 0:
        raise DataError(
            "the held-out texts gave no masked tokens; add validation texts or raise --max_length"
        )
    return total / count


def encode(tokenizer, texts: list[str], max_length: int, offsets: bool) -> list[dict]:
    enc = tokenizer(
        texts, truncation=True, max_length=max_length, return_special_tokens_mask=True,
        return_offsets_mapping=offsets,
    )  # fmt: skip
    keys = [k for k in enc if k != "token_type_ids"]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


def save_domain_model(model, tokenizer, run: RunWriter, base_path: str, model_args: ModelArguments) -> None:
    """Save the MLM model plus the base checkpoint's backbone weights the MLM class has no place for
    (BERT's pooler), so AutoModelForSequenceClassification gets the same pooler as from the base."""
    state = model.state_dict()
    prefix = model.base_model_prefix
    try:
        flags = {"allow_pickle": model_args.allow_pickle, "trust_remote_code": model_args.trust_remote_code}
        base = load_model(AutoModel, base_path, **flags)
        extras = {f"{prefix}.{k}": v for k, v in base.state_dict().items()
                  if f"{prefix}.{k}" not in state and not k.startswith("embeddings.")}  # fmt: skip
    except ModelError:
        extras = {}
    run.save_pretrained(model, state_dict={**state, **extras})
    run.save_pretrained(tokenizer)


# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict:
    model_args, args, transfer_args, training_args = make_parser().parse(argv)
    setup_logging()
    if transfer_args.strategy not in ("full", "lora"):
        raise ConfigError(
            f"domain pretraining supports --strategy full or lora, not {transfer_args.strategy!r}"
        )
    set_seed(training_args.seed)

    # 1. Corpus (train texts; validation texts held out for the masked-LM loss) and model.
    train_texts, eval_texts, labelled = load_corpus(args)
    logger.info(
        "%s: %s %d training texts, %d held-out texts (test split not used)",
        args.corpus, "TAPT on the task's train split:" if labelled else "DAPT:", len(train_texts), len(eval_texts),
    )  # fmt: skip
    new_words = read_words(args.new_words) if args.new_words else None
    reference = read_reference(args.reference_corpus) if args.extend_vocab else None
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    model, base_path, new_head = load_mlm_model(model_args)
    notes = []
    if new_head:
        note = (
            f"{model_args.model_name_or_path} has no masked-LM head in its checkpoint: the head "
            f"({', '.join(new_head)}) was initialised randomly and trained here along with the encoder."
        )
        logger.warning(note)
        notes.append(note)

    # 2. Vocabulary: measure, mine, extend, initialise.
    fertility_before = embeddings.tokenizer_fertility(tokenizer, eval_texts)
    extension = None
    if args.extend_vocab or new_words:
        if new_words is None:
            mined = embeddings.mine_domain_vocabulary(
                tokenizer, train_texts, reference, size=args.extend_vocab, min_count=args.min_count
            )
            new_words = [c.word for c in mined]
        aux = None
        if args.vocab_init == "focus":
            aux = (embeddings.load_glove() if args.aux_vectors == "glove"
                   else embeddings.train_static_vectors(tokenizer, train_texts))  # fmt: skip
        old_tokenizer = tokenizer
        tokenizer, extension = embeddings.extend_vocabulary(
            model, tokenizer, new_words, init=args.vocab_init, aux_vectors=aux, seed=training_args.seed
        )
        pieces = embeddings.word_pieces(old_tokenizer, extension.words)
        notes.append(
            f"Vocabulary extended by {len(extension.words)} domain words ({args.vocab_init} init): "
            f"{', '.join(extension.words[:15])}{' ...' if len(extension.words) > 15 else ''}"
        )
    fertility_after = embeddings.tokenizer_fertility(tokenizer, eval_texts)
    with RunWriter.from_training_args(training_args, "domain_pretraining") as run:
        # 3. Masked-LM training.
        batch = training_args.per_device_eval_batch_size
        loss_before = mlm_loss(model, tokenizer, eval_texts, args, model_args.max_length, batch)
        logger.info(
            "held-out masked-LM loss before: %.3f (perplexity %.1f)", loss_before, math.exp(loss_before)
        )
        train_model = model
        if transfer_args.strategy == "lora":
            from peft import get_peft_model

            peft_config = embeddings.lora_config_for_new_tokens(
                extension.new_ids if extension else [],
                r=transfer_args.lora_r,
                lora_alpha=transfer_args.lora_alpha,
                lora_dropout=transfer_args.lora_dropout,
                target_modules=transfer_args.target_modules or ["query", "value"],
                # the random MLM head transform trains fully
                modules_to_save=["transform"] if new_head else None,
            )
            train_model = get_peft_model(model, peft_config)
        training_args.remove_unused_columns = False
        collator = MaskingCollator(
            tokenizer, mlm_probability=args.mlm_probability, whole_word_mask=args.whole_word_mask
        )
        trainer = Trainer(
            model=train_model,
            args=training_args,
            train_dataset=encode(tokenizer, train_texts, model_args.max_length, args.whole_word_mask),
            data_collator=collator,
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        train_output = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint or None)
        seconds = time.perf_counter() - started
        if transfer_args.strategy == "lora":
            run.save_pretrained(train_model, "adapter", save_embedding_layers=bool(extension))
            run.save_pretrained(tokenizer, "adapter")
            model = train_model.merge_and_unload()
        loss_after = mlm_loss(model, tokenizer, eval_texts, args, model_args.max_length, batch)
        logger.info("held-out masked-LM loss after: %.3f (perplexity %.1f)", loss_after, math.exp(loss_after))

        # 4. Save and report.
        table = markdown_table(
            [{"model": "before training", "mlm_loss": loss_before, "perplexity": embeddings.perplexity(loss_before)},
             {"model": "after training", "mlm_loss": loss_after, "perplexity": embeddings.perplexity(loss_after)}],
            ["model", "mlm_loss", "perplexity"],
        ) + "\n\n" + markdown_table(
            [{"tokenizer": name, "subwords_per_word": f.fertility, "fragmented_words": f.fragmented_rate,
              "unknown_words": f.unknown_rate}
             for name, f in (("base", fertility_before), ("used", fertility_after))],
            ["tokenizer", "subwords_per_word", "fragmented_words", "unknown_words"],
        )  # fmt: skip
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
            "log_history": list(trainer.state.log_history),
        }
        save_domain_model(model, tokenizer, run, base_path, model_args)
        if extension:
            record = extension.as_dict()
            record["old_pieces"] = dict(zip(extension.words, pieces, strict=True))
            run.write_json("vocab_extension.json", record)
        command = command_line("domain_pretraining", argv)
        run.write_json("metrics.json", metrics)
        run.write_yaml("config.yaml", config_to_dict(model_args, args, transfer_args, training_args))
        card = model_card(model_args, args, transfer_args, metrics, table, command, notes, run.output_dir)
        run.write_text("README.md", card)
        print(
            f"\nDomain pretraining ({metrics['mode'].upper()}): {model_args.model_name_or_path} on {args.corpus}, "
            f"{len(train_texts)} texts, {train_output.global_step} steps in {seconds / 60:.1f} min\n"
            f"fertility {fertility_before.fertility:.3f} -> {fertility_after.fertility:.3f} subwords/word\n{table}\n"
            f"Saved to {run.output_dir}; fine-tune it with\n  python -m nlptransfer.recipes.text_classification "
            f"--model_name_or_path {run.output_dir}"
        )
        return metrics


def model_card(model_args, args, transfer_args, metrics, table, command, notes, output_dir) -> str:
    mode = "task-adaptive (TAPT)" if metrics["mode"] == "tapt" else "domain-adaptive (DAPT)"
    body = [
        f"Continued masked-LM training ({transfer_args.strategy}, whole-word masking "
        f"{'on' if args.whole_word_mask else 'off'}) on {metrics['train_texts']} texts of `{args.corpus}`. "
        f"Masked-LM loss on {metrics['heldout_texts']} held-out texts, same tokenizer and masking before and after; "
        "tokenizer fertility (subwords per word) on the same texts:",
        "",
        table,
        "",
    ]
    load_snippet = "\n".join(
        [
            "from transformers import AutoModelForSequenceClassification, pipeline",
            f'fill = pipeline("fill-mask", model="{output_dir}")',
            f'clf = AutoModelForSequenceClassification.from_pretrained("{output_dir}", num_labels=4)  # then fine-tune',
        ]
    )
    use_note = f"or `python -m nlptransfer.recipes.text_classification --model_name_or_path {output_dir}`."
    return render_card(
        title=f"{Path(model_args.model_name_or_path).name}, {mode} masked-LM pretraining on {args.corpus}",
        body=body,
        load_snippet=load_snippet,
        command=command,
        notes=notes,
        use_note=use_note,
        pipeline_tag="fill-mask",
        tags=("nlptransfer", "domain-adaptation", "dapt"),
    )


if __name__ == "__main__":
    run_cli(main)
