"""User-facing errors and the one-line CLI error handler.

Every error a user can cause by what they pass (a file, a column, a flag) is a subclass of
`NlpTransferError`. Its message is one line that names the problem and the fix. Recipes run their
`main` through `run_cli`, which prints that line and exits with code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence

logger = logging.getLogger("nlptransfer")


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), for one-line errors."""
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def typed_first_line(err: BaseException) -> str:
    """`Type: first line of the message` (`first_line`), or just the type name when the message is empty."""
    return f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__


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


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on its write end)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll (Windows), or a stdout without a descriptor
        return False


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so the flush at interpreter exit does not raise BrokenPipeError again
    (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (captured)
        pass


def run_cli(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> None:
    """Run a recipe's `main(argv)`; user errors become one line on stderr and exit code 2.

    `--debug` (removed from argv before parsing) re-raises so the full traceback is shown. Output cut short
    by a closed pipe (`| head`) ends quietly with exit code 1, as the Python docs recommend.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args = [a for a in args if a != "--debug"]
    try:
        main(args)
        sys.stdout.flush()  # rows still buffered meet a closed pipe here, not at interpreter exit
    except BrokenPipeError:  # `nlptransfer predict ... | head -1`: the reader stopped reading; exit quietly
        if not _stdout_closed():  # another pipe (a DataLoader worker's, a subprocess's): a real error
            raise
        _stdout_to_devnull()
        sys.exit(1)
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
