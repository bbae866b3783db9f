"""Reading photographs and turning them into the network's normalised input (numpy + OpenCV, no torch)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
NETWORK_SIZE = 224
RESIZE_SHORTER_TO = 256  # the usual ImageNet evaluation crop: shorter side 256, centre 224
MIN_IMAGE_SIDE = 16  # a smaller picture says nothing about a camera's activations or a class
# How a complete file ends: OpenCV decodes a truncated JPEG/PNG partly grey with only a warning on stderr.
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"
TAIL_BYTES = 64


def truncation(path: Path) -> str | None:
    """Why a JPEG or PNG file is cut short (its end marker missing), or None when it ends as it should."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(max(0, path.stat().st_size - TAIL_BYTES))
        tail = handle.read().rstrip(b"\x00")  # some writers pad after the end marker
    if head.startswith(JPEG_START) and not tail.endswith(JPEG_END):
        return "truncated JPEG (no end-of-image marker FFD9)"
    if head.startswith(PNG_START) and PNG_END not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]; grey images are expanded to three channels.

    Truncated JPEG/PNG files and pictures under MIN_IMAGE_SIDE pixels a side are refused.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: image file not found")
    cut = truncation(path)
    if cut is not None:
        raise UserInputError(f"{path}: {cut}")
    try:  # decoded from the bytes: OpenCV's own file opening mishandles names that are not UTF-8
        bgr = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV 5 raises where older versions returned None (e.g. a header claiming
        # more pixels than CV_IO_MAX_IMAGE_PIXELS, which it refuses before allocating them)
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else "error"
        raise UserInputError(f"{path}: not a readable image (OpenCV: {cause})") from None
    if bgr is None:
        raise UserInputError(f"{path}: not a readable image")
    height, width = bgr.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise UserInputError(f"{path}: {width}x{height} image is too small (under {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE})")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def center_crop_resize(rgb: np.ndarray, size: int = NETWORK_SIZE, shorter: int = RESIZE_SHORTER_TO) -> np.ndarray:
    """Resize so the shorter side is `shorter` (area filter), then take the centre size x size."""
    height, width = rgb.shape[:2]
    scale = shorter / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size]


def cover_resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale so the picture covers width x height, then take the centre (no distortion)."""
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


class Fit(str, Enum):
    """How a picture of another shape is made into a frame: cropped to cover it (what build and finetune
    do with photographs, no distortion) or stretched to it (distorted, nothing lost)."""

    COVER = "cover"
    STRETCH = "stretch"


def fit_picture(rgb: np.ndarray, width: int, height: int, fit: Fit = Fit.COVER) -> np.ndarray:
    if rgb.shape[:2] == (height, width):
        return rgb
    if fit is Fit.COVER:
        return cover_resize(rgb, width, height)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def imagenet_batch(
    images: Iterable[np.ndarray], size: int = NETWORK_SIZE, normalization: PixelNormalization = IMAGENET_RGB
) -> np.ndarray:
    """RGB uint8 images -> float32 [N, 3, size, size] the way ImageNet classifiers are evaluated (shorter side
    resized, centre crop), normalised as the network wants."""
    tensors = [normalization.apply(center_crop_resize(rgb, size)) for rgb in images]
    if not tensors:
        raise UserInputError("no images to batch")
    return np.stack(tensors)


def read_batch(
    paths: Sequence[Path], size: int = NETWORK_SIZE, normalization: PixelNormalization = IMAGENET_RGB
) -> np.ndarray:
    return imagenet_batch((read_rgb(p) for p in paths), size, normalization)


def default_calibration_dir() -> Path:
    """The shipped photographs: edgeres/calibration in an installed wheel, else the checkout's calibration/."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "calibration"
    return installed if installed.is_dir() else package.parent / "calibration"
