"""What a profile run is asked to do: batch sizes, run length, warm-up, threads, runtime, the optional camera clip.

Frozen dataclasses that check their values on construction; messages name the value, not a CLI option.
A sweep whose largest batch, times the requests in flight, would need more memory than is available
(SAMPLE_BYTES per sample, a ResNet at the network size) is refused before any model is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeres.errors import UserInputError, check_fits_in_memory
from edgeres.frames.contract import FrameFormat, InputContract, recorded_input
from edgeres.frames.images import NETWORK_SIZE
from edgeres.frames.stream import DEFAULT_WAIT_S, source_name
from edgeres.frames.yuv import DEFAULT_COLORSPACE, DEFAULT_RANGE, ColorRange, ColorSpace, YuvLayout
from edgeres.profile.stats import DEFAULT_CV_WARN
from edgeres.runtime.kinds import RuntimeKind
from edgeres.timing import RunLength

MAX_BATCH = 4096
DEFAULT_WARMUP = 5
DEFAULT_IN_FLIGHT = 2
# Estimated bytes one ResNet sample costs in a forward pass at the network size: float32 activations,
# 3 + 48 floats per input pixel (the same estimate as edgeres.model.resnet.activation_bytes, kept here
# so that profiling never imports torch).
SAMPLE_BYTES = 4 * (3 + 48) * NETWORK_SIZE * NETWORK_SIZE
# A clip's format when neither the user nor a model says: a 1080p YUYV camera.
DEFAULT_CLIP_FORMAT = FrameFormat(YuvLayout.YUYV, 1920, 1080)


def batch_memory_bytes(batch: int, in_flight: int = 1) -> int:
    """Estimated bytes of `in_flight` concurrent forward passes on `batch` samples each."""
    return SAMPLE_BYTES * batch * in_flight


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32): positive, unique, kept in the given order."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise UserInputError(f"batch sizes '{text}': give them separated by commas, e.g. 1,8,32")
    batches: list[int] = []
    for part in parts:
        if not part.isdigit():
            raise UserInputError(f"batch sizes '{text}': '{part}' is not a whole number")
        value = int(part)
        if not 1 <= value <= MAX_BATCH:
            raise UserInputError(f"batch sizes '{text}': {value} is outside 1..{MAX_BATCH}")
        if value in batches:
            raise UserInputError(f"batch sizes '{text}': {value} is listed twice")
        batches.append(value)
    return tuple(batches)


@dataclass(frozen=True)
class FrameClip:
    """End-to-end input: raw YUV 4:2:2 frames (a file, or `-` or a FIFO read as they arrive), their format
    (layout and size) and colour coding, and how long a stream may stay silent."""

    path: Path
    frames: FrameFormat
    colorspace: ColorSpace = DEFAULT_COLORSPACE
    color_range: ColorRange = DEFAULT_RANGE
    top_k: int = 5
    wait_s: float | None = DEFAULT_WAIT_S

    @classmethod
    def for_models(
        cls,
        path: Path,
        models: Sequence[Path],
        frames: FrameFormat | None = None,
        colorspace: ColorSpace | None = None,
        color_range: ColorRange | None = None,
        wait_s: float | None = DEFAULT_WAIT_S,
    ) -> FrameClip:
        """A clip whose format and colour coding are those given, else those of the first model that records a
        camera contract (what such a model takes), else DEFAULT_CLIP_FORMAT in BT.601 limited range."""
        contract = next((c for c in map(_camera_contract, models) if c is not None), None)
        default_frames = contract.frame_format if contract is not None else DEFAULT_CLIP_FORMAT
        return cls(
            path,
            frames or default_frames,
            colorspace or (contract.colorspace if contract is not None else DEFAULT_COLORSPACE),
            color_range or (contract.color_range if contract is not None else DEFAULT_RANGE),
            wait_s=wait_s,
        )

    def refuse_misread(self, model: Path) -> None:
        """Frames a model with a camera contract would misread (another layout, size or colour coding) are
        refused, naming what differs; a model that takes RGB floats converts any clip on the host."""
        contract = _camera_contract(model)
        if contract is not None:
            name = source_name(self.path)
            contract.refuse_other_frames(self.frames, name, str(model), self.colorspace, self.color_range)


def _camera_contract(model: Path) -> InputContract | None:
    spec = recorded_input(Path(model))
    return spec.contract if spec is not None else None


@dataclass(frozen=True)
class ProfileOptions:
    batches: tuple[int, ...] = (1,)
    run_length: RunLength = field(default_factory=RunLength)
    warmup: int = DEFAULT_WARMUP
    threads: int = 0  # 0: the backend's default (onnxruntime: one per physical core; OpenVINO: every core)
    in_flight: int = DEFAULT_IN_FLIGHT  # requests kept in flight for the pipelined measurement
    layers: bool = True  # run the separate per-layer pass
    layer_runs: int = 10
    cv_warn: float = DEFAULT_CV_WARN
    clip: FrameClip | None = None
    runtime: RuntimeKind = RuntimeKind.AUTO  # AUTO: onnxruntime for an ONNX, TensorRT for an engine

    def __post_init__(self) -> None:
        if not self.batches:
            raise UserInputError("no batch sizes to profile")
        if self.warmup < 0:
            raise UserInputError(f"warm-up calls {self.warmup}: must be 0 or more")
        if self.threads < 0:
            raise UserInputError(f"threads {self.threads}: must be 0 (backend default) or more")
        if self.in_flight < 1:
            raise UserInputError(f"in-flight requests {self.in_flight}: must be at least 1")
        if not self.cv_warn > 0:
            raise UserInputError(f"CV warning threshold {self.cv_warn}: must be more than 0")
        largest = max(self.batches)
        check_fits_in_memory(
            batch_memory_bytes(largest, self.in_flight), f"batch {largest} with {self.in_flight} request(s) in flight"
        )
