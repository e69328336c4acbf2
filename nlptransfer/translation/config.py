"""Options of translation-pair transfer: the child pair, the offline parent, the vocabulary, generation and the
transfer child's freezing (`TranslationArguments`). The child's training arguments are
`nlptransfer.trainers.translation.TranslationTrainingArguments`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nlptransfer.errors import ConfigError
from nlptransfer.trainers.translation import FREEZE_CHOICES

RUNS = ("zero_shot", "scratch", "transfer")
#: Options that must be >= 1.
POSITIVE_FIELDS = (
    "child_train_size vocab_size extend_vocab_size d_model layers attention_heads ffn_dim parent_max_steps "
    "num_beams max_new_tokens max_source_length max_target_length parent_batch_size parent_max_length"
).split()


@dataclass
class TranslationArguments:
    parent_model: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained seq2seq parent: Hub id (online) or local directory, loaded with "
            "AutoModelForSeq2SeqLM/AutoTokenizer. Unset: train the small offline Marian parent on "
            "--parent_dataset (cached)."
        },
    )
    parent_dataset: str = field(
        default="bible-es-en",
        metadata={
            "help": "Parent pair for the offline parent: bible-<src>-<tgt>, or local parallel data with "
            "source/target (or src/tgt) columns or aligned P.src + P.tgt files."
        },
    )
    child_dataset: str = field(
        default="bible-it-en",
        metadata={
            "help": "Child pair: bible-<src>-<tgt>, a .tsv/.csv/.jsonl/.json/.parquet file with source and "
            "target columns, a folder of train/validation/test files, or a prefix P of aligned P.<src>, P.<tgt>."
        },
    )
    source_lang: str | None = field(
        default=None,
        metadata={"help": "Child source language code for local files (P.<src>); bible-* names set it."},
    )
    target_lang: str | None = field(
        default=None,
        metadata={"help": "Child target language code for local files (P.<tgt>); bible-* names set it."},
    )
    source_prefix: str = field(
        default="",
        metadata={"help": "Text put before every source, e.g. 'translate Italian to English: ' (T5)."},
    )
    child_train_size: int = field(
        default=3000, metadata={"help": "Child training pairs (a seeded sample of the child's train split)."}
    )
    runs: list[str] = field(
        default_factory=lambda: list(RUNS),
        metadata={
            "help": "What to train and test on the child: zero_shot (the parent as it is), scratch (same "
            "architecture, random init), transfer (from the parent). The transfer child is saved."
        },
    )
    vocab: str = field(
        default="shared",
        metadata={
            "help": "shared: the child uses the parent's tokenizer as it is (offline parent: trained on parent + "
            "child text). extend: add the child's frequent subwords the parent lacks, initialised from the "
            "parent's embeddings of their pieces.",
            "choices": ["shared", "extend"],
        },
    )
    extend_vocab_size: int = field(
        default=2000,
        metadata={"help": "vocab extend: size of the child tokenizer whose unseen pieces are added."},
    )
    vocab_size: int = field(default=4000, metadata={"help": "Offline parent: shared tokenizer size."})
    d_model: int = field(default=128, metadata={"help": "Offline parent: Marian width."})
    layers: int = field(default=2, metadata={"help": "Offline parent: encoder and decoder layers each."})
    attention_heads: int = field(default=4, metadata={"help": "Offline parent: attention heads."})
    ffn_dim: int = field(default=512, metadata={"help": "Offline parent: feed-forward width."})
    parent_max_steps: int = field(default=3000, metadata={"help": "Offline parent: optimizer steps."})
    parent_learning_rate: float = field(
        default=1e-3,
        metadata={
            "help": "Offline parent: peak learning rate (linear decay). Marian is post-LayerNorm: at 1.5e-3 and "
            "above the small parent was seen to fall back to writing the same sentence for every source."
        },
    )
    parent_batch_size: int = field(default=64, metadata={"help": "Offline parent: pairs per step."})
    parent_max_length: int = field(
        default=32,
        metadata={
            "help": "Offline parent: its training pairs longer than this many pieces (either side) are left "
            "out. Short pairs teach a small model to align source and target far sooner per CPU minute."
        },
    )
    max_source_length: int = field(
        default=64,
        metadata={
            "help": "Training pairs whose source is longer (in tokens) are left out; test sources truncated."
        },
    )
    max_target_length: int = field(
        default=64, metadata={"help": "Training pairs whose target is longer (in tokens) are left out."}
    )
    num_beams: int = field(default=4, metadata={"help": "Beam size for test translations (1 = greedy)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Longest translation generated, in tokens."})
    length_penalty: float = field(
        default=1.0, metadata={"help": "Beam score length exponent: >1 favours longer outputs, <1 shorter."}
    )
    max_test_samples: int | None = field(
        default=400,
        metadata={
            "help": "Test on the first N test pairs (in order: John 1:1 on for the Bible); unset = all."
        },
    )
    freeze: str = field(
        default="none",
        metadata={
            "help": "Transfer child: keep the parent's encoder or decoder weights fixed.",
            "choices": list(FREEZE_CHOICES),
        },
    )
    embeddings_only_steps: int = field(
        default=0,
        metadata={"help": "Transfer child: train only the token embeddings for the first N steps, then all."},
    )
    allow_pickle: bool = field(
        default=False, metadata={"help": "Allow pickled (.bin) parent weights; off: safetensors only."}
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow code from the --parent_model repository to run. Off unless you ask."},
    )

    def __post_init__(self):
        bad = [r for r in self.runs if r not in RUNS]
        if bad or not self.runs:
            raise ConfigError(f"unknown --runs {', '.join(bad) or '(none)'}; choose from {', '.join(RUNS)}")
        for name in POSITIVE_FIELDS:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1 (--{name})")
        if not 0 < self.parent_learning_rate < math.inf:
            raise ConfigError(
                f"parent_learning_rate={self.parent_learning_rate} must be a number > 0 (e.g. 1e-3)"
            )
        if self.d_model % self.attention_heads:
            raise ConfigError(
                f"d_model={self.d_model} must be a multiple of attention_heads={self.attention_heads}"
            )
        if self.max_test_samples is not None and self.max_test_samples < 1:
            raise ConfigError("max_test_samples must be >= 1, or unset for the whole test split")
        if self.freeze not in FREEZE_CHOICES:
            raise ConfigError(f"freeze={self.freeze!r}; choose one of {', '.join(FREEZE_CHOICES)}")
        if self.vocab not in ("shared", "extend"):
            raise ConfigError(f"vocab={self.vocab!r}; choose shared or extend")
        if self.embeddings_only_steps < 0:
            raise ConfigError("embeddings_only_steps must be >= 0 (0 = off)")
