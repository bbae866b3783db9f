"""How a network wants its float input: which channel comes first and each channel's mean and std.

torchvision's classifiers (what `edgeres export` makes) take ImageNet-normalised RGB; a model from elsewhere
may take BGR planes (Caffe-style) or other statistics. `PixelNormalization` is that convention as one typed
record: `build --onnx` takes it as options, the sidecars record it, and calibration, held-out evaluation,
single-image inference and DeepStream's nvinfer config all apply it.

Mean and std are on the 0..1 scale of pixel / 255 (torchvision's convention) and listed in the model's own
channel order, as a model's documentation gives them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeres.artifacts.fields import Fields
from edgeres.errors import UserInputError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ChannelOrder(str, enum.Enum):
    """The order of the three colour planes the network takes."""

    RGB = "rgb"
    BGR = "bgr"


Triple = tuple[float, float, float]


@dataclass(frozen=True)
class PixelNormalization:
    """`input[c] = (pixel[order[c]] / 255 - mean[c]) / std[c]` for each of the network's channels c."""

    mean: Triple = (0.485, 0.456, 0.406)
    std: Triple = (0.229, 0.224, 0.225)
    order: ChannelOrder = ChannelOrder.RGB

    def __post_init__(self) -> None:
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != 3 or not all(isinstance(v, float) and math.isfinite(v) for v in values):
                raise UserInputError(f"{name} {list(values)}: needs three finite numbers, one per channel")
        if not all(0.0 <= m <= 1.0 for m in self.mean):
            raise UserInputError(
                f"mean {list(self.mean)}: give it on the 0..1 scale of pixel/255 (ImageNet's is 0.485,0.456,0.406; "
                "a mean of 123.675 is 0.485 there)"
            )
        if not all(0.0 < s <= 1.0 for s in self.std):
            raise UserInputError(
                f"std {list(self.std)}: give it on the 0..1 scale of pixel/255, each above 0 (ImageNet's is "
                "0.229,0.224,0.225; a std of 58.395 is 0.229 there, and a model taking raw 0..255 pixels has "
                "mean 0,0,0 and std 0.00392157)"
            )

    @property
    def is_imagenet_rgb(self) -> bool:
        return self == IMAGENET_RGB

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB [H, W, 3] -> float32 [3, H, W] as the network takes it."""
        planes = rgb if self.order is ChannelOrder.RGB else rgb[..., ::-1]
        scaled = planes.astype(np.float32) / np.float32(255.0)
        mean, std = np.array(self.mean, np.float32), np.array(self.std, np.float32)
        return np.ascontiguousarray(((scaled - mean) / std).transpose(2, 0, 1))

    def describe(self) -> str:
        if self.is_imagenet_rgb:
            return "RGB, ImageNet mean/std"
        numbers = ",".join(f"{v:g}" for v in self.mean), ",".join(f"{v:g}" for v in self.std)
        return f"{self.order.value.upper()}, mean {numbers[0]}, std {numbers[1]}"

    def to_json(self) -> dict[str, Any]:
        return {"order": self.order.value, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, value: object, where: str) -> PixelNormalization:
        """The one decoder of a recorded normalisation; one-line UserInputError naming `where` when malformed."""
        fields = Fields.of(value, where)
        order = fields.choice("order", ChannelOrder)
        mean, std = fields.items("mean", float), fields.items("std", float)
        if mean is None or std is None or len(mean) != 3 or len(std) != 3:
            raise UserInputError(f"{where}: mean and std must each be three numbers")
        try:
            return cls(_triple(mean), _triple(std), order)
        except UserInputError as exc:
            raise UserInputError(f"{where}: {exc}") from None

    @classmethod
    def parse(cls, mean: str | None, std: str | None, order: str | None) -> PixelNormalization | None:
        """From command-line text (`0.5,0.5,0.5`, `bgr`); None when none of the three was given. A part not
        given is ImageNet RGB's."""
        if mean is None and std is None and order is None:
            return None
        default = IMAGENET_RGB
        try:
            channel_order = default.order if order is None else ChannelOrder(order.strip().lower())
        except ValueError:
            raise UserInputError(f"channel order {order!r}: not rgb or bgr") from None
        return cls(
            default.mean if mean is None else _parse_triple(mean, "mean"),
            default.std if std is None else _parse_triple(std, "std"),
            channel_order,
        )


def _triple(values: tuple[float, ...]) -> Triple:
    return (float(values[0]), float(values[1]), float(values[2]))


def _parse_triple(text: str, name: str) -> Triple:
    parts = [part.strip() for part in text.split(",")]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise UserInputError(f"{name} {text!r}: not three comma-separated numbers (e.g. 0.485,0.456,0.406)") from None
    if len(values) != 3:
        raise UserInputError(f"{name} {text!r}: {len(values)} numbers; give three, one per channel (R,G,B or B,G,R)")
    return _triple(values)


IMAGENET_RGB = PixelNormalization()


def recorded_normalization(data: Mapping[str, Any], where: str) -> PixelNormalization:
    """The normalisation an options["input"] records; ImageNet RGB where it records none (what edgeres's own
    exports take, and what every sidecar written before the field existed meant)."""
    value = data.get("normalization")
    return IMAGENET_RGB if value is None else PixelNormalization.from_json(value, f"{where}.normalization")
