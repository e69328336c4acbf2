"""What every recipe does the same way: logging set-up and the command line it was run with.

Shared implementation stays in small functions here (no base-recipe class), so each recipe still reads top
to bottom: parse -> data -> model -> train -> evaluate -> save -> report.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence


def setup_logging() -> None:
    """INFO lines with a time stamp, once per process (a second call changes nothing)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def command_line(recipe: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, for model cards: `python -m nlptransfer.recipes.<recipe> ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    return f"python -m nlptransfer.recipes.{recipe} " + shlex.join(args)
