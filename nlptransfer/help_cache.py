"""A recipe's `--help` without importing torch: the text is cached the first time it is printed.

Building a recipe's parser imports transformers' `TrainingArguments` (torch, and peft through it: seconds on a
small CPU). The text it prints depends only on the package's source, its shipped YAMLs, the installed
transformers, the Python version and the terminal width, so `RecipeParser` stores it under a key of exactly
those (`store_help`), and a later `--help` / `--help_all` prints it before anything heavy is imported:
`python -m nlptransfer.recipes.<name>` through `nlptransfer/recipes/__init__.py` (`answer_module_help`),
`nlptransfer run <name>` through cli/run.py (`answer_help`). Only the bare request is served from the cache
(`--config FILE --help` shows that file's values, so it takes the slow path).

Standard library only, and nothing heavy below it: this module runs before the recipe is imported.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

REQUESTS = {("-h",): "help", ("--help",): "help", ("--help_all",): "help_all"}
PACKAGE = Path(__file__).resolve().parent


def help_request(argv: Sequence[str]) -> str | None:
    """ "help" or "help_all" when `argv` is nothing but that request, else None."""
    return REQUESTS.get(tuple(argv))


def _key(recipe: str, kind: str) -> str:
    """What the help text depends on: the package's .py and .yaml files (size, mtime), the checkout's
    recipes/ folder when there is one, transformers' version, Python's, the terminal width."""
    digest = hashlib.sha256()
    roots = [PACKAGE, PACKAGE.parent / "recipes"]
    for root in roots:
        for path in sorted(p for pattern in ("*.py", "*.yaml") for p in root.rglob(pattern)):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    try:
        transformers = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        transformers = "?"
    width = shutil.get_terminal_size().columns  # argparse wraps the help to it
    digest.update(f"{transformers}|{platform.python_version()}|{width}|{recipe}|{kind}".encode())
    return digest.hexdigest()[:24]


def _path(recipe: str, kind: str) -> Path:
    # Imported here: nlptransfer.assets imports the CLI, whose `run` imports this module.
    from nlptransfer.assets.registry import cache_dir

    return cache_dir() / "help" / f"{recipe}-{kind}-{_key(recipe, kind)}.txt"


def store_help(recipe: str, kind: str, text: str) -> None:
    """Keep the printed help for the next request; a cache that cannot be written is no error."""
    try:
        path = _path(recipe, kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".help-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    except (OSError, ValueError):  # ValueError: a NLPTRANSFER_CACHE that cannot be expanded (ConfigError)
        pass


def answer_help(recipe: str, argv: Sequence[str]) -> None:
    """Print the cached help and exit 0 (as argparse's --help does) if `argv` asks only for it and it is
    cached; otherwise return, and the recipe's parser answers (and caches)."""
    kind = help_request(argv)
    if kind is None:
        return
    try:
        text = _path(recipe, kind).read_text(encoding="utf-8")
    except (OSError, ValueError):  # UnicodeDecodeError, or a NLPTRANSFER_CACHE that cannot be expanded
        return
    sys.stdout.write(text)
    sys.exit(0)


def answer_module_help() -> None:
    """`python -m nlptransfer.recipes.<name> --help`: answered from the cache while Python is still locating
    the module (its parent package is imported first, with sys.argv[0] == "-m"), before the module's own
    imports run."""
    if not sys.argv or sys.argv[0] != "-m":
        return
    original = list(getattr(sys, "orig_argv", []))
    if "-m" not in original:
        return
    module = original[original.index("-m") + 1] if original.index("-m") + 1 < len(original) else ""
    prefix = f"{__package__}.recipes."
    if module.startswith(prefix) and "." not in module[len(prefix) :]:
        answer_help(module[len(prefix) :], sys.argv[1:])
