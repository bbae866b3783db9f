"""What every command shares: the two consoles, literal printing, and library errors as one line and exit code 2.

Text that comes from the user or the library (paths, names, messages) is printed literally: never read as rich
markup, never highlighted. Only the fixed prefixes written here are styled.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from edgeres.errors import EdgeresError

console = Console()


err_console = Console(stderr=True)


def say(text: object, style: str | None = None) -> None:
    """One line on stdout, literally (optionally in one style)."""
    console.print(Text(str(text), style=style or ""), highlight=False, soft_wrap=True)


def wrote(text: object) -> None:
    """'wrote <text>': an artifact written."""
    console.print(Text.assemble(("wrote", "green"), f" {text}"), highlight=False, soft_wrap=True)


def warn(text: object) -> None:
    """'warning: <text>' on stderr."""
    err_console.print(Text.assemble(("warning:", "bold yellow"), f" {text}"), highlight=False, soft_wrap=True)


def fail(text: object) -> None:
    """'error: <text>' on stderr, one line."""
    err_console.print(Text.assemble(("error:", "bold red"), f" {text}"), highlight=False, soft_wrap=True)


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn library errors into one red line on stderr and exit code 2; show warnings loudly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
            warn(message)

        previous = warnings.showwarning
        warnings.showwarning = show_warning
        try:
            return func(*args, **kwargs)
        except EdgeresError as exc:
            fail(exc)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print(Text.assemble(("interrupted", "bold red"), ": no partial artifact was left behind"))
            raise typer.Exit(130) from None
        finally:
            warnings.showwarning = previous

    return wrapper  # type: ignore[return-value]
