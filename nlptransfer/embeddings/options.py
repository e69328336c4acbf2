"""The options of continued masked-LM pretraining (the domain_pretraining recipe): corpus, masking,
vocabulary extension, packing and the head warm-up.

`--corpus task --task_dataset NAME` is TAPT (the task's own training texts); any other corpus is DAPT
(a labelled corpus given directly is TAPT on its training texts too, as before).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlptransfer.embeddings.init import INIT_METHODS
from nlptransfer.errors import ConfigError

#: `--corpus task`: the training texts of `--task_dataset` (TAPT).
TASK_CORPUS = "task"


@dataclass
class DomainPretrainingArguments:
    corpus: str = field(
        default="pubmed-abstracts-unindexed",
        metadata={
            "help": "Texts to continue pretraining on: task (TAPT: the training texts of --task_dataset), an "
            "embedded name (DAPT: pubmed-abstracts, pubmed-abstracts-unindexed; a labelled set such as "
            "pubmed-pubtype = TAPT on its train texts), a .txt file (one text per line) or any "
            ".csv/.jsonl/.parquet file or folder with a text column."
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
            "choices": list(INIT_METHODS),
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

    task_dataset: str | None = field(
        default=None,
        metadata={
            "help": "The downstream task (a labelled dataset, e.g. pubmed-pubtype) whose training texts --corpus "
            "task pretrains on (TAPT), split exactly as the classification recipes split it (--split_seed, "
            "stratified): its validation texts measure the masked-LM loss, its test texts are never read."
        },
    )
    packing: bool = field(
        default=True,
        metadata={
            "help": "Concatenate the tokenised texts (each with its special tokens) and cut them into blocks of "
            "--block_size tokens: no padding and nothing truncated away. false: one text per example, "
            "truncated to --max_length."
        },
    )
    block_size: int = field(
        default=128,
        metadata={"help": "Tokens per packed block (--packing true); at most the model's positions."},
    )
    head_warmup_steps: int = field(
        default=0,
        metadata={
            "help": "When the checkpoint has no masked-LM head (its head weights were missing and initialised "
            "randomly), first train the new head alone, encoder frozen, for this many steps (0: no warm-up)."
        },
    )
    head_warmup_learning_rate: float = field(
        default=1e-3, metadata={"help": "Learning rate of the head warm-up (--head_warmup_steps)."}
    )

    def __post_init__(self):
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability={self.mlm_probability} must be between 0 and 1 (e.g. 0.15)")
        if self.extend_vocab < 0:
            raise ConfigError(f"extend_vocab={self.extend_vocab} must be >= 0 (0 = no vocabulary extension)")
        if self.extend_vocab and self.new_words:
            raise ConfigError("pass either --extend_vocab N (mine words) or --new_words FILE, not both")
        if self.vocab_init not in INIT_METHODS:
            raise ConfigError(
                f"unknown vocab_init {self.vocab_init!r}; choose one of {', '.join(INIT_METHODS)}"
            )
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name}={value} must be a positive number of texts, or left unset")
        if self.head_warmup_steps < 0:
            raise ConfigError(
                f"head_warmup_steps={self.head_warmup_steps} must be >= 0 (0 = no head warm-up; e.g. 200)"
            )
        if not 0 < self.head_warmup_learning_rate < math.inf:
            raise ConfigError(
                f"head_warmup_learning_rate={self.head_warmup_learning_rate} must be a number > 0 (e.g. 1e-3)"
            )
        if self.block_size < 1:
            raise ConfigError(f"block_size={self.block_size} must be >= 1 token (e.g. --block_size 128)")
        if self.corpus.strip().lower() == TASK_CORPUS and not self.task_dataset:
            raise ConfigError(
                "--corpus task pretrains on the training texts of --task_dataset, which is not set; "
                "pass e.g. --task_dataset pubmed-pubtype"
            )
