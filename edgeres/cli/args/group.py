"""An option group: flags declared once, turned into one value, and that value rendered back as arguments.

Polygraphy's `tools/args` groups are the model. A command names a group in a parameter's annotation
(`engine: EngineArgs`, i.e. `Annotated[EngineOptions, ENGINE]`); `takes_groups` puts the group's flags in that
parameter's place on the command line and hands the command the one parsed value. What renders a value back
sits next to what parses it, so a flag added to a group is spelled the same way in both directions.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OptionGroup(Generic[T]):
    """`parse`'s parameters are the group's typer options (one help panel); `render` is its inverse."""

    parse: Callable[..., T]
    render: Callable[[T], list[str]]


def _group_of(annotation: object) -> OptionGroup[Any] | None:
    return next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, OptionGroup)), None)


def takes_groups(command: Callable[..., None]) -> Callable[..., None]:
    """`command` as typer sees it: each group parameter replaced by the group's options, parsed before the call."""
    own = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[OptionGroup[Any], tuple[str, ...]]] = {}
    for parameter in own.parameters.values():
        group = _group_of(parameter.annotation)
        flags = (
            [parameter] if group is None else list(inspect.signature(group.parse, eval_str=True).parameters.values())
        )
        if group is not None:
            groups[parameter.name] = group, tuple(flag.name for flag in flags)
        parameters += [flag.replace(kind=inspect.Parameter.KEYWORD_ONLY) for flag in flags]
    names = [parameter.name for parameter in parameters]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: a parameter name is declared twice in {names}")

    @functools.wraps(command)
    def parsed(**values: Any) -> None:
        for name, (group, flags) in groups.items():
            values[name] = group.parse(**{flag: values.pop(flag) for flag in flags})
        command(**values)

    parsed.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    parsed.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": own.return_annotation}
    return parsed


def _text(value: object) -> str:
    return str(value.value) if isinstance(value, enum.Enum) else str(value)


def option(flag: str, value: object, default: object = None) -> list[str]:
    """`[flag, value]`, or nothing when `value` is the default."""
    return [] if value == default else [flag, _text(value)]


def switch(flag: str, on: bool) -> list[str]:
    return [flag] if on else []
