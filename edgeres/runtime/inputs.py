"""Read the input an artifact takes, as its sidecar's input contract says: raw YUV422 frames for a
fused model (from a file, or from a pipe as they arrive), otherwise an image resized, centre-cropped and
normalised as the artifact records (ImageNet RGB when it records nothing).

On the runtime path: nothing here imports torch.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from edgeres.artifacts.sidecar import verify_sidecar
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract, InputSpec, recorded_input
from edgeres.frames.images import NETWORK_SIZE, read_batch
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization
from edgeres.frames.stream import open_frames
from edgeres.frames.yuv import YuvFile


def artifact_input(artifact: Path) -> InputSpec | None:
    """What the artifact takes, as its sidecar records it (options["input"]), following a quantized ONNX
    to its source; None when no sidecar records it. A sidecar whose recorded size differs from the
    artifact's is refused (size only: hashing a large ONNX on every read would cost a read of it)."""
    verify_sidecar(Path(artifact), full_hash=False)
    return recorded_input(Path(artifact))


def artifact_normalization(artifact: Path) -> PixelNormalization:
    """How the artifact wants its RGB floats: as recorded, else ImageNet RGB (what edgeres's exports take)."""
    spec = artifact_input(artifact)
    return IMAGENET_RGB if spec is None else spec.normalization


def frame_contract(artifact: Path) -> InputContract:
    """The camera contract of a model that takes raw frames; a model that takes RGB floats is refused."""
    spec = artifact_input(artifact)
    if spec is None or spec.contract is None:
        raise UserInputError(f"{artifact}: takes no raw camera frame; build it with --input yuyv:WIDTHxHEIGHT")
    return spec.contract


DEFAULT_FRAME_COUNT = 8  # frames read_input takes from a raw clip unless told otherwise


def read_input(artifact: Path, source: Path, start: int = 0, count: int = DEFAULT_FRAME_COUNT) -> np.ndarray:
    """The batch `artifact` takes, read from `source` as its input spec says.

    A fused model (a camera contract) takes raw frames: frames `start` .. `start + count - 1` of the
    raw file (fewer at its end), uint8 [N, rows, cols], read through a memory map so a long clip is
    never loaded whole; from `-` or a FIFO, as they arrive. Otherwise `source` is an image, resized,
    centre-cropped and normalised.
    """
    spec = artifact_input(artifact)
    contract = spec.contract if spec is not None else None
    if contract is not None:
        if count < 1:
            raise UserInputError(f"{source}: frame count {count}; at least 1 frame is needed")
        with open_frames(Path(source), contract.layout, contract.width, contract.height) as clip:
            if isinstance(clip, YuvFile):
                if not 0 <= start < clip.count:
                    raise UserInputError(f"{source}: first frame {start} is outside the clip's 0..{clip.count - 1}")
                return np.array(clip.frames()[start : start + count])
            if start < 0:
                raise UserInputError(f"{source}: first frame {start} is negative")
            frames = list(itertools.islice(clip, start, start + count))
            if not frames:
                raise UserInputError(f"{clip.name}: the stream ended after {clip.count} frame(s), before frame {start}")
            return np.stack(frames)
    if spec is None:
        return read_batch([Path(source)], NETWORK_SIZE)
    return read_batch([Path(source)], spec.image_size, spec.normalization)
