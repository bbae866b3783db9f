"""Options that several commands take, declared once, and how the CLI turns their text into library values.

Defaults are the library's constants; choices are parsed by `edgeres.choices.parse_choice` only. A raw
camera frame's format is always one value, FORMAT:WIDTHxHEIGHT (`yuyv:1920x1080`), parsed by
`FrameFormat.parse`. Groups of options that make one value (camera input, calibration, gate, engine) are in
edgeres.cli.args. Nothing here imports torch or onnxruntime (`edgeres --help` must not need them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.precision import Precision
from edgeres.choices import choice_values, parse_choice
from edgeres.errors import ClassCountMismatch, UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout
from edgeres.model.arch import DEFAULT_ARCH, DEFAULT_NUM_CLASSES, Arch

LAYOUTS = choice_values(YuvLayout)
FRAME_FORMAT_HELP = f"FORMAT:WIDTHxHEIGHT, FORMAT {LAYOUTS} (yuyv = YUY2; nv16 = Y plane + interleaved UV)"


# --- the model -----------------------------------------------------------------------------------

ARCH_DEFAULT = DEFAULT_ARCH.value

ArchOption = Annotated[str, typer.Option("--arch", help=f"ResNet depth: {choice_values(Arch)}.")]


WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Checkpoint (.pth state_dict or .safetensors) with torchvision parameter names. "
        "Default: torchvision's local cache if present, else random weights (with a warning).",
    ),
]


ClassesOption = Annotated[
    int | None,
    typer.Option(
        "--num-classes", help=f"Classes of the final layer (default {DEFAULT_NUM_CLASSES}, ImageNet-1k).", min=1
    ),
]


PrecisionOption = Annotated[
    str | None,
    typer.Option("--precision", help=f"{choice_values(Precision)}: which model of the build (default: int8 if built)."),
]


# --- camera frames (the --input group is edgeres.cli.args.frame_input) ----------------------------

FrameFormatOption = Annotated[
    str, typer.Option("--format", help=f"The raw frames: {FRAME_FORMAT_HELP}, e.g. yuyv:1920x1080 (even width).")
]


COLORSPACE_HELP = (
    f"YUV matrix of the frames: {choice_values(ColorSpace)} (UVC cameras without a colour descriptor "
    "send bt601, V4L2's SMPTE 170M default)."
)
ColorspaceOption = Annotated[str, typer.Option("--colorspace", help=COLORSPACE_HELP)]


RANGE_HELP = (
    f"Value range of the frames: {choice_values(ColorRange)} (limited: Y 16-235, C 16-240; full: 0-255). "
    "Cameras send limited."
)
RangeOption = Annotated[str, typer.Option("--range", help=RANGE_HELP)]


def parse_arch(value: str) -> Arch:
    return parse_choice(Arch, value, "--arch")


def parse_precision(value: str | None) -> Precision | None:
    return None if value is None else parse_choice(Precision, value, "--precision")


def parse_colorspace(value: str) -> ColorSpace:
    return parse_choice(ColorSpace, value, "colorspace")


def parse_range(value: str) -> ColorRange:
    return parse_choice(ColorRange, value, "range")


def parse_frame_format(text: str, option: str, default_size: tuple[int, int] | None = None) -> FrameFormat:
    """A frame-format option's FORMAT:WIDTHxHEIGHT (a bare FORMAT only when `default_size` is given)."""
    try:
        return FrameFormat.parse(text, default_size)
    except UserInputError as exc:
        raise UserInputError(f"{option}: {exc}") from None


@contextmanager
def names_the_class_count_option() -> Iterator[None]:
    """A checkpoint of another class count is refused with the option that fixes it."""
    try:
        yield
    except ClassCountMismatch as exc:
        raise ClassCountMismatch(exc.found, f"{exc} (--num-classes {exc.found})") from None
