"""Where the camera loop's frames come from: a raw file, a pipe or FIFO (`edgeres.frames.stream`), or a V4L2
camera read through OpenCV with its colour conversion switched off, so the driver's bytes arrive as they are."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.stream import DEFAULT_WAIT_S, open_frames, source_name
from edgeres.frames.yuv import YuvLayout

V4L2_FOURCC = {YuvLayout.YUYV: "YUYV", YuvLayout.UYVY: "UYVY"}


@contextmanager
def v4l2_frames(device: str, contract: InputContract) -> Iterator[Iterator[np.ndarray]]:
    """Raw frames of the contract's layout and size from a V4L2 device, until it stops delivering; the device
    is opened (or refused) on entry, before any model is loaded, and released on exit."""
    import cv2

    fourcc = V4L2_FOURCC.get(contract.layout)
    if fourcc is None:
        raise UserInputError(f"V4L2 capture here reads packed YUYV/UYVY; the model takes {contract.layout.value}")
    if not Path(device).exists():
        raise UserInputError(f"{device}: no such camera device")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its [ WARN ] lines would precede ours
    capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
    try:
        if not capture.isOpened():
            raise UserInputError(f"{device}: cannot open the camera")
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, contract.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, contract.height)
        capture.set(cv2.CAP_PROP_CONVERT_RGB, 0)  # hand over the driver's bytes, not BGR
        yield _captured(capture, device, contract)
    finally:
        capture.release()


def _captured(capture: Any, device: str, contract: InputContract) -> Iterator[np.ndarray]:
    rows, cols = contract.frame_shape
    while True:
        ok, raw = capture.read()
        if not ok:
            return
        if raw.size != rows * cols:
            raise UserInputError(f"{device}: a {raw.size}-byte frame, the model takes {rows}x{cols} bytes")
        yield raw.reshape(rows, cols)


@contextmanager
def camera_frames(
    contract: InputContract, clip: Path | None = None, device: str | None = None, wait_s: float = DEFAULT_WAIT_S
) -> Iterator[Iterable[np.ndarray]]:
    """The frames of `clip` (a file, `-` or a FIFO) or of a V4L2 `device`, exactly one of them given."""
    if (clip is None) == (device is None):
        raise UserInputError("frames come from a raw clip or pipe, or from a camera device: one of them")
    if clip is None:
        assert device is not None
        with v4l2_frames(device, contract) as captured:
            yield captured
        return
    with open_frames(clip, contract.layout, contract.width, contract.height, wait_s) as source:
        yield source


def frames_name(clip: Path | None, device: str | None) -> str:
    """How messages name the frames' source."""
    return source_name(clip) if clip is not None else str(device)
