"""User-facing errors and the one-line CLI error handler.

Every error a user can cause by what they pass (a file, a column, a flag) is a subclass of
`NlpTransferError`. Its message is one line that names the problem and the fix. Recipes run their
`main` through `run_cli`, which prints that line and exits with code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

logger = logging.getLogger("nlptransfer")


class NlpTransferError(ValueError):
    """A problem with the user's input; the message says what is wrong and how to fix it."""


class ConfigError(NlpTransferError):
    """An unknown or invalid configuration key or value."""


class DataError(NlpTransferError):
    """A dataset that cannot be used: missing, empty, wrong columns, bad labels, bad encoding."""


class ModelError(NlpTransferError):
    """A model that cannot be loaded or adapted as asked."""


class AssetError(NlpTransferError):
    """An embedded asset that cannot be fetched or fails verification."""


class OutputDirError(NlpTransferError):
    """An output directory that would be overwritten."""


def _end_progress_bars() -> None:
    """Close progress bars an error interrupted, so the error line starts a line of its own."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return
    bars = list(getattr(tqdm, "_instances", ()))
    for bar in bars:
        bar.close()
    if bars:
        sys.stderr.write("\n")


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run a recipe's `main(argv)`; user errors become one line on stderr and exit code 2.

    `--debug` (removed from argv before parsing) re-raises so the full traceback is shown.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args = [a for a in args if a != "--debug"]
    try:
        main(args)
    except NlpTransferError as err:
        if debug:
            raise
        prog = sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "nlptransfer"
        _end_progress_bars()
        print(f"error: {err}", file=sys.stderr)
        logger.debug("%s failed", prog)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
