"""A JSON object read field by field with each value's type checked: the one way a typed record reads its file.

A record reader asks `Fields.get("random_weights", bool)` instead of `data.get("random_weights")`: a value of
another type (`"yes"`, `5`) is refused in one line naming the file and the field, never carried on as a
truthy string. Absent and null read as None; `require` refuses those too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar, cast

from edgeres.errors import UserInputError

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

_KIND_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}
_PLURAL_NAMES: dict[type, str] = {
    bool: "true/false values",
    int: "whole numbers",
    float: "numbers",
    str: "strings",
    list: "lists",
    dict: "objects",
}
_SHOWN_CHARS = 60


def shown(value: object) -> str:
    """A value as a message quotes it: its repr, cut short so the message stays one line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _typed(value: object, kind: type[T]) -> T | None:
    """`value` as `kind`, or None when it is not one (a bool is not a number; a whole number is a float)."""
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return cast(T, float(cast(float, value))) if ok else None
    if kind is int and isinstance(value, bool):
        return None
    if kind is dict:
        return cast(T, dict(value)) if isinstance(value, Mapping) else None
    return value if isinstance(value, kind) else None


@dataclass(frozen=True)
class Fields:
    """A JSON object and where it is (`model.onnx.json: options`), read with types checked."""

    data: Mapping[str, Any]
    where: str

    @classmethod
    def of(cls, value: object, where: str) -> Fields:
        """`value`, which must be a JSON object (a missing one reads as empty)."""
        if value is None:
            return cls({}, where)
        if not isinstance(value, Mapping):
            raise UserInputError(f"{where} is {shown(value)}, not an object")
        return cls(value, where)

    def refusal(self, key: str, value: object, expected: str) -> UserInputError:
        """The one-line error for `key` holding `value` where `expected` was wanted."""
        return UserInputError(f"{self.where}.{key} is {shown(value)}, not {expected}")

    def get(self, key: str, kind: type[T]) -> T | None:
        """The value of `key` as `kind`; None when absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        typed = _typed(value, kind)
        if typed is None:
            raise self.refusal(key, value, _KIND_NAMES.get(kind, kind.__name__))
        return typed

    def require(self, key: str, kind: type[T]) -> T:
        """The value of `key` as `kind`; refused when absent or null too."""
        value = self.get(key, kind)
        if value is None:
            raise UserInputError(f"{self.where} has no {key}")
        return value

    def section(self, key: str) -> Fields | None:
        """The object under `key`, read the same way; None when absent or null."""
        value = self.get(key, dict)
        return None if value is None else Fields(value, f"{self.where}.{key}")

    def items(self, key: str, kind: type[T]) -> tuple[T, ...] | None:
        """The list under `key`, every element a `kind`; None when absent or null."""
        values = self.get(key, list)
        if values is None:
            return None
        typed = [_typed(v, kind) for v in values]
        if any(t is None for t in typed):
            raise self.refusal(key, values, f"a list of {_PLURAL_NAMES.get(kind, kind.__name__)}")
        return tuple(cast(list[T], typed))

    def mapping(self, key: str, kind: type[T]) -> dict[str, T] | None:
        """The object under `key`, every value a `kind`; None when absent or null."""
        values = self.get(key, dict)
        if values is None:
            return None
        typed = {str(k): _typed(v, kind) for k, v in values.items()}
        if any(t is None for t in typed.values()):
            raise self.refusal(key, values, f"an object of {_PLURAL_NAMES.get(kind, kind.__name__)}")
        return cast(dict[str, T], typed)

    def choice(self, key: str, kind: type[E]) -> E:
        """The string under `key` as a member of the enum `kind`; refused naming the values it may take."""
        text = self.require(key, str)
        try:
            return kind(text)
        except ValueError:
            raise self.refusal(key, text, f"one of {', '.join(str(member.value) for member in kind)}") from None

    def shape(self, key: str) -> tuple[int | str, ...] | None:
        """A tensor shape under `key`: whole numbers, and names for axes set at run time ("batch")."""
        values = self.get(key, list)
        if values is None:
            return None
        if not all(isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in values):
            raise self.refusal(key, values, "a shape (whole numbers and axis names)")
        return tuple(values)


def json_number(value: float) -> float | str:
    """JSON has no infinity or NaN: a non-finite measure (an exact match's infinite SQNR) is written as text."""
    return value if math.isfinite(value) else str(value)

