"""`nlptransfer`: one command for the recipes, the shipped configs, prediction, reports and explanations.

    nlptransfer run sentiment --config recipes/sentiment/minilm_lora.yaml --max_steps 50
    nlptransfer list
    nlptransfer cp sentiment/minilm_lora my_lora.yaml
    nlptransfer predict --model outputs/sentiment-minilm-full --input reviews.csv --output preds.jsonl
    nlptransfer report outputs/full outputs/lora --output report.html
    nlptransfer explain --model outputs/sentiment-minilm-full --text "a wonderful, moving film"

Every subcommand has `--help` with examples. Bad input ends in one line naming the problem and the fix,
exit code 2 (`--debug` shows the traceback). Heavy libraries (torch, transformers) are imported only by
the subcommands that need them, so `list`, `cp` and `--help` answer at once.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import json
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

from nlptransfer.errors import ConfigError, DataError, ModelError, OutputDirError, run_cli

PROG = "nlptransfer"

STRATEGY_HELP = {
    "full": "fine-tune every weight + a new head",
    "frozen": "train only the new head (feature extraction; features cached on disk)",
    "lora": "LoRA adapters + head (peft); merged plain model at the top of the output dir",
    "ia3": "IA3 scaling vectors + head (peft); merged like lora",
    "prompt_tuning": "a soft prompt + head (peft); cannot merge, the output dir holds the adapter",
}

EXAMPLES = {
    "run": """examples:
  nlptransfer run sentiment
  nlptransfer run sentiment --config recipes/sentiment/minilm_lora.yaml --output_dir outputs/lora
  nlptransfer run text_classification --dataset my.csv --text_column body --label_column topic
  nlptransfer run sentiment --help        # every option of the recipe

Same as `python -m nlptransfer.recipes.<recipe> [flags]`; flags override the --config YAML.""",
    "list": """examples:
  nlptransfer list

Shows the recipes, the shipped YAML configs, the embedded datasets and models (and whether their
assets are in the cache) and the transfer strategies.""",
    "cp": """examples:
  nlptransfer cp sentiment/minilm_lora my_lora.yaml
  nlptransfer cp text_classification/minilm_pubmed_mesh.yaml configs/     # into a folder
  nlptransfer run sentiment --config my_lora.yaml

An existing destination file is never overwritten.""",
    "predict": """examples:
  nlptransfer predict --model outputs/sentiment-minilm-full --text "great film" --text "dull plot"
  nlptransfer predict --model outputs/lora --input reviews.csv --text_column review --output preds.csv
  nlptransfer predict --model outputs/pt --input texts.txt --output preds.jsonl --overwrite

Input: .csv/.tsv/.json/.jsonl/.parquet (the --text_column) or .txt (one text per line, blank lines
skipped). Output: one row per input, in input order, with the predicted label, its score and every
label's probability; .jsonl or .csv by extension; printed as jsonl when --output is not given.
Multi-label models: sigmoid probabilities, labels above the run's tuned thresholds (metrics.json) or 0.5.
Only safetensors weights load and no code shipped with a model runs, unless --allow_pickle true /
--trust_remote_code true (for a source you trust).""",
    "report": """examples:
  nlptransfer report outputs/sentiment-minilm-full
  nlptransfer report outputs/full outputs/lora outputs/frozen --output lora_vs_full.html

Writes a self-contained HTML file (figures inlined) and a markdown file beside it (figures in
<name>_files/): metrics, loss curves, confusion matrix, per-class scores, cross-domain results,
comparison figures and the config differences between runs.""",
    "explain": """examples:
  nlptransfer explain --model outputs/sentiment-minilm-full --text "not bad at all"
  nlptransfer explain --model outputs/tc --text "A randomised controlled trial of ..." --html why.html

Token attributions by layer integrated gradients (captum) on the input embeddings, for the predicted
label (or --target). Needs captum: pip install 'nlptransfer[explain]'. Loads like predict (safetensors
only, no model code) unless --allow_pickle true / --trust_remote_code true.""",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (ConfigError -> `error: ...`, exit 2 through run_cli)."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


# ----------------------------------------------------------------------------------------------
# recipes and shipped configs


def recipe_names() -> list[str]:
    """Modules of `nlptransfer.recipes` (each has `main(argv)` and `make_parser()`)."""
    import nlptransfer.recipes as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def shipped_configs() -> dict[str, Path]:
    """`<recipe>/<name>` -> YAML path."""
    # Imported when used: nlptransfer.config loads transformers, and `nlptransfer --help` should stay fast.
    from nlptransfer.config import configs_dir

    root = configs_dir()
    if root is None:
        return {}
    return {f"{p.parent.name}/{p.stem}": p for p in sorted(root.glob("*/*.yaml"))}


_NO_CONFIGS = (
    "no shipped configs found (the repository's recipes/ folder, installed as nlptransfer/configs/); "
    "reinstall nlptransfer or write your own YAML"
)


def cmd_run(argv: list[str]) -> object:
    if not argv or argv[0] in ("-h", "--help"):
        parser = _Parser(
            prog=f"{PROG} run",
            description="Run a recipe: nlptransfer run <recipe> [--config FILE] [flags]",
            epilog=f"recipes: {', '.join(recipe_names())}\n\n" + EXAMPLES["run"],
            formatter_class=_formatter,
        )
        parser.add_argument("recipe", choices=recipe_names())
        parser.add_argument("flags", nargs="*", help="the recipe's flags (nlptransfer run <recipe> --help)")
        if not argv:
            parser.error("run needs a recipe name, e.g. nlptransfer run sentiment")
        parser.print_help()
        return None
    name, rest = argv[0].replace("-", "_"), argv[1:]
    names = recipe_names()
    if name not in names:
        raise ConfigError(f"unknown recipe {argv[0]!r}; available recipes: {', '.join(names)}")
    module = importlib.import_module(f"nlptransfer.recipes.{name}")
    return module.main(rest)


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
        out.append(f"  {_NO_CONFIGS}")
    out.append("")
    out.append(f"Embedded datasets (--dataset NAME; assets cached in {assets.cache_dir()}):")
    for name, spec in EMBEDDED_DATASETS.items():
        key = "vader" if name.startswith("vader") else "pubmed"
        out.append(f"  {name:24s} {_asset_state(key):38s} {spec.description}")
    out.append(
        f"  {'pubmed-mesh-<K>':24s} {_asset_state('pubmed'):38s} the K most frequent MeSH major topics"
    )
    out.append("")
    out.append("Embedded models (--model_name_or_path NAME):")
    keys: dict[str, list[str]] = {}
    for alias, key in assets.embedded_models().items():
        keys.setdefault(key, []).append(alias)
    for key, aliases in keys.items():
        out.append(f"  {aliases[0]:40s} {_asset_state(key)}")
        if aliases[1:]:
            out.append(f"  {'':40s} aliases: {', '.join(aliases[1:])}")
    out.append("")
    out.append("Strategies (--strategy):")
    out += [f"  {name:14s} {text}" for name, text in STRATEGY_HELP.items()]
    out.append("")
    out.append("Licences are not recorded in the asset catalogue; see each package's page on PyPI.")
    print("\n".join(out))


def _asset_state(key: str) -> str:
    """`pkg==ver, cached 87 MB` or `pkg==ver, not cached`."""
    from nlptransfer import assets

    art = assets.get_artifact(key)
    if not assets.is_fetched(key):
        return f"{art.spec}, not cached"
    size = sum(p.stat().st_size for p in assets.asset_dir(key).rglob("*") if p.is_file())
    return f"{art.spec}, cached {size / 1e6:.0f} MB"


def cmd_cp(args: argparse.Namespace) -> None:
    from nlptransfer.runs import write_bytes_atomic

    configs = shipped_configs()
    if not configs:
        raise ConfigError(_NO_CONFIGS)
    key = args.config.removesuffix(".yaml").removesuffix(".yml").replace("recipes/", "", 1)
    if key not in configs:
        matches = [k for k in configs if k.split("/")[-1] == key]
        if len(matches) != 1:
            raise ConfigError(f"unknown config {args.config!r}; shipped configs: {', '.join(configs)}")
        key = matches[0]
    src = configs[key]
    dest = Path(args.dest)
    if dest.is_dir() or args.dest.endswith(("/", "\\")):
        dest = dest / src.name
    if dest.exists():
        raise OutputDirError(f"{dest} already exists; choose another destination (cp never overwrites)")
    if not dest.parent.is_dir():
        raise ConfigError(f"folder {dest.parent} does not exist; create it or choose another destination")
    write_bytes_atomic(dest, src.read_bytes(), overwrite=False)  # never replaces a file, even a new one
    print(f"copied {key} to {dest}; run it with: nlptransfer run {src.parent.name} --config {dest}")


# ----------------------------------------------------------------------------------------------
# loading a trained run directory


def load_run_model(model_dir: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False):
    """(model, tokenizer, config) of a run directory: a plain model, or an adapter-only directory.

    Loaded through `nlptransfer.modeling.load` (safetensors only unless `allow_pickle`, no model code run
    unless `trust_remote_code`). A top-level `adapter_config.json` (prompt tuning, or lora/ia3 with
    `--merge_adapters false`) is loaded on its base model, the head rebuilt from the labels in the
    `config.json` saved beside it.
    """
    from transformers import AutoModelForSequenceClassification

    from nlptransfer.modeling.load import load_config, load_model, load_peft_model, load_tokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise ModelError(f"--model {str(path)!r} is not a directory; pass a run's output directory")
    if not (path / "config.json").is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise ModelError(
            f"{path} has no config.json (found: {found}); pass the output directory of a finished run"
        )
    flags = {"allow_pickle": allow_pickle, "trust_remote_code": trust_remote_code}
    config = load_config(path, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    if (path / "adapter_config.json").is_file():
        base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path"
        )
        labels = {
            "num_labels": config.num_labels,
            "id2label": config.id2label,
            "label2id": config.label2id,
            "problem_type": config.problem_type,
        }
        base_config = load_config(base, trust_remote_code=trust_remote_code, **labels) if base else None
        model = load_peft_model(
            path, auto_class=AutoModelForSequenceClassification, config=base_config, **flags
        )
    else:
        model = load_model(AutoModelForSequenceClassification, path, **flags)
    return model, tokenizer, config


def _run_settings(path: Path) -> tuple[int, list[float] | None]:
    """(max_length, per-label thresholds or None) saved by the run."""
    import yaml

    max_length, thresholds = 128, None
    if (path / "config.yaml").is_file():
        saved = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        max_length = int(saved.get("max_length") or max_length)
    if (path / "metrics.json").is_file():
        saved = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        found = saved.get("thresholds")
        if isinstance(found, dict):
            thresholds = list(found.values())
        elif isinstance(found, list):
            thresholds = found
    return max_length, thresholds


# ----------------------------------------------------------------------------------------------
# predict


def read_texts(source: str, text_column: str) -> list[str]:
    """Texts of a .txt (one per non-blank line) or table file (the `text_column`), in file order."""
    from nlptransfer.data import EXTENSIONS, check_utf8

    path = Path(source)
    if not path.is_file():
        raise DataError(f"--input {source!r} is not a file; pass a .csv/.jsonl/.txt file")
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise DataError(
            f"--input {source}: unsupported extension {ext!r}; use one of {', '.join(EXTENSIONS)}"
        )
    if ext != ".parquet":
        check_utf8(path)
    if ext == ".txt":
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    import datasets

    kwargs = {"delimiter": "\t"} if ext == ".tsv" else {}
    try:
        ds = datasets.load_dataset(EXTENSIONS[ext], data_files={"train": str(path)}, split="train", **kwargs)
    except Exception as err:  # parser errors of pandas / pyarrow / json: one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"could not read {path} as {ext}: {first}; check that it is valid {ext}") from None
    if text_column not in ds.column_names:
        raise DataError(
            f"{path} has no column {text_column!r}; columns found: {', '.join(ds.column_names)}; "
            "pass the right one with --text_column"
        )
    return ["" if t is None else str(t) for t in ds[text_column]]


def predict_rows(model, tokenizer, config, texts: list[str], max_length: int, batch_size: int, thresholds):
    """One dict per text, in order: text, label (a list for multi-label), score, probabilities."""
    import numpy as np

    from nlptransfer.inference import decide, predict_logits, probabilities

    logits = predict_logits(model, tokenizer, texts, batch_size, max_length)
    names = [config.id2label[i] for i in range(config.num_labels)]
    rows = []
    multilabel = config.problem_type == "multi_label_classification"
    probs = probabilities(logits, multilabel)
    if multilabel:
        cut = thresholds if thresholds and len(thresholds) == len(names) else None
        for text, p, chosen in zip(texts, probs, decide(probs, True, cut), strict=True):
            rows.append(
                {
                    "text": text,
                    "label": [names[j] for j in np.flatnonzero(chosen)],
                    "probabilities": {n: round(float(pj), 6) for n, pj in zip(names, p, strict=True)},
                }
            )
        return rows
    for text, p, best in zip(texts, probs, decide(probs, False), strict=True):
        rows.append(
            {
                "text": text,
                "label": names[best],
                "score": round(float(p[best]), 6),
                "probabilities": {n: round(float(pj), 6) for n, pj in zip(names, p, strict=True)},
            }
        )
    return rows


def format_rows(rows: list[dict], fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    names = list(rows[0]["probabilities"]) if rows else []
    buf = io.StringIO()
    columns = (
        ["text", "label"] + (["score"] if rows and "score" in rows[0] else []) + [f"p_{n}" for n in names]
    )
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        label = ";".join(r["label"]) if isinstance(r["label"], list) else r["label"]
        flat = {"text": r["text"], "label": label, **{f"p_{n}": p for n, p in r["probabilities"].items()}}
        if "score" in r:
            flat["score"] = r["score"]
        writer.writerow(flat)
    return buf.getvalue()


def _check_output(path: str | None, overwrite: bool, suffixes: tuple[str, ...]) -> Path | None:
    if path is None:
        return None
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ConfigError(f"--output {path!r}: use a file name ending in {' or '.join(suffixes)}")
    if out.is_dir():
        raise OutputDirError(f"--output {path!r} is a directory; pass a file name")
    if out.exists() and not overwrite:
        raise OutputDirError(f"{path} already exists; choose another --output or pass --overwrite")
    if not out.parent.is_dir():
        raise OutputDirError(f"folder {out.parent} does not exist; create it or choose another --output")
    return out


def cmd_predict(args: argparse.Namespace) -> list[dict]:
    from nlptransfer.runs import write_text_atomic

    if bool(args.input) == bool(args.text):
        raise ConfigError('pass either --input FILE or --text "..." (one or more), not both and not neither')
    out = _check_output(args.output, args.overwrite, (".jsonl", ".csv"))
    texts = read_texts(args.input, args.text_column) if args.input else list(args.text)
    if not texts:
        raise DataError(f"{args.input} holds no texts; add rows or pass --text")
    model, tokenizer, config = load_run_model(
        args.model, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
    )
    max_length, thresholds = _run_settings(Path(args.model))
    rows = predict_rows(
        model, tokenizer, config, texts, args.max_length or max_length, args.batch_size, thresholds
    )
    if out is None:
        sys.stdout.write(format_rows(rows, "jsonl"))
    else:
        write_text_atomic(out, format_rows(rows, out.suffix.lower().lstrip(".")), overwrite=args.overwrite)
        print(f"wrote {len(rows)} predictions to {out}", file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------------------------
# report


def cmd_report(args: argparse.Namespace) -> Path:
    from nlptransfer.reporting.html import build_report

    out = _check_output(args.output, args.overwrite, (".html", ".htm"))
    md = out.with_suffix(".md")
    if md.exists() and not args.overwrite:
        raise OutputDirError(f"{md} already exists; choose another --output or pass --overwrite")
    html_path, md_path = build_report([Path(d) for d in args.dirs], out)
    print(f"wrote {html_path} and {md_path}")
    return html_path


# ----------------------------------------------------------------------------------------------
# explain


def explain_text(
    model, tokenizer, config, text: str, max_length: int, target: str | None = None, steps: int = 50
):
    """(tokens, scores, label, probability): layer integrated gradients on the input embeddings.

    Baseline: the same sequence with every token but [CLS]/[SEP] replaced by the pad token. Scores are
    summed over the embedding dimension and scaled so the largest |score| is 1.
    """
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError as err:
        raise ModelError(
            f"explain needs captum, which is not importable here ({err}); pip install 'nlptransfer[explain]'"
        ) from None
    import torch

    model.eval()
    multilabel = config.problem_type == "multi_label_classification"
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids, attention = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(
        tokenizer.get_special_tokens_mask(input_ids[0].tolist(), already_has_special_tokens=True),
        dtype=torch.bool,
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    baseline = torch.where(special, input_ids[0], torch.full_like(input_ids[0], pad)).unsqueeze(0)

    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    with torch.no_grad():
        logits = forward(input_ids, attention)[0]
    probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1)
    if target is None:
        index = int(probs.argmax())
    elif target in config.label2id:
        index = int(config.label2id[target])
    else:
        raise ConfigError(f"unknown --target {target!r}; labels: {', '.join(config.label2id)}")
    embeddings = model.get_input_embeddings()
    lig = LayerIntegratedGradients(forward, embeddings)
    attributions = lig.attribute(
        input_ids, baselines=baseline, additional_forward_args=(attention,), target=index, n_steps=steps
    )
    scores = attributions.sum(-1)[0].detach()
    scores = scores / scores.abs().max().clamp_min(1e-12)
    tokens = tokenizer.convert_ids_to_tokens(input_ids[0].tolist())
    return tokens, scores.tolist(), config.id2label[index], float(probs[index])


def explanation_html(tokens: list[str], scores: list[float], label: str, prob: float) -> str:
    """A self-contained HTML snippet: green pushes towards `label`, red away from it."""
    import html

    spans = []
    for tok, s in zip(tokens, scores, strict=True):
        color = f"rgba(0,160,0,{abs(s):.2f})" if s >= 0 else f"rgba(220,0,0,{abs(s):.2f})"
        spans.append(
            f'<span style="background:{color};padding:1px 2px;margin:1px;border-radius:3px" '
            f'title="{s:+.3f}">{html.escape(tok)}</span>'
        )
    return (
        '<div class="nlptransfer-explanation" style="font-family:sans-serif;line-height:2">'
        f"<p>prediction: <b>{html.escape(str(label))}</b> ({prob:.3f}); green supports it, red opposes it "
        "(layer integrated gradients on the input embeddings)</p>\n<p>" + " ".join(spans) + "</p></div>\n"
    )


def cmd_explain(args: argparse.Namespace) -> dict:
    try:
        import captum.attr  # noqa: F401
    except ImportError as err:
        raise ModelError(
            f"explain needs captum, which is not importable here ({err}); pip install 'nlptransfer[explain]'"
        ) from None
    out = _check_output(args.html, args.overwrite, (".html", ".htm"))
    model, tokenizer, config = load_run_model(
        args.model, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code
    )
    max_length, _ = _run_settings(Path(args.model))
    tokens, scores, label, prob = explain_text(
        model, tokenizer, config, args.text, max_length, args.target, args.steps
    )
    print(f"prediction: {label} ({prob:.3f})   attribution to it, scaled to [-1, 1]:")
    for tok, s in zip(tokens, scores, strict=True):
        bar = ("+" if s >= 0 else "-") * round(abs(s) * 20)
        print(f"  {tok:20s} {s:+.3f} {bar}")
    if out is not None:
        from nlptransfer.runs import write_text_atomic

        write_text_atomic(out, explanation_html(tokens, scores, label, prob), overwrite=args.overwrite)
        print(f"wrote {out}", file=sys.stderr)
    return {"tokens": tokens, "scores": scores, "label": label, "probability": prob}


# ----------------------------------------------------------------------------------------------
# parser and entry point


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _add_loading_flags(p: argparse.ArgumentParser) -> None:
    """--allow_pickle / --trust_remote_code, as the recipes spell them (`--trust_remote_code true`)."""
    flags = {
        "--allow_pickle": "load pickled (.bin) weights, which can run code when unpickled (default: false)",
        "--trust_remote_code": "run Python code shipped with the model (default: false)",
    }
    for flag, help_text in flags.items():
        p.add_argument(flag, type=_bool, nargs="?", const=True, default=False, metavar="BOOL", help=help_text)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0], epilog="examples:\n" + __doc__.split("\n\n")[1].replace("    ", "  "),
                     formatter_class=_formatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, epilog=EXAMPLES[name], formatter_class=_formatter
        )

    p = add("run", "run a recipe (python -m nlptransfer.recipes.<recipe>)")
    p.add_argument("recipe", help=f"one of: {', '.join(recipe_names())}")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="the recipe's flags")
    add("list", "list recipes, shipped configs, embedded datasets and models, strategies")
    p = add("cp", "copy a shipped YAML config to edit")
    p.add_argument("config", help="<recipe>/<config>, e.g. sentiment/minilm_lora")
    p.add_argument("dest", help="destination file or existing folder")

    p = add("predict", "predict labels for texts with a trained run directory")
    p.add_argument("--model", required=True, metavar="DIR", help="a run's output directory")
    p.add_argument("--input", metavar="FILE", help=".csv/.tsv/.json/.jsonl/.parquet/.txt file of texts")
    p.add_argument("--text", action="append", metavar="TEXT", help="a text to classify (repeatable)")
    p.add_argument("--text_column", default="text", help="column holding the text (default: text)")
    p.add_argument("--output", metavar="FILE", help=".jsonl or .csv (default: jsonl on stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--batch_size", type=int, default=64, help="texts per forward pass (default: 64)")
    p.add_argument("--max_length", type=int, default=None, help="default: the run's max_length")
    _add_loading_flags(p)

    p = add("report", "HTML + markdown report of one or more run directories")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run output directories")
    p.add_argument("--output", default="report.html", metavar="FILE", help="HTML file (default: report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")

    p = add("explain", "token attributions (integrated gradients) for one text")
    p.add_argument("--model", required=True, metavar="DIR", help="a run's output directory")
    p.add_argument("--text", required=True, help="the text to explain")
    p.add_argument("--target", default=None, help="label to explain (default: the predicted one)")
    p.add_argument("--steps", type=int, default=50, help="integration steps (default: 50)")
    p.add_argument("--html", metavar="FILE", help="also write a colored HTML snippet")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --html file")
    _add_loading_flags(p)
    return parser


COMMANDS = {
    "list": cmd_list,
    "cp": cmd_cp,
    "predict": cmd_predict,
    "report": cmd_report,
    "explain": cmd_explain,
}


def cli(argv: Sequence[str] | None = None) -> object:
    """The CLI body; raises NlpTransferError on user errors (`main` turns them into one line, exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":  # everything after the recipe name belongs to the recipe's parser
        return cmd_run(argv[1:])
    args = make_parser().parse_args(argv)
    return COMMANDS[args.command](args)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script `nlptransfer`."""
    run_cli(cli, argv)


__all__ = ["main", "cli", "make_parser", "load_run_model", "predict_rows"]

if __name__ == "__main__":
    main()
