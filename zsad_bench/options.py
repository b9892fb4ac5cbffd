"""Detector options as data: each detector declares a frozen dataclass of its options.

A field is declared with :func:`option` (default, one-line help, allowed range or choices) and typed with
one of ``bool``, ``int``, ``float``, ``str``, ``tuple[int, ...]`` / ``tuple[float, ...]`` /
``tuple[str, ...]``, optionally ``| None``::

    @dataclass(frozen=True)
    class MyOptions(DetectorOptions):
        image_size: int = option(518, "square input side in pixels", min=1)
        sigma: float = option(4.0, "Gaussian smoothing of the map (0: none)", min=0)

:meth:`DetectorOptions.build` is the one validation path: Python keywords (``CLIP(image_size=64)``),
``-o key=value`` strings and a checkpoint's ``config.json`` all go through it, so a wrong type, a value out
of range, an unknown choice or an unknown key is one ``ZsadError`` line naming the option and what is
allowed. It sits at the bottom of the package (no torch, nothing above ``errors``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from zsad_bench.errors import ZsadError

__all__ = ["RESERVED", "DetectorOptions", "OptionInfo", "option", "settable_by_user"]

# Options a detector may declare but ``-o`` never sets, and what sets them: their own flag, or training.
RESERVED: Mapping[str, str] = types.MappingProxyType(
    {"backbone": "--backbone", "device": "--device", "trained_on": "training"}
)

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NONE = ("none", "null")

OptionsT = TypeVar("OptionsT", bound="DetectorOptions")


def option(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A dataclass field with its help line and allowed values.

    ``min`` and ``max`` are inclusive bounds, ``above`` an exclusive lower bound (``temperature > 0``);
    for a tuple option they apply to every element. ``choices`` lists the allowed values.
    """
    if isinstance(default, list):
        raise TypeError("declare a sequence option with a tuple default (the options are frozen)")
    limits = {"min": min, "max": max, "above": above, "choices": tuple(choices) if choices else None}
    return dataclasses.field(default=default, metadata={"help": help, **limits})


@dataclass(frozen=True)
class OptionInfo:
    """One option as ``zsad models info`` shows it; every field is display text."""

    name: str
    type: str
    default: str
    allowed: str
    help: str


def settable_by_user(key: str) -> None:
    """Refuse a reserved option from ``-o`` (one line saying which flag sets it instead)."""
    if key in RESERVED:
        how = "training records it" if RESERVED[key] == "training" else f"use {RESERVED[key]}"
        raise ZsadError(f"option '{key}' cannot be set with -o; {how}")


@dataclass(frozen=True)
class DetectorOptions:
    """Base of every detector's options (a detector without options keeps this empty one)."""

    @classmethod
    def build(
        cls: type[OptionsT],
        values: Mapping[str, Any] | None = None,
        *,
        base: OptionsT | None = None,
        owner: str = "",
    ) -> OptionsT:
        """Options from ``base`` (default: the declared defaults) with ``values`` replacing some of them.

        A value may be the option's type or a string as ``-o`` gives it (``"518"``, ``"6,12,18,24"``,
        ``"true"``). ``owner`` names what the options belong to in error messages (``model 'clip'``).
        """
        values = dict(values or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            listed = ", ".join(repr(u) for u in unknown)
            raise ZsadError(
                f"{owner or cls.__name__} has no option {listed}; options: {', '.join(names) or 'none'}"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = _type_hints(cls)
        checked = {key: _check(fields[key], hints[key], value, owner) for key, value in values.items()}
        if base is not None:
            return dataclasses.replace(base, **checked)
        return cls(**checked)

    @classmethod
    def describe(cls) -> list[OptionInfo]:
        """Every option with its type, default, allowed values and help line, in declaration order."""
        hints = _type_hints(cls)
        return [
            OptionInfo(
                name=f.name,
                type=_type_name(hints[f.name]),
                default=_show(f.default),
                allowed=_allowed_column(f),
                help=f.metadata.get("help", ""),
            )
            for f in dataclasses.fields(cls)
        ]

    def to_config(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists), in declaration order."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # resolved once per class: annotations are strings under ``from __future__ import annotations``
    return typing.get_type_hints(cls)


# -- checking one value -------------------------------------------------------------------------------
def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); ``X`` -> (X, False)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"option type {hint} is not supported (one type, optionally | None)")
        return rest[0], True
    return hint, False


def _check(field: dataclasses.Field, hint: Any, value: Any, owner: str) -> Any:
    kind, optional = _split_optional(hint)
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
        return None
    where = f"option {field.name}" + (f" of {owner}" if owner else "")
    element = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else None
    try:
        if element is None:
            converted = _convert(kind, value)
            _in_range(field, converted)
            return converted
        items = _as_items(value)
        converted_items = tuple(_convert(element, item) for item in items)
        if not converted_items:
            raise ValueError("empty")
        for item in converted_items:
            _in_range(field, item)
        return converted_items
    except (ValueError, TypeError):
        raise ZsadError(f"{where} must be {_expected(field, kind, optional)}, got {value!r}") from None


def _as_items(value: Any) -> list[Any]:
    """A tuple option from a sequence, a scalar or ``-o`` text (``6,12`` or ``[6, 12]``)."""
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]").removeprefix("(").removesuffix(")")
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _convert(kind: Any, value: Any) -> Any:
    """``value`` as ``kind`` (bool, int, float or str); raises ValueError/TypeError when it is not one."""
    text = value.strip() if isinstance(value, str) else None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(value)
    if kind is int:
        if isinstance(value, bool):
            raise TypeError(value)
        if isinstance(value, int):
            return int(value)
        if text is not None:
            return int(text)
        raise TypeError(value)
    if kind is float:
        if isinstance(value, bool):
            raise TypeError(value)
        number = (
            float(text) if text is not None else float(value) if isinstance(value, (int, float)) else None
        )
        if number is None or not math.isfinite(number):
            raise ValueError(value)
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError(value)
    raise TypeError(f"option type {kind} is not supported")


def _in_range(field: dataclasses.Field, value: Any) -> None:
    meta = field.metadata
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ValueError(value)
    if meta.get("min") is not None and value < meta["min"]:
        raise ValueError(value)
    if meta.get("max") is not None and value > meta["max"]:
        raise ValueError(value)
    if meta.get("above") is not None and value <= meta["above"]:
        raise ValueError(value)


# -- describing ---------------------------------------------------------------------------------------
_BOUNDS = (("above", ">"), ("min", ">="), ("max", "<="))
# (one, several) of each supported type, for the error messages
_TYPE_WORDS = {
    bool: ("true or false", "booleans"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}


def _expected(field: dataclasses.Field, kind: Any, optional: bool) -> str:
    """What the option accepts, e.g. ``an integer (>= 1)``, ``one of raw, normalized``."""
    many = typing.get_origin(kind) is tuple
    if field.metadata.get("choices") is not None:
        text = ("a comma-separated list, each " if many else "") + _allowed(field)
    else:
        one, several = _TYPE_WORDS[typing.get_args(kind)[0] if many else kind]
        text = f"a comma-separated list of {several}" if many else one
        allowed = _allowed(field)
        if allowed:
            text += f" ({'each ' if many else ''}{allowed})"
    return text + (" or none" if optional else "")


def _allowed(field: dataclasses.Field) -> str:
    """The values a field takes (choices or bounds), e.g. ``>= 0, <= 1``; empty when any value of its type."""
    meta = field.metadata
    if meta.get("choices") is not None:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    bounds = [f"{sign} {_show(meta[key])}" for key, sign in _BOUNDS if meta.get(key) is not None]
    return ", ".join(bounds)


def _allowed_column(field: dataclasses.Field) -> str:
    """``_allowed``, and for a reserved option what sets it instead of ``-o``."""
    if field.name not in RESERVED:
        return _allowed(field)
    setter = RESERVED[field.name]
    return ", ".join(filter(None, [_allowed(field), f"set by {setter}"]))


def _type_name(hint: Any) -> str:
    kind, optional = _split_optional(hint)
    if typing.get_origin(kind) is tuple:
        name = f"{typing.get_args(kind)[0].__name__} list"
    else:
        name = getattr(kind, "__name__", str(kind))
    return f"{name} | None" if optional else name


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else str(value)
