"""Translation-pair transfer (Zoph et al. 2016; Kocmi & Bojar 2018): train/cache the offline parent, tokenise and
filter pairs, fit a child, score BLEU/chrF, save a child. The machinery of `nlptransfer.recipes.translation_pair`.

- `config`: `TranslationArguments`, the child pair, offline-parent, vocabulary, generation and freezing options.
- `pairs`: the child pair (`load_child` -> `ChildPair`, `child_languages`) and the length filter (`filtered_features`).
- `parent`: `load_parent` (a pretrained checkpoint, or `train_parent`: the small offline Marian trained once and
  cached under `parent_key`, built by `prepare_parent`, trained by `parent_trainer`), `score_own_pair`.
- `child`: `extend_child_vocabulary`, `fit_child` (`TranslationTransferTrainer`), `ChildTest` (every system's
  translations and BLEU/chrF on the child's test pairs), `save_child` + `check_saved`, `card_notes`,
  `load_snippet`.

The seq2seq building blocks (tokenizer, Marian, translate, scores) are `nlptransfer.modeling.seq2seq`; the child's
trainer and its arguments `nlptransfer.trainers.translation`.
"""

from nlptransfer.translation.child import (
    ChildTest,
    card_notes,
    check_saved,
    extend_child_vocabulary,
    fit_child,
    load_snippet,
    save_child,
)
from nlptransfer.translation.config import RUNS, TranslationArguments
from nlptransfer.translation.pairs import ChildPair, child_languages, filtered_features, load_child
from nlptransfer.translation.parent import (
    PARENT_FORMAT,
    PARENT_MIN_BLEU,
    load_parent,
    parent_key,
    parent_languages,
    parent_trainer,
    prepare_parent,
    score_own_pair,
    train_parent,
)

__all__ = [
    "PARENT_FORMAT",
    "PARENT_MIN_BLEU",
    "RUNS",
    "ChildPair",
    "ChildTest",
    "TranslationArguments",
    "card_notes",
    "check_saved",
    "child_languages",
    "extend_child_vocabulary",
    "filtered_features",
    "fit_child",
    "load_child",
    "load_parent",
    "load_snippet",
    "parent_key",
    "parent_languages",
    "parent_trainer",
    "prepare_parent",
    "save_child",
    "score_own_pair",
    "train_parent",
]
