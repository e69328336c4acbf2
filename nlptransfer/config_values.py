"""YAML values checked exactly as their command-line flags are (`RecipeParser` in `nlptransfer.config_parser`).

argparse converts only *string* defaults, so a YAML number, bool, null or list set as a default would reach
the dataclass unchecked (`max_steps: true` trained one step, `learning_rate: null` crashed). Every YAML value
goes through the flag's own argparse type and choices instead; bool is not a number, a float with a fraction
is not an integer, NaN/inf are no setting's value, null only where the field is Optional.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from typing import Any

from transformers.hf_argparser import string_to_bool

from nlptransfer.errors import ConfigError


def yaml_value(key: str, value: Any, where: str, action: argparse.Action, accepts: set) -> Any:
    """The YAML value of `key` checked and converted exactly as `--key` (argparse `action`) would be;
    `accepts`: the field's types (`field_types`). A one-line `ConfigError` naming key, value and type."""
    listed = action.nargs in ("+", "*")
    if value is None:
        if type(None) in accepts or action.default is None:
            return None
        raise _yaml_type_error(key, value, where, action, "null is not allowed")
    # A field whose type admits a mapping or list (multitask `tasks: list | str | None`,
    # `lr_scheduler_kwargs: dict | str | None`) takes it as its dataclass parses the flag's JSON text; any
    # other text field does not (`dataset: {a: 1}` or `torch_compile_backend: []` crashed mid-run).
    if isinstance(value, dict):
        if dict in accepts:
            return value
        raise _yaml_type_error(key, value, where, action, "a mapping is not allowed")
    if isinstance(value, list):
        if listed:
            return [_convert_scalar(key, v, where, action) for v in value]
        if list in accepts:
            return value
        raise _yaml_type_error(key, value, where, action, "a list is not allowed")
    converted = _convert_scalar(key, value, where, action)
    return [converted] if listed else converted


def field_types(dataclass_types: Any, key: str) -> set:
    """The types (origins) that the dataclass field `key` accepts, Optional's NoneType included."""
    for dtype in dataclass_types:
        if key in {f.name for f in dataclasses.fields(dtype)}:
            try:
                hint = typing.get_type_hints(dtype)[key]
            except Exception:  # an unresolvable annotation: fall back to the action's own checks
                return set()
            return _type_origins(hint)
    return set()


def _type_origins(hint: Any) -> set:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set().union(*(_type_origins(h) for h in typing.get_args(hint)))
    origin = typing.get_origin(hint)
    return {origin if origin is not None else hint}


def finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    return number


finite_float.__name__ = "float"  # argparse names the type in "invalid float value: 'nan'"


def _expected(action: argparse.Action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(str(c) for c in action.choices)
    if action.type is string_to_bool:
        return "true or false"
    if action.type is int:
        return "an integer"
    if action.type in (float, finite_float):
        return "a finite number"
    return "text"


def _yaml_type_error(key: str, value: Any, where: str, action: argparse.Action, why: str = "") -> ConfigError:
    shown = "null" if value is None else repr(value)
    reason = f" ({why})" if why else ""
    many = "a list of " if action.nargs in ("+", "*") else ""
    return ConfigError(
        f"config key {key!r} in {where} has value {shown}{reason}; expected {many}{_expected(action)} "
        f"(fix it in the YAML or pass --{key})"
    )


def _convert_scalar(key: str, value: Any, where: str, action: argparse.Action) -> Any:
    """One YAML scalar through the flag's own argparse type and choices; strict about bool vs number."""
    convert = action.type or str
    if isinstance(value, dict | list):
        raise _yaml_type_error(key, value, where, action)
    if isinstance(value, bool) and convert is not string_to_bool:
        raise _yaml_type_error(key, value, where, action, "a yes/no value; quote it if you meant text")
    if isinstance(value, float) and convert is int:
        if not value.is_integer():
            raise _yaml_type_error(key, value, where, action, "has a fraction")
        value = int(value)
    try:
        converted = convert(str(value))
    except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
        raise _yaml_type_error(key, value, where, action) from err
    if isinstance(converted, float) and not math.isfinite(converted):
        raise _yaml_type_error(key, value, where, action)
    if action.choices is not None and converted not in action.choices:
        raise _yaml_type_error(key, value, where, action)
    return converted
