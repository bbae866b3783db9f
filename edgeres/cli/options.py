"""Options that several commands take, declared once, and how the CLI turns their text into library values.

Defaults are the library's constants; choices are parsed by `edgeres.choices.parse_choice` only. A raw
camera frame's format is always one value, FORMAT:WIDTHxHEIGHT (`yuyv:1920x1080`), parsed by
`FrameFormat.parse`. Nothing here imports torch or onnxruntime (`edgeres --help` must not need them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.precision import Precision
from edgeres.choices import choice_values, parse_choice
from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat, InputContract, ResizeMode
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout
from edgeres.model.arch import DEFAULT_ARCH, DEFAULT_NUM_CLASSES, Arch
from edgeres.quantize.histogram import CalibAlgo

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
        help=f"YUV matrix of the frames: {choice_values(ColorSpace)} (UVC cameras without a colour descriptor "
        "send bt601, V4L2's SMPTE 170M default).",
    ),
]


RangeOption = Annotated[
    str,
    typer.Option(
        "--range",
        help=f"Value range of the frames: {choice_values(ColorRange)} (limited: Y 16-235, C 16-240; full: 0-255). "
        "Cameras send limited.",
    ),
]


ResizeOption = Annotated[
    str,
    typer.Option(
        "--resize", help=f"With --input: how the frame becomes the network's square input, {choice_values(ResizeMode)}."
    ),
]


# --- calibration ----------------------------------------------------------------------------------

CalibOption = Annotated[
    Path | None,
    typer.Option(
        "--calib",
        help="Folder of images (recursive) or raw .yuv frames, or a path,label CSV. Default: calibration/.",
    ),
]


CalibFormatOption = Annotated[
    str | None,
    typer.Option(
        "--calib-format",
        help=f"--calib holds raw .yuv frames of this format: {FRAME_FORMAT_HELP}; a bare FORMAT takes the "
        "--input size.",
    ),
]


CalibAlgoOption = Annotated[str, typer.Option("--calib-algo", help=f"{choice_values(CalibAlgo)}.")]
CalibSizeOption = Annotated[int, typer.Option("--calib-size", help="Calibration samples.", min=1)]
CalibSeedOption = Annotated[int, typer.Option("--calib-seed", help="Seed of the shuffle and the held-out split.")]
KeepFloatOption = Annotated[
    str, typer.Option("--keep-float", help="Comma-separated layers kept out of INT8, e.g. conv1,fc,layer1.0.conv1.")
]
BiasCorrectionOption = Annotated[
    bool,
    typer.Option(
        "--bias-correction/--no-bias-correction",
        help="INT8: fold each layer's weight-rounding mean shift, measured on the calibration data, into its bias.",
    ),
]


def parse_layers(text: str) -> tuple[str, ...]:
    """`--keep-float conv1,fc` -> ('conv1', 'fc')."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def raw_calibration_format(calib_format: str | None, contract: InputContract | None) -> FrameFormat | None:
    """`--calib-format`: FORMAT:WIDTHxHEIGHT, or a bare FORMAT taking the size of `--input`."""
    if calib_format is None:
        return None
    size = (contract.width, contract.height) if contract is not None else None
    return parse_frame_format(calib_format, "--calib-format", size)


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
