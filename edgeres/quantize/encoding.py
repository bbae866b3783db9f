"""Turn a photograph or a camera frame into exactly what the ONNX model takes as one input sample.

The encoder reads the model's input (name, dtype, shape) and works out one of two cases:
- float RGB tensor [N, 3, H, W] (or [N, H, W, 3]): ImageNet resize/crop and normalisation; with a
  camera `InputContract` (edgeres.frames.contract) the picture first makes the camera's RGB -> YUV 4:2:2 ->
  RGB round trip, so calibration sees the chroma subsampling the deployed pipeline will see;
- a YUV 4:2:2 frame (any tensor whose non-unit dims are the frame's [rows, cols]): the picture is
  resized to cover the frame and encoded with edgeres.frames.yuv.rgb_to_yuv422, as the camera would.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import onnx

from edgeres.artifacts.onnx import as_model, graph_input
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.images import NETWORK_SIZE, RESIZE_SHORTER_TO, center_crop_resize, normalize
from edgeres.frames.yuv import (
    DEFAULT_COLORSPACE,
    DEFAULT_RANGE,
    ColorRange,
    ColorSpace,
    YuvLayout,
    rgb_to_yuv422,
    size_of,
    yuv422_to_rgb,
)

DERIVED_CROP_SIDE = (0.55, 0.9)  # derived samples crop this fraction of each side


def model_input(model: onnx.ModelProto | Path | str) -> TensorSpec:
    """The model's one graph input, which calibration samples are encoded for."""
    return graph_input(as_model(model, weights=False), "model" if isinstance(model, onnx.ModelProto) else model)


def cover_resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale so the picture covers width x height, then take the centre (no distortion)."""
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def derive_variant(rgb: np.ndarray, variant: int, rng: np.random.Generator) -> np.ndarray:
    """Variant 1 is the mirror image; later ones are random crops, mirrored on odd variants."""
    if variant == 1:
        return np.ascontiguousarray(rgb[:, ::-1])
    h, w = rgb.shape[:2]
    side = rng.uniform(*DERIVED_CROP_SIDE)
    crop_h, crop_w = max(16, round(h * side)), max(16, round(w * side))
    top, left = int(rng.integers(0, max(1, h - crop_h + 1))), int(rng.integers(0, max(1, w - crop_w + 1)))
    crop = rgb[top : top + crop_h, left : left + crop_w]
    return np.ascontiguousarray(crop[:, ::-1] if variant % 2 else crop)


class SampleEncoder:
    """Photographs / frames -> one model-input sample (no batch axis) of the model's dtype and shape."""

    def __init__(self, model: TensorSpec, camera: InputContract | None = None) -> None:
        self.model, self.camera = model, camera
        sample_shape = model.shape[1:]
        self.frame_size: tuple[int, int] | None
        if not np.issubdtype(model.dtype, np.floating) or not _is_rgb(sample_shape):
            if camera is None:
                raise UserInputError(
                    f"model input {model.name!r} {model.dtype}{list(model.shape)} is not an RGB tensor; "
                    "give the camera's YUV layout to calibrate a frame input"
                )
            self.frame_size = self._frame_size(sample_shape, camera)
        else:
            self.frame_size = None
        self.channels_first = bool(sample_shape) and sample_shape[0] == 3
        spatial = sample_shape[1:] if self.channels_first else sample_shape[:2]
        self.height = (spatial[0] or NETWORK_SIZE) if spatial else NETWORK_SIZE
        self.width = (spatial[1] or NETWORK_SIZE) if len(spatial) > 1 else NETWORK_SIZE

    @staticmethod
    def _frame_size(sample_shape: tuple[int | None, ...], camera: InputContract) -> tuple[int, int]:
        """The frame's (width, height): the contract's, checked against the model's fixed frame dims."""
        dims = [d for d in sample_shape if d != 1]
        if len(dims) != 2 or None in dims:
            return camera.width, camera.height  # dynamic frame size: the contract decides
        rows, cols = dims
        assert rows is not None and cols is not None
        size = size_of(np.empty((rows, cols), np.uint8), camera.layout)
        if size != (camera.width, camera.height):
            raise UserInputError(
                f"model input {list(sample_shape)} is a {size[0]}x{size[1]} {camera.layout.value} frame, "
                f"but the input contract says {camera.width}x{camera.height}"
            )
        return size

    def describe(self) -> str:
        """Everything about the encoding that changes the samples (part of the data fingerprint)."""
        model = f"ModelInput(name={self.model.name!r}, dtype={self.model.dtype.name!r}, shape={self.model.shape!r})"
        return f"{model}|{self.camera}|{self.frame_size}"

    def batch_size(self, requested: int) -> int:
        fixed = self.model.fixed_batch
        if requested < 1:
            raise UserInputError(f"batch size must be at least 1, got {requested}")
        return fixed if fixed is not None else requested

    def round_samples(self, count: int) -> int:
        """A model with a fixed batch takes whole batches: round the sample count up."""
        fixed = self.model.fixed_batch
        return count if fixed is None else -(-count // fixed) * fixed

    def _as_model(self, sample: np.ndarray) -> np.ndarray:
        shape = tuple(d if d is not None else -1 for d in self.model.shape[1:])
        try:
            return np.ascontiguousarray(sample.reshape(shape).astype(self.model.dtype, copy=False))
        except ValueError as exc:
            raise UserInputError(
                f"encoded sample of shape {list(sample.shape)} does not fit model input {self.model.name!r} "
                f"{list(self.model.shape)}"
            ) from exc

    def from_rgb(self, rgb: np.ndarray, camera_round_trip: bool = True) -> np.ndarray:
        """A uint8 RGB picture; `camera_round_trip=False` when it already came out of a camera frame."""
        if self.frame_size is not None:
            assert self.camera is not None
            width, height = self.frame_size
            frame = rgb_to_yuv422(cover_resize(rgb, width, height), self.camera.layout, *self._colour())
            return self._as_model(frame)
        picture = rgb
        if (
            self.camera is not None and camera_round_trip
        ):  # what the deployed app sees after the camera's chroma subsampling
            even = picture[:, : picture.shape[1] // 2 * 2]
            frame = rgb_to_yuv422(np.ascontiguousarray(even), self.camera.layout, *self._colour())
            picture = yuv422_to_rgb(frame, self.camera.layout, *self._colour())
        if self.width == self.height:
            chw = normalize(
                center_crop_resize(picture, self.width, round(self.width * RESIZE_SHORTER_TO / NETWORK_SIZE))
            )
        else:
            chw = normalize(cover_resize(picture, self.width, self.height))
        return self._as_model(chw if self.channels_first else chw.transpose(1, 2, 0))

    def from_frame(self, frame: np.ndarray, layout: YuvLayout) -> np.ndarray:
        """A raw camera frame: passed through untouched when it already is the model's input."""
        camera, size = self.camera, self.frame_size
        if size is not None and camera is not None and layout is camera.layout and size_of(frame, layout) == size:
            return self._as_model(frame)
        return self.from_rgb(self.frame_to_rgb(frame, layout), camera_round_trip=False)

    def frame_to_rgb(self, frame: np.ndarray, layout: YuvLayout) -> np.ndarray:
        """Decode a frame with the camera's colour matrix and range (the defaults when none was given)."""
        colour = self._colour() if self.camera is not None else (DEFAULT_COLORSPACE, DEFAULT_RANGE)
        return yuv422_to_rgb(frame, layout, *colour)

    def _colour(self) -> tuple[ColorSpace, ColorRange]:
        assert self.camera is not None
        return self.camera.colorspace, self.camera.color_range


def _is_rgb(sample_shape: tuple[int | None, ...]) -> bool:
    return len(sample_shape) == 3 and (sample_shape[0] == 3 or sample_shape[-1] == 3)


def encoder_for(model: onnx.ModelProto | Path | str, camera: InputContract | None = None) -> SampleEncoder:
    return SampleEncoder(model_input(model), camera)

