"""Training-set sizes for `--compare` learning curves: totals ("50,200,all") or sizes per class ("16/class"),
parsed and checked against the training split before anything is trained or written."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nlptransfer.data.splits import subsample_indices
from nlptransfer.errors import ConfigError, DataError


@dataclass(frozen=True)
class PerClass:
    """A train size in examples per class: "16/class" in --train_sizes, `k` examples of every class."""

    k: int

    def __str__(self) -> str:
        return f"{self.k}/class"


def parse_train_sizes(text: str | Sequence[str | int | None]) -> list[int | None | PerClass]:
    """Parse "50,200,1000,all" into [50, 200, 1000, None] (None = all), ascending, "all" last; or sizes per
    class, "8/class,16/class" into [PerClass(8), PerClass(16)] (a learning curve in examples per class).

    Also takes a list (e.g. from a YAML config). Junk, zero, negative and repeated sizes, and totals mixed
    with per-class sizes, raise ConfigError.
    """
    example = (
        "pass comma-separated positive integers and/or 'all' to --train_sizes, e.g. 50,200,1000,all, or sizes "
        "per class, e.g. 8/class,16/class,32/class"
    )
    parts = text.split(",") if isinstance(text, str) else list(text)
    if not [p for p in parts if str(p).strip()]:
        raise ConfigError(f"--train_sizes is empty; {example}")
    sizes: list[int | None | PerClass] = []
    for part in parts:
        token = "all" if part is None else str(part).strip()
        per_class = re.fullmatch(r"([+-]?\d+)\s*/\s*class", token)
        if token.lower() == "all":
            size: int | None | PerClass = None
        elif per_class:
            size = PerClass(int(per_class.group(1)))
            if size.k <= 0:
                raise ConfigError(f"--train_sizes: {token!r} is not a positive number per class; {example}")
        elif re.fullmatch(r"[+-]?\d+", token):
            size = int(token)
            if size <= 0:
                raise ConfigError(f"--train_sizes: {size} is not a positive number of examples; {example}")
        else:
            raise ConfigError(f"--train_sizes: {token!r} is not a whole number or 'all'; {example}")
        if size in sizes:
            raise ConfigError(f"--train_sizes lists {token!r} more than once; give each size once")
        sizes.append(size)
    if 0 < sum(isinstance(s, PerClass) for s in sizes) < len(sizes):
        raise ConfigError(
            f"--train_sizes mixes sizes per class with total sizes ({text}); use one kind, e.g. 8/class,16/class"
        )
    return sorted(sizes, key=lambda s: math.inf if s is None else s.k if isinstance(s, PerClass) else s)


def checked_train_sizes(text: str | Sequence[str | int | None], n_train: int, labels=None) -> list:
    """Parsed train sizes that fit the training split: a total above `n_train` (DataError) or a size per
    class above the smallest class of the single-label `labels` (None for multi-label) fails in one line."""
    sizes = parse_train_sizes(text)
    for k in [s.k for s in sizes if isinstance(s, PerClass)]:
        if labels is None:
            raise ConfigError("--train_sizes N/class needs single-label training data; pass total sizes")
        subsample_indices(n_train, k, 0, labels, per_class=True, option="--train_sizes N/class")
    too_big = [s for s in sizes if isinstance(s, int) and s > n_train]
    if too_big:
        raise DataError(
            f"train size {too_big[0]} is larger than the {n_train} training examples; use sizes up to "
            f"{n_train} or 'all' (--train_sizes)"
        )
    return sizes
