"""Shared fixtures: real photographs from scikit-image's bundled samples, small models."""

from __future__ import annotations

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
