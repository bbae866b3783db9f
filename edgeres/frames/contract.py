"""What a model takes as its input: RGB floats, or raw camera frames of one format and how they become RGB.

`FrameFormat` is a raw frame's layout and size, written FORMAT:WIDTHxHEIGHT (`yuyv:1920x1080`) wherever a
user gives one; `InputContract` adds the colour coding and the resize a fused model applies.
"""

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
    check_conversion_fits,
    check_size,
    frame_shape,
    parse_layout,
)

FRAME_INPUT = "frame"
_FORMAT = re.compile(r"\s*([A-Za-z0-9]+)\s*(?::\s*(\d+)\s*[xX]\s*(\d+)\s*)?")


class InputKind(str, enum.Enum):
    """What a model's input is, as its sidecar records it (options["input"]["kind"])."""

    RGB_FLOAT = "rgb_float"  # float [batch, 3, H, W], ImageNet-normalised
    YUV422 = "yuv422"  # uint8 raw camera frames, the front-end fused into the model


@dataclass(frozen=True)
class FrameFormat:
    """A raw frame's layout and size: what it takes to read a `.yuv` file frame by frame."""

    layout: YuvLayout
    width: int
    height: int

    def __post_init__(self) -> None:
        check_size(self.width, self.height)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return frame_shape(self.layout, self.width, self.height)

    def __str__(self) -> str:
        return f"{self.layout.value}:{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str, default_size: tuple[int, int] | None = None) -> FrameFormat:
        """'yuyv:1920x1080' -> FrameFormat; a bare 'yuyv' takes `default_size` when one is given."""
        match = _FORMAT.fullmatch(text)
        if not match or (match.group(2) is None and default_size is None):
            raise UserInputError(f"frame format '{text}' is not FORMAT:WIDTHxHEIGHT (e.g. yuyv:1920x1080)")
        layout = parse_layout(match.group(1))
        if match.group(2) is None:
            assert default_size is not None
            return cls(layout, *default_size)
        return cls(layout, int(match.group(2)), int(match.group(3)))


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
        check_conversion_fits(self.width, self.height)  # a model that takes a frame converts at least one
        if self.size < 1:
            raise UserInputError(f"network size {self.size} must be positive")

    @property
    def frame_shape(self) -> tuple[int, int]:
        return frame_shape(self.layout, self.width, self.height)

    @property
    def frame_format(self) -> FrameFormat:
        return FrameFormat(self.layout, self.width, self.height)

    def describe(self) -> str:
        return f"{self.layout.value} {self.width}x{self.height} {self.colorspace.value} {self.color_range.value} " + (
            self.resize.value
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": InputKind.YUV422.value,
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
    frames = FrameFormat.parse(text)
    return InputContract(
        layout=frames.layout,
        width=frames.width,
        height=frames.height,
        colorspace=parse_choice(ColorSpace, colorspace, "colorspace"),
        color_range=parse_choice(ColorRange, color_range, "range"),
        resize=parse_choice(ResizeMode, resize, "resize mode"),
        size=size,
    )

