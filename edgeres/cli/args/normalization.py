"""The model-input group of a given ONNX: --mean, --std, --channel-order, as a PixelNormalization (or None)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeres.choices import choice_values
from edgeres.cli.args.group import OptionGroup
from edgeres.frames.normalization import ChannelOrder, PixelNormalization

PANEL = "Model input (a given --onnx)"
_SCALE = "on the 0..1 scale of pixel/255, in the model's channel order"

MeanOption = Annotated[
    str | None,
    typer.Option(
        "--mean",
        help=f"Per-channel mean the --onnx model subtracts, {_SCALE} (default ImageNet's 0.485,0.456,0.406).",
        rich_help_panel=PANEL,
    ),
]
StdOption = Annotated[
    str | None,
    typer.Option(
        "--std",
        help=f"Per-channel std the --onnx model divides by, {_SCALE} (default ImageNet's 0.229,0.224,0.225).",
        rich_help_panel=PANEL,
    ),
]
ChannelOrderOption = Annotated[
    str | None,
    typer.Option(
        "--channel-order",
        help=f"The colour order of the --onnx model's input planes, {choice_values(ChannelOrder)} (default rgb). "
        "Recorded with the models; calibration, evaluation and DeepStream's config use it.",
        rich_help_panel=PANEL,
    ),
]


def parse_normalization(
    mean: MeanOption = None, std: StdOption = None, channel_order: ChannelOrderOption = None
) -> PixelNormalization | None:
    return PixelNormalization.parse(mean, std, channel_order)


def _numbers(values: tuple[float, float, float]) -> str:
    return ",".join(repr(value) for value in values)


def render_normalization(normalization: PixelNormalization | None) -> list[str]:
    """Given whole, so the command says what the model takes."""
    if normalization is None:
        return []
    return ["--mean", _numbers(normalization.mean), "--std", _numbers(normalization.std),
            "--channel-order", normalization.order.value]  # fmt: skip


NORMALIZATION = OptionGroup(parse_normalization, render_normalization)
NormalizationArgs = Annotated[PixelNormalization | None, NORMALIZATION]
