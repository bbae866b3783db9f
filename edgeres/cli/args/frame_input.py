"""The camera-input group: --input and how its frames become the network input, as an InputContract (or None)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeres.choices import choice_values
from edgeres.cli.args.group import OptionGroup
from edgeres.cli.options import COLORSPACE_HELP, FRAME_FORMAT_HELP, RANGE_HELP
from edgeres.frames.contract import DEFAULT_RESIZE, InputContract, ResizeMode, parse_input
from edgeres.frames.images import NETWORK_SIZE
from edgeres.frames.yuv import DEFAULT_COLORSPACE, DEFAULT_RANGE

PANEL = "Camera input"

FrameInputOption = Annotated[
    str | None,
    typer.Option(
        "--input",
        help=f"Take raw camera frames instead of RGB floats: {FRAME_FORMAT_HELP}, e.g. yuyv:1920x1080. Unpacking, "
        "colour conversion, resize and normalisation run inside the model.",
        rich_help_panel=PANEL,
    ),
]
ColorspaceOption = Annotated[str, typer.Option("--colorspace", help=COLORSPACE_HELP, rich_help_panel=PANEL)]
RangeOption = Annotated[str, typer.Option("--range", help=RANGE_HELP, rich_help_panel=PANEL)]
ResizeOption = Annotated[
    str,
    typer.Option(
        "--resize",
        help=f"With --input: how the frame becomes the network's square input, {choice_values(ResizeMode)}.",
        rich_help_panel=PANEL,
    ),
]


def parse_frame_input(
    frame_input: FrameInputOption = None,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
    resize: ResizeOption = DEFAULT_RESIZE.value,
) -> InputContract | None:
    return parse_input(frame_input, colorspace, color_range, resize) if frame_input else None


def render_frame_input(contract: InputContract | None) -> list[str]:
    """A contract is spelled out whole: it says what the model takes."""
    if contract is None:
        return []
    if contract.size != NETWORK_SIZE:
        raise ValueError(f"input contract of size {contract.size}: --input is always {NETWORK_SIZE}x{NETWORK_SIZE}")
    return ["--input", str(contract.frame_format), "--colorspace", contract.colorspace.value,
            "--range", contract.color_range.value, "--resize", contract.resize.value]  # fmt: skip


FRAME_INPUT = OptionGroup(parse_frame_input, render_frame_input)
FrameInputArgs = Annotated[InputContract | None, FRAME_INPUT]
