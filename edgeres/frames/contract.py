"""What a model takes as its input: RGB floats, or raw camera frames of one format and how they become RGB.

`FrameFormat` is a raw frame's layout and size, written FORMAT:WIDTHxHEIGHT (`yuyv:1920x1080`) wherever a
user gives one; `InputContract` adds the colour coding and the resize a fused model applies. `InputSpec` is
what a sidecar records as options["input"] (kind, tensor name, shape, and a frame model's contract), with
its one decoder `InputSpec.from_json`; `recorded_input` finds it for any artifact.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.fields import Fields
from edgeres.artifacts.lineage import nearest
from edgeres.artifacts.sidecar import Section, Sidecar
from edgeres.choices import parse_choice
from edgeres.errors import UserInputError
from edgeres.frames.images import NETWORK_SIZE
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization, recorded_normalization
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
    """What a model's input is, as its sidecar records it (options["input"]["kind"]) and deploy tells from
    its graph."""

    RGB_FLOAT = "rgb_float"  # float [batch, 3, H, W], normalised as its record says (ImageNet RGB by default)
    YUV422 = "yuv422"  # uint8 [batch, rows, bytes] raw camera frames, the front-end fused into the model


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

    def refuse_other_frames(
        self,
        frames: FrameFormat,
        source: str,
        model: str,
        colorspace: ColorSpace | None = None,
        color_range: ColorRange | None = None,
    ) -> None:
        """Frames of another layout or size (or colour coding, where one is given) would be misread by the model
        that takes these, silently: refused, naming what differs. Same-sized YUYV and UYVY frames, for one, fit
        the same tensor."""
        given = {"layout": frames.layout.value, "size": f"{frames.width}x{frames.height}"}
        taken = {"layout": self.layout.value, "size": f"{self.width}x{self.height}"}
        if colorspace is not None:
            given["colorspace"], taken["colorspace"] = colorspace.value, self.colorspace.value
        if color_range is not None:
            given["range"], taken["range"] = color_range.value, self.color_range.value
        differ = [key for key in given if given[key] != taken[key]]
        if differ:
            raise UserInputError(
                f"{source}: frames of {', '.join(f'{key} {given[key]}' for key in differ)}, but {model} takes "
                f"{', '.join(f'{key} {taken[key]}' for key in differ)} (its recorded input contract)"
            )

    def to_dict(self) -> dict[str, Any]:
        """The sidecar's options["input"] of the fused model that takes these frames."""
        return InputSpec.frames(self).to_json()

    def _fields_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout.value,
            "width": self.width,
            "height": self.height,
            "colorspace": self.colorspace.value,
            "range": self.color_range.value,
            "resize": self.resize.value,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "options.input") -> InputContract:
        """The contract fields of an options["input"] (the frame part of `InputSpec.from_json`)."""
        try:
            return cls(
                layout=YuvLayout(data["layout"]),
                width=_whole(data["width"]),
                height=_whole(data["height"]),
                colorspace=ColorSpace(data["colorspace"]),
                color_range=ColorRange(data["range"]),
                resize=ResizeMode(data["resize"]),
                size=_whole(data["size"]),
            )
        except KeyError as exc:
            raise UserInputError(f"{where}: input contract lacks {exc.args[0]}") from None
        except (ValueError, TypeError, UserInputError) as exc:
            raise UserInputError(f"{where}: input contract is not valid ({exc})") from None


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not a whole number")
    return value


@dataclass(frozen=True)
class InputSpec:
    """What a model takes, as a sidecar records it: kind, tensor name, shape (axes set at run time by name,
    "batch"), for an RGB model how its floats are normalised, and for a frame model the camera contract (whose
    fused front-end normalises as ImageNet RGB). Export and build write it; an engine copies its ONNX's."""

    kind: InputKind
    name: str
    shape: tuple[int | str, ...]
    contract: InputContract | None = None  # present exactly when kind is YUV422
    normalization: PixelNormalization = IMAGENET_RGB

    def __post_init__(self) -> None:
        if (self.contract is not None) != (self.kind is InputKind.YUV422):
            has = "a" if self.contract is not None else "no"
            raise UserInputError(f"input '{self.name}': {self.kind.value} with {has} camera contract (frames have one)")
        if self.contract is not None and not self.normalization.is_imagenet_rgb:
            raise UserInputError(f"input '{self.name}': a frame model's front-end normalises as ImageNet RGB")

    @classmethod
    def rgb(cls, name: str, size: int = NETWORK_SIZE, normalization: PixelNormalization = IMAGENET_RGB) -> InputSpec:
        """Float [batch, 3, size, size], normalised by `normalization`."""
        return cls(InputKind.RGB_FLOAT, name, ("batch", 3, size, size), normalization=normalization)

    @classmethod
    def rgb_of(cls, name: str, shape: tuple[int | None, ...], normalization: PixelNormalization) -> InputSpec:
        """The RGB input of a graph's tensor `name` of `shape` (a batch axis not fixed is named "batch")."""
        axes = tuple("batch" if size is None else size for size in shape)
        return cls(InputKind.RGB_FLOAT, name, axes, normalization=normalization)

    @classmethod
    def frames(cls, contract: InputContract) -> InputSpec:
        """Raw uint8 frames of `contract`, into the fused front-end's input."""
        return cls(InputKind.YUV422, FRAME_INPUT, ("batch", *contract.frame_shape), contract)

    @property
    def image_size(self) -> int:
        """The height and width an RGB model takes (its last axis; the network size when that is not fixed)."""
        last = self.shape[-1] if self.shape else None
        return last if isinstance(last, int) else NETWORK_SIZE

    def to_json(self) -> dict[str, Any]:
        """options["input"] as every stage writes it."""
        if self.contract is None:
            return {
                "kind": self.kind.value,
                "name": self.name,
                "shape": list(self.shape),
                "normalization": self.normalization.to_json(),
            }
        return {
            "kind": self.kind.value,
            "name": self.name,
            "dtype": "uint8",
            "shape": list(self.shape),
            **self.contract._fields_json(),
        }

    @classmethod
    def from_json(cls, value: object, where: str) -> InputSpec:
        """The one decoder of options["input"]; one-line UserInputError naming `where` when malformed."""
        fields = Fields.of(value, where)
        kind = fields.choice("kind", InputKind)
        name, shape = fields.require("name", str), fields.shape("shape")
        if shape is None:
            raise UserInputError(f"{where} has no shape")
        if kind is InputKind.YUV422:
            return cls(kind, name, shape, InputContract.from_dict(fields.data, where))
        return cls(kind, name, shape, normalization=recorded_normalization(fields.data, where))

    @classmethod
    def from_options(cls, options: Fields) -> InputSpec | None:
        """The input a sidecar's options (or a copy of them) record, None when they record none."""
        value = options.get("input", dict)
        return None if value is None else cls.from_json(value, f"{options.where}.input")

    @classmethod
    def of(cls, sidecar: Sidecar) -> InputSpec | None:
        return cls.from_options(sidecar.fields(Section.OPTIONS))


def recorded_input(artifact: Path) -> InputSpec | None:
    """What the model takes, from the artifact's sidecar or the nearest source's (a quantized ONNX records
    none of its own); None when no sidecar on the way records one."""
    return nearest(Path(artifact), InputSpec.of)


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
