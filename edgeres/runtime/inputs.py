"""Read the input an artifact takes, as its sidecar's input contract says: raw YUV422 frames for a
fused model, otherwise an image resized, centre-cropped and normalised.

On the runtime path: nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts.lineage import lineage_input_spec
from edgeres.artifacts.sidecar import verify_sidecar
from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat, InputKind
from edgeres.frames.images import NETWORK_SIZE, read_batch
from edgeres.frames.yuv import YuvLayout, open_yuv


def artifact_input_contract(artifact: Path) -> dict[str, Any] | None:
    """The input contract in the artifact's sidecar (options["input"]), following a quantized ONNX
    to its source; None when no sidecar records one. A sidecar whose recorded size differs from the
    artifact's is refused (size only: hashing a large ONNX on every read would cost a read of it)."""
    verify_sidecar(Path(artifact), full_hash=False)
    return lineage_input_spec(Path(artifact))


DEFAULT_FRAME_COUNT = 8  # frames read_input takes from a raw clip unless told otherwise


def read_input(artifact: Path, source: Path, start: int = 0, count: int = DEFAULT_FRAME_COUNT) -> np.ndarray:
    """The batch `artifact` takes, read from `source` as its input contract says.

    A fused model (contract kind "yuv422") takes raw frames: frames `start` .. `start + count - 1`
    of the raw file (fewer at its end), uint8 [N, rows, cols], read through a memory map so a long
    clip is never loaded whole. Otherwise `source` is an image, resized, centre-cropped and normalised.
    """
    contract = artifact_input_contract(artifact)
    if contract is not None and contract.get("kind") == InputKind.YUV422.value:
        try:
            frames = FrameFormat(YuvLayout(contract["layout"]), int(contract["width"]), int(contract["height"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise UserInputError(f"{artifact}: input contract {contract} is not valid ({exc})") from None
        clip = open_yuv(Path(source), frames.layout, frames.width, frames.height)
        if count < 1:
            raise UserInputError(f"{source}: frame count {count}; at least 1 frame is needed")
        if not 0 <= start < clip.count:
            raise UserInputError(f"{source}: first frame {start} is outside the clip's 0..{clip.count - 1}")
        return np.array(clip.frames()[start : start + count])
    size = NETWORK_SIZE
    if contract is not None and isinstance(contract.get("shape"), list) and isinstance(contract["shape"][-1], int):
        size = int(contract["shape"][-1])
    return read_batch([Path(source)], size)
