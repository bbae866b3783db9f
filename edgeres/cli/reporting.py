"""What every command shares: the two consoles, and library errors as one literal line and exit code 2."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from edgeres.errors import EdgeresError

console = Console()


err_console = Console(stderr=True)


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn library errors into one red line on stderr and exit code 2; show warnings loudly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
            err_console.print(f"[bold yellow]warning:[/] {message}")

        previous = warnings.showwarning
        warnings.showwarning = show_warning
        try:
            return func(*args, **kwargs)
        except EdgeresError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]: no partial artifact was left behind")
            raise typer.Exit(130) from None
        finally:
            warnings.showwarning = previous

    return wrapper  # type: ignore[return-value]

