"""What every `edgeres` sub-command shares: the typer app, consoles, error handling, common options."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from edgeres.errors import EdgeresError

app = typer.Typer(
    help="Put ResNet50 on NVIDIA edge hardware: PyTorch -> ONNX -> INT8/FP16 -> TensorRT engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
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


ArchOption = Annotated[str, typer.Option("--arch", help="resnet18|resnet34|resnet50|resnet101|resnet152.")]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Checkpoint (.pth state_dict or .safetensors) with torchvision parameter names. "
        "Default: torchvision's local cache if present, else random weights (with a warning).",
    ),
]
ClassesOption = Annotated[
    int | None, typer.Option("--num-classes", help="Classes of the final layer (default 1000).", min=1)
]


def parse_arch(value: str) -> Any:
    from edgeres.choices import parse_choice
    from edgeres.model import Arch

    return parse_choice(Arch, value, "--arch")
