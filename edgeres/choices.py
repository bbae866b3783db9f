"""Parsing a user's choice into an Enum member, with an error that lists the valid choices."""

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
        choices = "|".join(str(member.value) for member in enum_type)
        raise UserInputError(f"unknown {what} '{value}': choose one of {choices}") from None
