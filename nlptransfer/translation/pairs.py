"""The child pair (`load_child`: its languages, splits, seeded training sample and test pairs); pairs tokenised within the length
limits (`filtered_features`, for the parent's and the child's training pairs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from datasets import Dataset, DatasetDict

from nlptransfer.data import subsample
from nlptransfer.data.bible import check_pair, is_bible_name, load_parallel, parse_bible_name
from nlptransfer.errors import ConfigError, DataError
from nlptransfer.modeling.seq2seq import tokenize_pairs
from nlptransfer.translation.config import TranslationArguments

logger = logging.getLogger("nlptransfer")


def child_languages(args: TranslationArguments) -> tuple[str | None, str | None]:
    """The child's (source, target) codes: from a bible-* name, else --source_lang/--target_lang."""
    if is_bible_name(args.child_dataset):
        src, tgt = parse_bible_name(args.child_dataset)
        given = {"--source_lang": (args.source_lang, src), "--target_lang": (args.target_lang, tgt)}
        clash = [f"{flag} {mine}" for flag, (mine, its) in given.items() if mine and mine.lower() != its]
        if clash:  # silently reading the name's languages instead would train another pair than asked
            wanted = f"bible-{args.source_lang or src}-{args.target_lang or tgt}"
            raise ConfigError(
                f"--child_dataset {args.child_dataset} is {src} -> {tgt}, but {' and '.join(clash)} says "
                f"otherwise; pass --child_dataset {wanted}, or leave out --source_lang/--target_lang"
            )
        return src, tgt
    if args.source_lang and args.target_lang:
        check_pair(args.source_lang, args.target_lang)
    return args.source_lang or "src", args.target_lang or "tgt"


@dataclass
class ChildPair:
    """The child pair: its languages, its splits, the seeded training sample and the test pairs."""

    source_lang: str | None
    target_lang: str | None
    splits: DatasetDict
    train: Dataset
    test: Dataset

    @property
    def name(self) -> str:
        return f"{self.source_lang or 'src'}->{self.target_lang or 'tgt'}"


def load_child(args: TranslationArguments, seed: int) -> ChildPair:
    """--child_dataset in the languages `child_languages` names, its seeded sample of --child_train_size
    training pairs and its first --max_test_samples test pairs."""
    src, tgt = child_languages(args)
    splits = load_parallel(args.child_dataset, src, tgt, seed=seed)
    if args.child_train_size > len(splits["train"]):
        raise DataError(
            f"child_train_size={args.child_train_size} but {args.child_dataset} has {len(splits['train'])} "
            f"training pairs; pass --child_train_size {len(splits['train'])} or less"
        )
    train = subsample(splits["train"], args.child_train_size, seed, label_column=None)
    test = splits["test"]
    if args.max_test_samples and len(test) > args.max_test_samples:
        test = test.select(range(args.max_test_samples))
    return ChildPair(src, tgt, splits, train, test)


def filtered_features(ds, tokenizer, args: TranslationArguments, limits: tuple[int, int] | None = None):
    """Tokenised pairs, leaving out those longer than `limits` (default max_source_length /
    max_target_length) tokens (a cut-off verse would teach the model to drop the end of its translation)."""
    max_source, max_target = limits or (args.max_source_length, args.max_target_length)
    enc = tokenize_pairs(ds, tokenizer, 100_000, 100_000, prefix=args.source_prefix)
    kept = enc.filter(lambda r: len(r["input_ids"]) <= max_source and len(r["labels"]) <= max_target)
    if len(kept) == 0:
        raise DataError(
            f"no training pair fits {max_source} / {max_target} tokens (source / target); raise "
            + ("--parent_max_length" if limits else "--max_source_length / --max_target_length")
        )
    if len(kept) < len(enc):
        logger.info("%d of %d pairs fit the length limits", len(kept), len(enc))
    return kept
