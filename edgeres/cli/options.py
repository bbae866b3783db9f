"""Options that several commands take, declared once, and how the CLI turns their text into library values.

Defaults are the library's constants; choices are parsed by `edgeres.choices.parse_choice` only. A raw
camera frame's format is always one value, FORMAT:WIDTHxHEIGHT (`yuyv:1920x1080`), parsed by
`FrameFormat.parse`. Nothing here imports torch or onnxruntime (`edgeres --help` must not need them).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from edgeres.artifacts.precision import Precision
from edgeres.choices import parse_choice
from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat, ResizeMode
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout
from edgeres.model.arch import Arch
from edgeres.runtime.labels import IMAGENET_CLASS_COUNT


def choices(enum_type: type[enum.Enum]) -> str:
    """'a|b|c': an Enum's values as help text lists them."""
    return "|".join(str(member.value) for member in enum_type)


LAYOUTS = choices(YuvLayout)
FRAME_FORMAT_HELP = f"FORMAT:WIDTHxHEIGHT, FORMAT {LAYOUTS} (yuyv = YUY2; nv16 = Y plane + interleaved UV)"


# --- the model -----------------------------------------------------------------------------------

ARCH_DEFAULT = Arch.RESNET50.value  # the library's default network (BuildOptions, export_default, build_model)

ArchOption = Annotated[str, typer.Option("--arch", help=f"ResNet depth: {choices(Arch)}.")]


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
        "--num-classes", help=f"Classes of the final layer (default {IMAGENET_CLASS_COUNT}, ImageNet-1k).", min=1
    ),
]


PrecisionOption = Annotated[
    str | None,
    typer.Option("--precision", help=f"{choices(Precision)}: which model of the build (default: int8 if built)."),
]


# --- camera frames -------------------------------------------------------------------------------

InputOption = Annotated[
    str | None,
    typer.Option(
        "--input",
        help=f"Take raw camera frames instead of RGB floats: {FRAME_FORMAT_HELP}, e.g. yuyv:1920x1080. Unpacking, "
        "colour conversion, resize and normalisation run inside the model.",
    ),
]


FrameFormatOption = Annotated[
    str, typer.Option("--format", help=f"The raw frames: {FRAME_FORMAT_HELP}, e.g. yuyv:1920x1080 (even width).")
]


ColorspaceOption = Annotated[
    str,
    typer.Option(
        "--colorspace",
        help=f"YUV matrix of the frames: {choices(ColorSpace)} (UVC cameras without a colour descriptor send bt601, "
        "V4L2's SMPTE 170M default).",
    ),
]


RangeOption = Annotated[
    str,
    typer.Option(
        "--range",
        help=f"Value range of the frames: {choices(ColorRange)} (limited: Y 16-235, C 16-240; full: 0-255). "
        "Cameras send limited.",
    ),
]


ResizeOption = Annotated[
    str,
    typer.Option(
        "--resize", help=f"With --input: how the frame becomes the network's square input, {choices(ResizeMode)}."
    ),
]


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


T = TypeVar("T")


def given_or(value: T | None, default: T) -> T:
    """An option's value, or the library's default when it was not given (a default too heavy to import)."""
    return default if value is None else value
