"""TODO docstring (frames.contract)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from edgeres.choices import parse_choice
from edgeres.errors import UserInputError
from edgeres.frames.images import NETWORK_SIZE
from edgeres.frames.yuv import (
    DEFAULT_COLORSPACE,
    DEFAULT_RANGE,
    ColorRange,
    ColorSpace,
    YuvLayout,
    check_size,
    frame_shape,
    parse_layout,
)

FRAME_INPUT = "frame"


class ResizeMode(str, enum.Enum):
    STRETCH = "stretch"  # whole frame to size x size, aspect ratio not kept
    CENTER_CROP = "center-crop"  # largest centred square, scaled to size x size
    LETTERBOX = "letterbox"  # whole frame, aspect kept, padded with the mean colour


DEFAULT_RESIZE = ResizeMode.CENTER_CROP


@dataclass(frozen=True)
class InputContract:
    """What the fused model's input is: a raw frame of this layout and size, and how it becomes the network input."""

    layout: YuvLayout
    width: int
    height: int
    colorspace: ColorSpace = DEFAULT_COLORSPACE
    color_range: ColorRange = DEFAULT_RANGE
    resize: ResizeMode = DEFAULT_RESIZE
    size: int = NETWORK_SIZE

    def __post_init__(self) -> None:
        check_size(self.width, self.height)
        if self.size < 1:
            raise UserInputError(f"network size {self.size} must be positive")

    @property
    def frame_shape(self) -> tuple[int, int]:
        return frame_shape(self.layout, self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "yuv422",
            "name": FRAME_INPUT,
            "dtype": "uint8",
            "shape": ["batch", *self.frame_shape],
            "layout": self.layout.value,
            "width": self.width,
            "height": self.height,
            "colorspace": self.colorspace.value,
            "range": self.color_range.value,
            "resize": self.resize.value,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputContract:
        try:
            return cls(
                layout=YuvLayout(data["layout"]),
                width=int(data["width"]),
                height=int(data["height"]),
                colorspace=ColorSpace(data["colorspace"]),
                color_range=ColorRange(data["range"]),
                resize=ResizeMode(data["resize"]),
                size=int(data["size"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise UserInputError(f"input contract {data!r} is not valid: {exc}") from None


def parse_input(
    text: str,
    colorspace: str = DEFAULT_COLORSPACE.value,
    color_range: str = DEFAULT_RANGE.value,
    resize: str = DEFAULT_RESIZE.value,
    size: int = NETWORK_SIZE,
) -> InputContract:
    """'yuyv:1920x1080' (+ option strings) -> InputContract."""
    match = re.fullmatch(r"\s*([A-Za-z0-9]+)\s*:\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserInputError(f"--input '{text}' is not FORMAT:WIDTHxHEIGHT (e.g. yuyv:1920x1080)")
    return InputContract(
        layout=parse_layout(match.group(1)),
        width=int(match.group(2)),
        height=int(match.group(3)),
        colorspace=parse_choice(ColorSpace, colorspace, "colorspace"),
        color_range=parse_choice(ColorRange, color_range, "range"),
        resize=parse_choice(ResizeMode, resize, "resize mode"),
        size=size,
    )

