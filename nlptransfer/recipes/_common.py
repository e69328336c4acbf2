"""What every recipe does the same way: logging set-up and the command line it was run with.

Shared implementation stays in small functions here (no base-recipe class), so each recipe still reads top
to bottom: parse -> data -> model -> train -> evaluate -> save -> report.
"""

from __future__ import annotations

import logging
import re
import shlex
import sys
from collections.abc import Sequence

import datasets
from transformers.utils import logging as hf_logging

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(logging.Filter):
    """Strips terminal colour codes from a record (transformers' LOAD REPORT writes them to any stream)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if ANSI.search(message):
            record.msg, record.args = ANSI.sub("", message), None
        return True


def setup_logging(verbose: bool = False) -> None:
    """INFO lines with a time stamp (the handler is set once per process), then the library output.

    Quiet (the default): no progress bars of internal steps (datasets' map/flatten/cast, weight loading);
    the Trainer's training and prediction bars and every warning stay. `verbose` (`--verbose true`) brings
    the bars back. Either way a log stream that is not a terminal gets no colour codes.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if verbose:
        datasets.enable_progress_bars()
        hf_logging.enable_progress_bar()
    else:
        datasets.disable_progress_bars()
        hf_logging.disable_progress_bar()  # "Loading weights"; the Trainer's bars stay
    for name in ("", "transformers"):
        for handler in logging.getLogger(name).handlers:
            stream = getattr(handler, "stream", None)
            plain = stream is None or not hasattr(stream, "isatty") or not stream.isatty()
            if plain and not any(isinstance(f, PlainText) for f in handler.filters):
                handler.addFilter(PlainText())


def command_line(recipe: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, for model cards: `python -m nlptransfer.recipes.<recipe> ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    return f"python -m nlptransfer.recipes.{recipe} " + shlex.join(args)
