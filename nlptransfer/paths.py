"""`expand_user`: `Path.expanduser` whose failure is one ConfigError line, not a traceback.

Python raises a bare RuntimeError for `~name/...` when this system has no user `name` (and for `~` when no
home directory can be found). Every path a user passes that may start with `~` is expanded here.
"""

from __future__ import annotations

import os
from pathlib import Path

from nlptransfer.errors import ConfigError

_FIX = "give an absolute path (or a path under your own ~)"


def expand_user(path: str | os.PathLike[str], *, what: str | None = None, fix: str | None = None) -> Path:
    """`Path(path).expanduser()`; a `~user` that does not exist is a ConfigError naming it.

    `what` opens the message (e.g. `NLPTRANSFER_CACHE='~x/c'`); `fix` replaces the default advice.
    """
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "~name/..." of a user this system does not have
        first = Path(path).parts[0]
        reason = "no home directory found" if first == "~" else "no such user"
        prefix = f"{what}: " if what else ""
        raise ConfigError(f"{prefix}cannot expand {first}: {reason}; {fix or _FIX}") from None
