"""Checking values a user chooses: an Enum member by its value (the error lists the choices), a fraction."""

from __future__ import annotations

import enum
from typing import TypeVar

from edgeres.errors import UserInputError

E = TypeVar("E", bound=enum.Enum)


def parse_choice(enum_type: type[E], value: str, what: str) -> E:
    """Enum member from its value, case-insensitive; UserInputError listing the choices otherwise."""
    try:
        return enum_type(value.strip().lower())
    except ValueError:
        raise UserInputError(f"unknown {what} '{value}': choose one of {choice_values(enum_type)}") from None


def choice_values(enum_type: type[enum.Enum]) -> str:
    """The values of an Enum as a user writes them, e.g. 'max|percentile|entropy|mse'."""
    return "|".join(str(member.value) for member in enum_type)


def require_fraction(value: float | None, what: str) -> None:
    """UserInputError unless `value` is None or within 0..1 (a probability, a share)."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise UserInputError(f"{what} {value}: must be a fraction in 0..1")
