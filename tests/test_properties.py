"""Property tests (hypothesis): any YAML config and any command line of any recipe either runs or ends in
exactly one `error: ...` line with exit code 2 - never a traceback, never a hang.

The fields are derived from each recipe's own parser (`make_parser().dataclass_types`), so a field added to
a recipe's dataclasses is fuzzed without touching this file. Values are of random types (null, bools, ints
incl. 0 / negative / huge, floats incl. nan / inf, strings incl. empty / unicode / paths, lists, nested
mappings) in YAML, random strings and numbers as flags.

Two properties per recipe:
- `test_any_settings_parse_or_fail_in_one_line`: EVERY field (the budget fields too) fuzzed through YAML and
  flags; stops right after parsing + validation (`make_parser().parse`, run through `run_cli`), so no
  training happens.
- `test_any_settings_run_or_fail_in_one_line`: end to end. Every field fuzzed, then the recipe's BUDGET flags
  are appended (later flags win): the tiny model and data, a fresh output_dir, one step, no reporting, CPU,
  and the recipe's cost knobs (number of seeds, comparisons, beams...). So end to end, every field except
  those in BUDGET[recipe] is fuzzed; the budget fields are fuzzed by the first property only. Whatever parses
  must run to the end (run.json "complete").
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import json
import os
import signal
import types
import typing
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tiny import sentiment_rows, tiny_marian_dir, tiny_model_dir, toy_pairs, write_csv, write_tsv

from nlptransfer.errors import run_cli

RECIPES = [
    "sentiment",
    "text_classification",
    "translation_pair",
    "domain_adaptation",
    "domain_pretraining",
    "multitask",
    "distill",
]
PARSE_EXAMPLES = 50  # per recipe; parsing only, milliseconds each
RUN_EXAMPLES = 12  # per recipe; most are rejected while parsing, the others train one step
SETTINGS = dict(
    deadline=None,
    derandomize=True,  # the same examples on every run (CI stability); no example database
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    report_multiple_bugs=False,
)
if os.environ.get("NLPT_PROPS_NO_SHRINK"):  # exploring: report the first failure as found, unshrunk
    SETTINGS["phases"] = [Phase.explicit, Phase.generate]


def recipe(name: str):
    return importlib.import_module(f"nlptransfer.recipes.{name}")


def recipe_fields(name: str) -> dict[str, typing.Any]:
    """{field name: type hint} over the recipe parser's dataclasses (the fields a YAML key or flag sets)."""
    out = {}
    for dtype in recipe(name).make_parser().dataclass_types:
        hints = typing.get_type_hints(dtype)
        out.update({f.name: hints[f.name] for f in dataclasses.fields(dtype) if f.init})
    return out


def field_choices(name: str) -> dict[str, list]:
    out = {}
    for dtype in recipe(name).make_parser().dataclass_types:
        for f in dataclasses.fields(dtype):
            if f.init and f.metadata.get("choices"):
                out[f.name] = list(f.metadata["choices"])
    return out


# ------------------------------------------------------------------------------------- value strategies

HUGE = st.sampled_from([2**31, 2**63, 10**30, -(2**63)])
INTS = st.one_of(st.sampled_from([0, -1, 1, 2]), st.integers(-5, 100), HUGE)
FLOATS = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 1e-3, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXT = st.one_of(
    st.sampled_from(["", " ", "none", "null", "true", "1", "1.5", "nan", "/", "..", "../x", "~", "a/b.yaml"]),
    st.sampled_from(["ünï cødé", "名前", "x" * 300, "--flag", "-1", "{}", "[1, 2]", "a: b", "\t"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
)
SCALAR = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
ANY = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _origins(hint) -> list:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return [o for h in typing.get_args(hint) for o in _origins(h)]
    return [hint]


def plausible(hint, choices: list | None):
    """Values of the field's own type (so that many examples get past parsing)."""
    if choices:
        return st.sampled_from(choices)
    options = []
    for h in _origins(hint):
        origin = typing.get_origin(h)
        if h is type(None):
            options.append(st.none())
        elif h is bool:
            options.append(st.booleans())
        elif h is int:
            options.append(st.integers(-2, 40))
        elif h is float:
            options.append(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, -0.5, 1e-4]))
        elif isinstance(h, type) and issubclass(h, enum.Enum):
            options.append(st.sampled_from([m.value for m in h]))
        elif origin is list:
            (item,) = typing.get_args(h) or (str,)
            options.append(st.lists(plausible(item, None), max_size=2))
        elif origin is dict or h is dict:
            options.append(st.dictionaries(st.text(max_size=4), SCALAR, max_size=2))
        else:
            options.append(TEXT)
    return st.one_of(options) if options else ANY


def setting(fields: dict, choices: dict):
    """(field name, value): a random field with a value of its own type or of any type."""
    return st.sampled_from(sorted(fields)).flatmap(
        lambda key: st.tuples(
            st.just(key),
            st.one_of(plausible(fields[key], choices.get(key)), plausible(fields[key], None), ANY),
        )
    )


def flag_tokens(key: str, value) -> list[str]:
    """How a user would type the value on the command line (a list: several tokens)."""
    if isinstance(value, list):
        return [f"--{key}", *(_flag_text(v) for v in value)]
    return [f"--{key}", _flag_text(value)]


def _flag_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def inputs(name: str, noise: bool = False):
    """(YAML mapping, flag tokens) over the recipe's fields; with `noise`, sometimes a raw random token."""
    fields, choices = recipe_fields(name), field_choices(name)
    yaml_part = st.lists(setting(fields, choices), max_size=4).map(dict)
    # `--debug` is run_cli's switch to show the traceback (TrainingArguments.debug is set in YAML only).
    flag_fields = {k: v for k, v in fields.items() if k != "debug"}
    flags = st.lists(setting(flag_fields, choices), max_size=4).map(
        lambda pairs: [t for k, v in pairs for t in flag_tokens(k, v)]
    )
    raw = st.one_of(TEXT, st.sampled_from(["--config", "--config=", "--help-me", "-x", "--"]))
    extra = st.lists(raw, max_size=1 if noise else 0)
    return st.tuples(yaml_part, st.tuples(flags, extra).map(lambda p: p[0] + p[1]))


# ----------------------------------------------------------------------------------------- the checks


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    def hang(signum, frame):
        raise Hang(f"no outcome after {seconds}s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(main, argv: list[str], seconds: int = 90) -> tuple[int, str]:
    """(exit code, stderr) of `run_cli(main, argv)`: 0 when it returned. Any other exception than
    SystemExit propagates (a traceback for the user), as does a hang."""
    err = io.StringIO()
    with time_limit(seconds), redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            run_cli(main, argv)
        except SystemExit as exit_info:
            return exit_info.code, err.getvalue()
    return 0, err.getvalue()


def assert_one_error_line(code, stderr: str, argv) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, f"exit {code} for {argv}"
    assert lines and lines[-1].startswith("error: "), f"{argv}: {stderr[-2000:]}"
    assert sum(line.startswith("error:") for line in lines) == 1, stderr
    assert "Traceback" not in stderr, stderr


def write_config(tmp: Path, mapping: dict) -> list[str]:
    if not mapping:
        return []
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return ["--config", str(path)]


# ----------------------------------------------------------------------------------- tiny world, budget


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("world")
    csv = write_csv(root / "reviews.csv", sentiment_rows(60))
    two = write_csv(root / "binary.csv", sentiment_rows(40, seed=1, neutral=False))
    other = write_csv(root / "other.csv", sentiment_rows(60, seed=3))  # a target domain: same labels
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(r["review"] for r in sentiment_rows(60, seed=2)) + "\n", encoding="utf-8")
    tasks = [
        {"name": "three", "dataset": str(csv), "text_column": "review", "label_column": "sentiment"},
        {"name": "two", "dataset": str(two), "text_column": "review", "label_column": "sentiment"},
    ]
    return {
        "model": str(tiny_model_dir(root)),
        "marian": str(tiny_marian_dir(root)),
        "csv": str(csv),
        "binary": str(two),
        "other": str(other),
        "corpus": str(corpus),
        "pairs": str(write_tsv(root / "pairs.tsv", toy_pairs(60, "reva", 2))),
        "tasks": json.dumps(tasks),
    }


COMMON = "--max_steps 1 --report_to none --use_cpu true --torch_compile false --push_to_hub false"
CLASSIFY = "--text_column review --label_column sentiment --max_train_samples 24 --max_eval_samples 12"
BUDGET = {  # appended after the fuzzed flags (later flags win); {name} from the `world` fixture
    "sentiment": f"--model_name_or_path {{model}} --dataset {{csv}} --eval_datasets none {CLASSIFY} "
    "--max_length 32 --compare false",
    "text_classification": f"--model_name_or_path {{model}} --dataset {{csv}} {CLASSIFY} --max_length 32 "
    "--compare false",
    "translation_pair": "--parent_model {marian} --child_dataset {pairs} --child_train_size 24 "
    "--max_test_samples 4 --num_beams 1 --max_new_tokens 8 --max_source_length 32 --max_target_length 32",
    "domain_adaptation": "--model_name_or_path {model} --source {csv} --target {other} --matrix false "
    "--seeds 1 --text_column review --label_column sentiment --target_labelled_samples 10 "
    "--distance_samples 20 --max_train_samples 24 --max_eval_samples 12 --max_length 32",
    "domain_pretraining": "--model_name_or_path {model} --corpus {corpus} --max_length 32 "
    "--max_train_samples 24 --max_eval_samples 12 --head_warmup_steps 2",
    "multitask": "--model_name_or_path {model} --tasks {tasks} --max_length 32 --compare_single_task false "
    "--seeds 1 --max_train_samples 24 --max_eval_samples 12",
    "distill": f"--model_name_or_path {{model}} --dataset {{csv}} {CLASSIFY} --max_length 32 "
    "--teacher_epochs 1 --student_layers 1 --compare_student_alone false",
}


def budget(name: str, world: dict, out: Path) -> list[str]:
    tokens = []
    for token in f"{COMMON} {BUDGET[name]}".split():
        tokens.append(world[token[1:-1]] if token.startswith("{") else token)
    return [*tokens, "--output_dir", str(out)]


# -------------------------------------------------------------------------------------------- tests


def _parse_only(name: str):
    def main(argv):
        recipe(name).make_parser().parse(argv)

    return main


@pytest.mark.parametrize("name", RECIPES)
def test_budget_flags_are_fields_of_the_recipe(name, world, tmp_path):
    """The budget flags themselves parse (a renamed field would otherwise make every run example fail)."""
    recipe(name).make_parser().parse(budget(name, world, tmp_path / "out"))


@pytest.mark.parametrize("name", RECIPES)
def test_any_settings_parse_or_fail_in_one_line(name, tmp_path_factory):
    """Every field (budget fields included) fuzzed; stops after parsing + validation."""

    @settings(max_examples=PARSE_EXAMPLES, **SETTINGS)
    @given(inputs(name, noise=True))
    def check(drawn):
        mapping, flags = drawn
        tmp = tmp_path_factory.mktemp("parse")
        argv = [*write_config(tmp, mapping), *flags, "--output_dir", str(tmp / "out")]
        code, stderr = outcome(_parse_only(name), argv, seconds=30)
        if code != 0:
            assert_one_error_line(code, stderr, argv)

    check()


@pytest.mark.parametrize("name", RECIPES)
def test_any_settings_run_or_fail_in_one_line(name, world, tmp_path_factory):
    """End to end: every field fuzzed, then BUDGET[name] appended; a run that parses must complete."""

    outcomes = []

    @settings(max_examples=RUN_EXAMPLES, **SETTINGS)
    @given(inputs(name))
    def check(drawn):
        mapping, flags = drawn
        tmp = tmp_path_factory.mktemp("run")
        out = tmp / "out"
        argv = [*write_config(tmp, mapping), *flags, *budget(name, world, out)]
        code, stderr = outcome(recipe(name).main, argv)
        outcomes.append(code)
        if code == 0:
            run = json.loads((out / "run.json").read_text())
            assert run["status"] == "complete", (argv, run)
        else:
            assert_one_error_line(code, stderr, argv)

    check()
    print(f"{name}: {outcomes.count(0)} of {len(outcomes)} examples ran end to end")
    assert 0 in outcomes, "no example got past parsing: the property checked no run"
