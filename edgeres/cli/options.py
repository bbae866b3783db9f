"""TODO docstring (cli.options)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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
    from edgeres.model.resnet import Arch

    return parse_choice(Arch, value, "--arch")

