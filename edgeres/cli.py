"""The `edgeres` command: a thin typer layer over the library. Only this module prints and exits."""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

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
    from edgeres.errors import UserInputError
    from edgeres.model import Arch

    try:
        return Arch(value.lower())
    except ValueError:
        choices = ", ".join(a.value for a in Arch)
        raise UserInputError(f"unknown --arch '{value}': choose one of {choices}") from None


@app.command()
@reports_errors
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.")] = Path("out/model.onnx"),
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = "resnet50",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset, 17..20.")] = 17,
) -> None:
    """Export the model to ONNX and check it against PyTorch in onnxruntime.

    Examples:\n
      edgeres export -o r50.onnx\n
      edgeres export --weights resnet50-11ad3fa6.pth -o r50.onnx\n
      edgeres export --weights product.pth --num-classes 51 -o product.onnx
    """
    from edgeres.pipeline import export_default

    result = export_default(output, parse_arch(arch), weights, num_classes, opset)
    p = result.parity
    console.print(f"[green]wrote[/] {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, opset {opset})")
    console.print(
        f"parity vs PyTorch on {p.samples} inputs: max abs {p.max_abs_error:.2e}, "
        f"max rel {p.max_rel_error:.2e}, min cosine {p.min_cosine:.7f}, top-1 agreement {p.top1_agreement:.0%}"
    )


@app.command()
@reports_errors
def info(artifact: Annotated[Path, typer.Argument(help="An artifact made by edgeres (.onnx, .engine).")]) -> None:
    """Show how an artifact was made (its sidecar) and, for ONNX, its inputs, outputs and opset.

    Example:\n
      edgeres info out/model.onnx
    """
    from edgeres.inspect import describe_artifact

    description = describe_artifact(artifact)
    console.print_json(json.dumps(description, default=str))


@app.command()
@reports_errors
def summary(
    arch: ArchOption = "resnet50",
    num_classes: ClassesOption = None,
    size: Annotated[int, typer.Option("--size", help="Input height and width.", min=32)] = 224,
) -> None:
    """Print the network stage by stage: output shape, parameters, multiply-accumulates.

    Example:\n
      edgeres summary --arch resnet50
    """
    from edgeres.model import build_model
    from edgeres.summary import summarize

    model = build_model(parse_arch(arch), num_classes or 1000)
    rows = summarize(model, size)
    table = Table(title=f"{model.arch.value}, {size}x{size} input, batch 1")
    for column in ("stage", "output (C, H, W)", "parameters", "MACs"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        shape = " x ".join(map(str, row.output_shape))
        table.add_row(row.name, shape, f"{row.parameters:,}", f"{row.macs / 1e6:,.1f} M")
    total_params, total_macs = sum(r.parameters for r in rows), sum(r.macs for r in rows)
    table.add_section()
    table.add_row("total", "", f"{total_params:,} ({total_params / 1e6:.2f} M)", f"{total_macs / 1e9:.2f} G")
    console.print(table)


from edgeres.cli_deploy import deploy_app  # noqa: E402  (it uses reports_errors and console from above)

app.add_typer(deploy_app, name="deploy")


def main() -> None:
    """Console entry point."""
    app(prog_name="edgeres")


if __name__ == "__main__":
    main()
