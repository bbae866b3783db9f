"""Shared fixtures: real photographs from scikit-image's bundled samples, small models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

# Bundled with the scikit-image wheel (no download); licences in calibration/README.md.
REAL_IMAGE_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def real_image(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as uint8 RGB [H, W, 3]."""
    from skimage import data

    image = getattr(data, name)()
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]


@pytest.fixture(scope="session")
def real_images() -> dict[str, np.ndarray]:
    return {name: real_image(name) for name in REAL_IMAGE_NAMES}


@pytest.fixture(scope="session")
def fused_lite0_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 behind a YUYV front-end, saved with its input contract (edgeres.camera's tests)."""
    from tests.fixtures.camera_model import fused_lite0

    return fused_lite0(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="session")
def photographs(tmp_path_factory: pytest.TempPathFactory, real_images: dict[str, np.ndarray]) -> Path:
    """Three photographs as raw RGB frames, the input of the GStreamer and ffmpeg producers."""
    from tests.fixtures.camera_model import photographs_rgb

    path = tmp_path_factory.mktemp("rgb") / "photos.rgb"
    photographs_rgb(real_images).tofile(path)
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe nothing writes to yet."""
    path = tmp_path / "frames.fifo"
    os.mkfifo(path)
    return path


@pytest.fixture
def closed_reader() -> Iterator[int]:
    """A pipe whose reader has already gone: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    yield write_end
    os.close(write_end)
