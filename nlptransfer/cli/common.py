"""What every subcommand shares: the one-line-error parser, the help layout, output-file checks, flags.

Only the standard library, `nlptransfer.errors` and `nlptransfer.paths` at import time: `nlptransfer --help`
stays fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nlptransfer.errors import ConfigError, OutputDirError
from nlptransfer.paths import expand_user

PROG = "nlptransfer"


class CliParser(argparse.ArgumentParser):
    """argparse with one-line errors (ConfigError -> `error: ...`, exit 2 through run_cli)."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """Help text as written (the examples keep their layout), option help aligned at column 32."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


@dataclass(frozen=True)
class Subcommand:
    """One `nlptransfer <name>`: its one-line help, examples (the --help epilog), flags and body."""

    help: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], object]


def refuse_dangling_symlink(dest: Path, what: str) -> None:
    """One line if `dest` or a folder above it is a symlink to nothing: writing there would create a file
    wherever the link points, outside what the user named."""
    for path in (dest, *dest.parents):
        if path.is_symlink() and not path.exists():
            raise OutputDirError(
                f"{what} {path} is a symlink to the missing {os.readlink(path)!r}; nlptransfer does not write "
                "through a dangling symlink: remove it or choose another destination"
            )


def check_output(path: str | None, overwrite: bool, suffixes: tuple[str, ...]) -> Path | None:
    """The output file to write (None if not asked for), refused in one line before any work is done."""
    if path is None:
        return None
    out = Path(path)
    refuse_dangling_symlink(out, "--output")
    if out.suffix.lower() not in suffixes:
        raise ConfigError(f"--output {path!r}: use a file name ending in {' or '.join(suffixes)}")
    if out.is_dir():
        raise OutputDirError(f"--output {path!r} is a directory; pass a file name")
    if out.exists() and not overwrite:
        raise OutputDirError(f"{path} already exists; choose another --output or pass --overwrite")
    if not out.parent.is_dir():
        raise OutputDirError(f"folder {out.parent} does not exist; create it or choose another --output")
    return out


def user_path(text: str) -> str:
    """argparse `type` of a path flag: `~` and `~user` expanded, as the recipes' --output_dir is (the shell
    leaves `--output=~/x` and a quoted path alone, so `~` became a folder in the working directory); an
    unknown user is one line."""
    if not text.startswith("~"):
        return text
    try:
        return str(expand_user(text))
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_loading_flags(p: argparse.ArgumentParser) -> None:
    """--allow_pickle / --trust_remote_code, as the recipes spell them (`--trust_remote_code true`)."""
    flags = {
        "--allow_pickle": "load pickled (.bin) weights, which can run code when unpickled (default: false)",
        "--trust_remote_code": "run Python code shipped with the model (default: false)",
    }
    for flag, help_text in flags.items():
        p.add_argument(
            flag, type=parse_bool, nargs="?", const=True, default=False, metavar="BOOL", help=help_text
        )
