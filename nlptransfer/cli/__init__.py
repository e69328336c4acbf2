"""`nlptransfer`: one command for the recipes, the shipped configs, prediction, evaluation, reports and explanations.

    nlptransfer run sentiment --config recipes/sentiment/minilm_lora.yaml --max_steps 50
    nlptransfer list
    nlptransfer cp sentiment/minilm_lora my_lora.yaml
    nlptransfer predict --model outputs/sentiment-minilm-full --input reviews.csv --output preds.jsonl
    nlptransfer evaluate --model outputs/sentiment-minilm-full --input labelled.csv --output_dir outputs/eval
    nlptransfer report outputs/full outputs/lora --output report.html
    nlptransfer explain --model outputs/sentiment-minilm-full --text "a wonderful, moving film"
    nlptransfer export outputs/sentiment-minilm-full --format onnx --quantize int8
    nlptransfer serve outputs/sentiment-minilm-full --port 8000

Every subcommand has `--help` with examples. Bad input ends in one line naming the problem and the fix,
exit code 2 (`--debug` shows the traceback). Heavy libraries (torch, transformers) are imported only by
the subcommands that need them, so `--help` answers at once.

One module per subcommand: `run` (cli/run.py), `list`/`cp`/`report` (cli/commands.py), `predict`
(cli/predict.py), `evaluate` (cli/evaluate.py), `explain` (cli/explain.py), `export` (cli/export.py),
`serve` (cli/serve.py); cli/common.py holds what they share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nlptransfer.cli import commands, evaluate, explain, export, predict, run, serve
from nlptransfer.cli.common import PROG, CliParser, Subcommand, help_formatter
from nlptransfer.errors import run_cli
from nlptransfer.predictor import load_run_model, predict_rows

# `run` is not here: everything after `run <recipe>` belongs to the recipe's own parser (see `cli`).
COMMANDS: dict[str, Subcommand] = {
    "list": commands.LIST,
    "cp": commands.CP,
    "predict": predict.PREDICT,
    "evaluate": evaluate.EVALUATE,
    "report": commands.REPORT,
    "explain": explain.EXPLAIN,
    "export": export.EXPORT,
    "serve": serve.SERVE,
}


def make_parser() -> argparse.ArgumentParser:
    summary, examples = __doc__.split("\n\n")[:2]
    parser = CliParser(
        prog=PROG,
        description=summary,
        epilog="examples:\n" + examples.replace("    ", "  "),
        formatter_class=help_formatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    sub.required = True

    def add(name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=help_text, description=help_text, epilog=examples, formatter_class=help_formatter
        )

    run.add_arguments(add("run", run.HELP, run.EXAMPLES))
    for name, command in COMMANDS.items():
        command.add_arguments(add(name, command.help, command.examples))
    return parser


def cli(argv: Sequence[str] | None = None) -> object:
    """The CLI body; raises NlpTransferError on user errors (`main` turns them into one line, exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":  # everything after the recipe name belongs to the recipe's parser
        return run.run_recipe(argv[1:])
    args = make_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script `nlptransfer`."""
    run_cli(cli, argv)


__all__ = ["main", "cli", "make_parser", "load_run_model", "predict_rows"]

if __name__ == "__main__":
    main()
