"""From an image file to the tensor the network trains or is validated on.

Augmentation (random resized crop, horizontal flip, colour jitter within bounds) works on the uint8 RGB
picture; the picture then goes through the one encoder `edgeres build` evaluates with
(edgeres.samples.encoding): its resize, crop and ImageNet normalisation for an RGB model, or
for a camera model the camera's YUV 4:2:2 encoding of the frame followed by the host front-end
(edgeres.frontend.host.reference_input), which is what the fused model computes. Training and deployment
therefore see the same tensors; validation samples take no augmentation and are exactly build's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeres.artifacts.tensors import TensorSpec
from edgeres.export.onnx_export import INPUT_NAME
from edgeres.frames.contract import FRAME_INPUT, InputContract
from edgeres.frames.images import read_rgb
from edgeres.frontend.host import reference_input
from edgeres.samples.encoding import SampleEncoder, encoder_for
from edgeres.train.dataset import Sample


@dataclass(frozen=True)
class AugmentBounds:
    """Random resized crop of `scale` of the area at an aspect in `ratio`; jitter factors within 1 +- the bound."""

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def random_resized_crop(rgb: np.ndarray, rng: np.random.Generator, bounds: AugmentBounds) -> np.ndarray:
    """A crop of the picture (not resized: the encoder does the one resize), as torchvision samples it."""
    h, w = rgb.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*bounds.scale)
        aspect = math.exp(rng.uniform(math.log(bounds.ratio[0]), math.log(bounds.ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return rgb[top : top + ch, left : left + cw]
    return rgb  # no crop within the bounds fits this picture: all of it


def color_jitter(rgb: np.ndarray, rng: np.random.Generator, bounds: AugmentBounds) -> np.ndarray:
    """Brightness, contrast and saturation factors drawn within 1 +- their bounds, in a random order."""
    out = rgb.astype(np.float32)
    steps = [
        (bounds.brightness, lambda x, f: x * f),
        (bounds.contrast, lambda x, f: (x - x.mean()) * f + x.mean()),
        (bounds.saturation, lambda x, f: (x - x.mean(axis=2, keepdims=True)) * f + x.mean(axis=2, keepdims=True)),
    ]
    for index in rng.permutation(len(steps)):
        bound, apply = steps[index]
        if bound > 0:
            out = apply(out, rng.uniform(1 - bound, 1 + bound))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def augment(rgb: np.ndarray, rng: np.random.Generator, bounds: AugmentBounds) -> np.ndarray:
    picture = random_resized_crop(rgb, rng, bounds)
    if rng.random() < bounds.flip:
        picture = picture[:, ::-1]
    return np.ascontiguousarray(color_jitter(picture, rng, bounds))


def network_encoder(size: int, contract: InputContract | None) -> SampleEncoder:
    """The encoder of the deployed model's input: RGB floats [N, 3, size, size], or the contract's frames."""
    if contract is None:
        return encoder_for(TensorSpec(INPUT_NAME, np.dtype(np.float32), (None, 3, size, size)))
    return encoder_for(TensorSpec(FRAME_INPUT, np.dtype(np.uint8), (None, *contract.frame_shape)), contract)


class SampleTransform:
    """A sample -> (float32 [3, size, size] network input, label); augmented for training, plain for validation."""

    def __init__(
        self, size: int, contract: InputContract | None, seed: int, train: bool, bounds: AugmentBounds | None = None
    ) -> None:
        self.encoder, self.contract = network_encoder(size, contract), contract
        self.seed, self.train, self.bounds = seed, train, bounds or AugmentBounds()

    def network_input(self, rgb: np.ndarray) -> np.ndarray:
        """What the network sees of one picture: build's encoding, then (frames) the host front-end."""
        encoded = self.encoder.from_rgb(rgb)
        if self.contract is None:
            return encoded
        return reference_input(encoded[None], self.contract)[0]

    def __call__(self, sample: Sample, epoch: int, index: int) -> np.ndarray:
        rgb = read_rgb(sample.path)
        if self.train:
            rgb = augment(rgb, np.random.default_rng((self.seed, 2, epoch, index)), self.bounds)
        return self.network_input(rgb)
