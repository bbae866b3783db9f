"""Turn a photograph or a camera frame into exactly what the ONNX model takes as one input sample.

One encoder per kind of model input, chosen once by `encoder_for` from the model's input (name, dtype,
shape) and the camera contract:
- `RgbEncoder`: a float RGB tensor [N, 3, H, W] (or [N, H, W, 3]): ImageNet resize/crop, then the model's
  normalisation (ImageNet RGB unless it records another);
- `CameraRgbEncoder`: the same tensor for a camera product: the picture first makes the camera's RGB ->
  YUV 4:2:2 -> RGB round trip, so calibration and training see the chroma subsampling the deployed
  pipeline will see;
- `FrameEncoder`: a YUV 4:2:2 frame (any tensor whose non-unit dims are the frame's [rows, cols]): the
  picture is resized to cover the frame and encoded with edgeres.frames.yuv.rgb_to_yuv422, as the camera would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from edgeres.artifacts.onnx import as_model, graph_input
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.images import NETWORK_SIZE, RESIZE_SHORTER_TO, center_crop_resize, cover_resize
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization
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


def model_input(model: onnx.ModelProto | Path | str) -> TensorSpec:
    """The model's one graph input, which samples are encoded for."""
    return graph_input(as_model(model, weights=False), "model" if isinstance(model, onnx.ModelProto) else model)


class SampleEncoder:
    """Photographs / frames -> one model-input sample (no batch axis) of the model's dtype and shape."""

    def __init__(
        self, model: TensorSpec, camera: InputContract | None = None, normalization: PixelNormalization = IMAGENET_RGB
    ) -> None:
        self.model, self.camera, self.normalization = model, camera, normalization
        sample_shape = model.shape[1:]
        self.channels_first = bool(sample_shape) and sample_shape[0] == 3
        spatial = sample_shape[1:] if self.channels_first else sample_shape[:2]
        self.height = (spatial[0] or NETWORK_SIZE) if spatial else NETWORK_SIZE
        self.width = (spatial[1] or NETWORK_SIZE) if len(spatial) > 1 else NETWORK_SIZE

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of a frame input; None for an RGB one."""
        return None

    def describe(self) -> str:
        """Everything about the encoding that changes the samples (part of the data fingerprint)."""
        model = f"ModelInput(name={self.model.name!r}, dtype={self.model.dtype.name!r}, shape={self.model.shape!r})"
        scaled = "" if self.normalization.is_imagenet_rgb else f"|{self.normalization}"
        return f"{model}|{self.camera}|{self.frame_size}{scaled}"

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

    def _colour(self) -> tuple[ColorSpace, ColorRange]:
        camera = self.camera
        return (camera.colorspace, camera.color_range) if camera is not None else (DEFAULT_COLORSPACE, DEFAULT_RANGE)

    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """A uint8 RGB picture as the camera would deliver it to the model."""
        raise NotImplementedError

    def from_frame(self, frame: np.ndarray, layout: YuvLayout) -> np.ndarray:
        """A raw camera frame (already carrying the camera's chroma subsampling)."""
        return self._network_input(self.frame_to_rgb(frame, layout))

    def frame_to_rgb(self, frame: np.ndarray, layout: YuvLayout) -> np.ndarray:
        """Decode a frame with the camera's colour matrix and range (the defaults when none was given)."""
        return yuv422_to_rgb(frame, layout, *self._colour())

    def _network_input(self, picture: np.ndarray) -> np.ndarray:
        """ImageNet crop (square input) or cover resize, then the model's normalisation and channel order."""
        if self.width == self.height:
            fitted = center_crop_resize(picture, self.width, round(self.width * RESIZE_SHORTER_TO / NETWORK_SIZE))
        else:
            fitted = cover_resize(picture, self.width, self.height)
        chw = self.normalization.apply(fitted)
        return self._as_model(chw if self.channels_first else chw.transpose(1, 2, 0))


class RgbEncoder(SampleEncoder):
    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        return self._network_input(rgb)


class CameraRgbEncoder(SampleEncoder):
    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        even = np.ascontiguousarray(rgb[:, : rgb.shape[1] // 2 * 2])
        assert self.camera is not None
        frame = rgb_to_yuv422(even, self.camera.layout, *self._colour())
        return self._network_input(yuv422_to_rgb(frame, self.camera.layout, *self._colour()))


class FrameEncoder(SampleEncoder):
    def __init__(self, model: TensorSpec, camera: InputContract) -> None:
        super().__init__(model, camera)
        self.contract = camera
        self.size = _frame_size(model.shape[1:], camera)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.size

    def from_rgb(self, rgb: np.ndarray) -> np.ndarray:
        frame = rgb_to_yuv422(cover_resize(rgb, *self.size), self.contract.layout, *self._colour())
        return self._as_model(frame)

    def from_frame(self, frame: np.ndarray, layout: YuvLayout) -> np.ndarray:
        """Passed through untouched when it already is the model's input, else decoded and encoded again."""
        if layout is self.contract.layout and size_of(frame, layout) == self.size:
            return self._as_model(frame)
        return self.from_rgb(self.frame_to_rgb(frame, layout))


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


def _is_rgb(sample_shape: tuple[int | None, ...]) -> bool:
    return len(sample_shape) == 3 and (sample_shape[0] == 3 or sample_shape[-1] == 3)


def encoder_for(
    model: onnx.ModelProto | Path | str | TensorSpec,
    camera: InputContract | None = None,
    normalization: PixelNormalization = IMAGENET_RGB,
) -> SampleEncoder:
    """The encoder for this model input: a frame encoder for a non-RGB input, else an RGB one normalised by
    `normalization` (with the camera round trip when a camera contract is given)."""
    spec = model if isinstance(model, TensorSpec) else model_input(model)
    if np.issubdtype(spec.dtype, np.floating) and _is_rgb(spec.shape[1:]):
        if camera is None:
            return RgbEncoder(spec, None, normalization)
        return CameraRgbEncoder(spec, camera, normalization)
    if camera is None:
        raise UserInputError(
            f"model input {spec.name!r} {spec.dtype}{list(spec.shape)} is not an RGB tensor; "
            "give the camera's YUV layout to calibrate a frame input"
        )
    return FrameEncoder(spec, camera)
