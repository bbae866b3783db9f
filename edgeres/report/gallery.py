"""The held-out samples two models classify differently, drawn from what the model itself was fed.

heldout.npz keeps each sample exactly as the model takes it; a picture is made back from that: an RGB-float
input through the inverse of its recorded normalisation, a raw camera frame through the YUV decode of its
contract. So the gallery shows what the network saw (the crop, the chroma subsampling), not the source file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgeres.artifacts.class_names import ClassNames
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.frames.contract import InputSpec
from edgeres.frames.normalization import ChannelOrder
from edgeres.frames.yuv import yuv422_to_rgb
from edgeres.plotting import data_uri
from edgeres.runtime.heldout import HeldOutReference
from edgeres.runtime.topk import Prediction, named, top_k

THUMBNAIL_WIDTH = 160
JPEG_QUALITY = 82
TOP = 5
MOST_SHOWN = 12


@dataclass(frozen=True)
class GalleryItem:
    """One held-out sample: its picture (a JPEG data URI), true class when known, each model's top classes."""

    index: int
    picture: str
    truth: str | None
    tops: dict[ArtifactRole, tuple[Prediction, ...]]


def sample_picture(sample: np.ndarray, spec: InputSpec | None) -> np.ndarray:
    """uint8 RGB [H, W, 3] of one sample as the model takes it (RGB floats when `spec` records nothing)."""
    if spec is not None and spec.contract is not None:
        contract = spec.contract
        return yuv422_to_rgb(np.asarray(sample, np.uint8), contract.layout, contract.colorspace, contract.color_range)
    planes = np.asarray(sample, np.float64)
    chw = planes if planes.shape[0] == 3 else planes.transpose(2, 0, 1)
    normalization = spec.normalization if spec is not None else InputSpec.rgb("input").normalization
    mean = np.array(normalization.mean)[:, None, None]
    std = np.array(normalization.std)[:, None, None]
    rgb = ((chw * std + mean) * 255.0).transpose(1, 2, 0)
    if normalization.order is ChannelOrder.BGR:
        rgb = rgb[..., ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def jpeg_data_uri(rgb: np.ndarray, width: int = THUMBNAIL_WIDTH) -> str:
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if rgb.shape[1] > width else cv2.INTER_LINEAR)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data_uri(encoded.tobytes(), "image/jpeg")


def _top(logits: np.ndarray, names: ClassNames) -> tuple[Prediction, ...]:
    return named(top_k(logits[None], min(TOP, logits.shape[-1])), 0, names)


@dataclass(frozen=True)
class Gallery:
    """The samples shown: those some shipped model classifies differently from FP32 (`disagreeing` of them in
    all), or, where every model agrees everywhere, FP32's closest calls (smallest top-1 margin)."""

    items: list[GalleryItem]
    disagreeing: int
    closest_calls: bool


def _margins(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each sample."""
    best = top_k(logits, min(2, logits.shape[1])).probabilities
    return best[:, 0] - best[:, 1] if best.shape[1] > 1 else best[:, 0]


def gallery(
    held_out: HeldOutReference,
    names: ClassNames,
    spec: InputSpec | None,
    roles: Sequence[ArtifactRole],
    most: int = MOST_SHOWN,
) -> Gallery:
    """Up to `most` samples whose top-1 under any of `roles` differs from FP32's, each with every model's top-5."""
    reference = held_out.logits[ArtifactRole.FP32]
    top1 = reference.argmax(axis=1)
    shipped = [role for role in roles if role is not ArtifactRole.FP32 and role in held_out.logits]
    differ = np.zeros(len(top1), dtype=bool)
    for role in shipped:
        differ |= held_out.logits[role].argmax(axis=1) != top1
    chosen = np.flatnonzero(differ)
    closest = chosen.size == 0
    if closest:
        chosen = np.argsort(_margins(reference.astype(np.float64)), kind="stable")[: most // 2]
    items = []
    for index in chosen[:most]:
        labels = held_out.labels
        truth = None if labels is None else names[int(labels[index])]
        tops = {role: _top(held_out.logits[role][index], names) for role in roles if role in held_out.logits}
        picture = jpeg_data_uri(sample_picture(held_out.inputs[index], spec))
        items.append(GalleryItem(int(index), picture, truth, tops))
    return Gallery(items, int(differ.sum()), closest)
