"""Measure an artifact the way a camera application runs it: latency, throughput, layers, memory.

Two numbers are kept apart on purpose. *Synchronous latency* is one call at a time, each waiting
for its result, as a camera loop does. *Pipelined throughput* keeps several requests in flight
(threads for ONNX Runtime, queued enqueues for TensorRT) and counts frames per wall-clock second;
it is what a tool like trtexec reports, and it is higher than 1 / latency.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts import package_versions
from edgeres.errors import UserInputError
from edgeres.frames import DEFAULT_COLORSPACE, DEFAULT_RANGE, ColorRange, ColorSpace, YuvLayout
from edgeres.profile_layers import LayerProfile
from edgeres.profile_memory import FrameBytes
from edgeres.stats import DEFAULT_CV_WARN, LatencyStats, frames_per_second

MAX_BATCH = 4096
DEFAULT_ITERATIONS = 50
DEFAULT_WARMUP = 5
DEFAULT_IN_FLIGHT = 2


class ArtifactKind(Enum):
    ONNX = "onnx"
    TENSORRT = "tensorrt"


ENGINE_SUFFIXES = (".engine", ".plan")
_ONNX_SUFFIX = ".onnx"


def artifact_kind(path: Path) -> ArtifactKind:
    """ONNX or TensorRT engine, by suffix; a missing file or another type is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == _ONNX_SUFFIX:
        return ArtifactKind.ONNX
    if suffix in ENGINE_SUFFIXES:
        return ArtifactKind.TENSORRT
    raise UserInputError(f"{path}: cannot profile a '{suffix or 'no suffix'}' file (expected .onnx, .engine or .plan)")


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8,32' -> (1, 8, 32): positive, unique, kept in the given order."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise UserInputError(f"--batch '{text}': give batch sizes separated by commas, e.g. 1,8,32")
    batches: list[int] = []
    for part in parts:
        if not part.isdigit():
            raise UserInputError(f"--batch '{text}': '{part}' is not a whole number")
        value = int(part)
        if not 1 <= value <= MAX_BATCH:
            raise UserInputError(f"--batch '{text}': {value} is outside 1..{MAX_BATCH}")
        if value in batches:
            raise UserInputError(f"--batch '{text}': {value} is listed twice")
        batches.append(value)
    return tuple(batches)


@dataclass(frozen=True)
class RunLength:
    """How long each measurement runs: a fixed number of calls, or a wall-clock budget in seconds."""

    iterations: int | None = DEFAULT_ITERATIONS
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.iterations is None) == (self.seconds is None):
            raise UserInputError("give either --iterations or --duration, not both")
        if self.iterations is not None and self.iterations < 1:
            raise UserInputError(f"--iterations {self.iterations}: must be at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise UserInputError(f"--duration {self.seconds}: must be more than 0 seconds")

    def describe(self) -> str:
        return f"{self.iterations} iterations" if self.iterations is not None else f"{self.seconds:g} s"


@dataclass(frozen=True)
class FrameClip:
    """End-to-end input: a raw YUV 4:2:2 clip and how to read it (layout, colour matrix, range)."""

    path: Path
    width: int
    height: int
    layout: YuvLayout = YuvLayout.YUYV
    colorspace: ColorSpace = DEFAULT_COLORSPACE
    color_range: ColorRange = DEFAULT_RANGE
    top_k: int = 5


@dataclass(frozen=True)
class ProfileOptions:
    batches: tuple[int, ...] = (1,)
    run_length: RunLength = field(default_factory=RunLength)
    warmup: int = DEFAULT_WARMUP
    threads: int = 0  # 0: the backend's default (onnxruntime: one per physical core)
    in_flight: int = DEFAULT_IN_FLIGHT  # requests kept in flight for the pipelined measurement
    layers: bool = True  # run the separate per-layer pass
    layer_runs: int = 10
    cv_warn: float = DEFAULT_CV_WARN
    clip: FrameClip | None = None

    def __post_init__(self) -> None:
        if not self.batches:
            raise UserInputError("no batch sizes to profile")
        if self.warmup < 0:
            raise UserInputError(f"--warmup {self.warmup}: must be 0 or more")
        if self.threads < 0:
            raise UserInputError(f"--threads {self.threads}: must be 0 (backend default) or more")
        if self.in_flight < 1:
            raise UserInputError(f"in-flight requests {self.in_flight}: must be at least 1")
        if not self.cv_warn > 0:
            raise UserInputError(f"--cv-warn {self.cv_warn}: must be more than 0")


@dataclass(frozen=True)
class StageSplit:
    """TensorRT only: median milliseconds per call of each stage, timed with CUDA events."""

    h2d_ms: float
    compute_ms: float
    d2h_ms: float


class PipelineMode(Enum):
    """How the pipelined throughput was driven."""

    THREADS = "concurrent requests on a thread pool"
    STREAM_QUEUE = "all calls queued on one CUDA stream, one synchronize"


@dataclass(frozen=True)
class InterleavedLatency:
    """Synchronous latency from the interleaved comparison pass (edgeres.profile_compare): rounds that
    alternate between artifacts, so drift in CPU speed falls on all of them alike."""

    sync: LatencyStats
    rounds: int
    calls_per_round: int


@dataclass(frozen=True)
class BatchResult:
    batch: int
    sync: LatencyStats  # one call of `batch` frames at a time, waiting for each result
    sync_fps: float  # frames per second that synchronous loop achieved
    pipelined_fps: float  # frames per second with `in_flight` requests outstanding
    in_flight: int
    pipeline_mode: PipelineMode
    unstable: bool
    samples_ms: tuple[float, ...]
    stages: StageSplit | None = None
    graph: LatencyStats | None = None  # TensorRT: the same call replayed as a CUDA graph
    interleaved: InterleavedLatency | None = None  # two or more ONNX artifacts: the alternating pass


@dataclass(frozen=True)
class MemoryReport:
    artifact_bytes: int
    weights_bytes: int | None
    weights_source: str
    activation_bytes: int | None  # TensorRT: device memory size; ONNX Runtime: arena peak in use
    activation_source: str
    host_peak_rss_bytes: int
    host_rss_source: str
    gpu_peak_bytes: int | None
    gpu_source: str
    frame: FrameBytes


@dataclass(frozen=True)
class EndToEndResult:
    """Raw frame in, top-k out: each stage's latency per frame (batch 1) and the total."""

    clip: str
    frames: int
    read: LatencyStats
    preprocess: LatencyStats
    infer: LatencyStats
    postprocess: LatencyStats
    total: LatencyStats
    fps: float
    top1_first_frame: int


@dataclass(frozen=True)
class ArtifactProfile:
    path: str
    kind: ArtifactKind
    backend: str
    precision: str | None
    input_name: str
    input_shape: tuple[int | None, ...]
    batches: tuple[BatchResult, ...]
    layers: LayerProfile | None
    memory: MemoryReport
    end_to_end: EndToEndResult | None
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class MachineInfo:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    cpu_max_mhz: float | None
    platform: str
    gpu: dict[str, Any] | None
    versions: dict[str, str | None]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_max_mhz() -> float | None:
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError):
        return None


def machine_info() -> MachineInfo:
    """The CPU, GPU (through NVML where present), thread counts and package versions of this run."""
    from edgeres.profile_memory import gpu_description

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return MachineInfo(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable,
        cpu_max_mhz=_cpu_max_mhz(),
        platform=platform.platform(),
        gpu=gpu_description(),
        versions=package_versions("onnxruntime", "onnx", "numpy", "tensorrt", "cuda-python"),
    )


def timed_calls(call: Callable[[], object], run_length: RunLength) -> np.ndarray:
    """Seconds per call of `call`, one after the other, for the given count or time budget."""
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + run_length.seconds if run_length.seconds is not None else None
    while True:
        start = clock()
        call()
        end = clock()
        samples.append(end - start)
        if deadline is None:
            if len(samples) >= (run_length.iterations or 1):
                break
        elif end >= deadline:
            break
    return np.asarray(samples)


def pipelined_fps(call: Callable[[], object], frames_per_call: int, calls: int, in_flight: int) -> float:
    """Frames per second with `in_flight` calls running concurrently on a thread pool.

    ONNX Runtime releases the GIL inside `run`, so the calls really overlap.
    """
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="edgeres-pipe") as pool:
        start = time.perf_counter()
        futures = [pool.submit(call) for _ in range(calls)]
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - start
    return frames_per_second(frames_per_call * len(futures), elapsed)


def input_batch(shape: Sequence[int | None], dtype: np.dtype[Any], batch: int, artifact: Path) -> np.ndarray:
    """A seeded input of the model's shape with batch `batch` (timing does not depend on the values)."""
    fixed_batch = shape[0]
    if fixed_batch is not None and fixed_batch != batch:
        raise UserInputError(f"{artifact}: the model takes batch {fixed_batch} only, so --batch {batch} cannot run")
    if any(d is None for d in shape[1:]):
        raise UserInputError(f"{artifact}: input shape {list(shape)} has free non-batch axes; profile needs them fixed")
    full = (batch, *(int(d) for d in shape[1:] if d is not None))
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=full, endpoint=True).astype(dtype)
    return rng.standard_normal(full).astype(dtype)


def measure_batch(
    infer: Callable[[np.ndarray], object],
    batch_input: np.ndarray,
    options: ProfileOptions,
    queued_fps: Callable[[np.ndarray, int], float] | None = None,
) -> BatchResult:
    """Warm up, then synchronous latency, then pipelined throughput over the same number of calls.

    `queued_fps(batch, calls)` replaces the thread pool where a backend queues work itself (CUDA).
    """
    batch = int(batch_input.shape[0])
    for _ in range(options.warmup):
        infer(batch_input)
    seconds = timed_calls(lambda: infer(batch_input), options.run_length)
    sync = LatencyStats.from_seconds(seconds)
    calls = max(len(seconds), options.in_flight)
    if queued_fps is None:
        mode, in_flight = PipelineMode.THREADS, options.in_flight
        piped = pipelined_fps(lambda: infer(batch_input), batch, calls, in_flight)
    else:
        mode, in_flight = PipelineMode.STREAM_QUEUE, calls
        piped = queued_fps(batch_input, calls)
    return BatchResult(
        batch=batch,
        sync=sync,
        sync_fps=frames_per_second(batch * len(seconds), float(seconds.sum())),
        pipelined_fps=piped,
        in_flight=in_flight,
        pipeline_mode=mode,
        unstable=sync.is_unstable(options.cv_warn),
        samples_ms=tuple(float(s * 1e3) for s in seconds),
    )


def frame_bytes_for(shape: Sequence[int | None], options: ProfileOptions) -> FrameBytes:
    """Bytes per frame at the clip's size (end-to-end mode) or else at the network's input size."""
    image_input = len(shape) == 4 and all(isinstance(d, int) for d in shape[1:])
    chw = (int(shape[1] or 0), int(shape[2] or 0), int(shape[3] or 0)) if image_input else None
    if options.clip is not None:
        return FrameBytes.for_frame(options.clip.width, options.clip.height, chw)
    if chw is None:
        raise UserInputError(f"input shape {list(shape)} is not [N, C, H, W]: give the camera size with --from-frames")
    return FrameBytes.for_frame(chw[2], chw[1], chw)


def unstable_warning(path: Path, result: BatchResult, threshold: float) -> str:
    return (
        f"{path.name} batch {result.batch}: latency varies by CV {result.sync.cv:.0%} (> {threshold:.0%}); "
        "other load, frequency scaling or throttling - rerun on an idle machine or with --duration"
    )


def artifact_precision(path: Path) -> str | None:
    """fp32/fp16/int8 of an artifact, by engine.onnx_precision: the sidecar's, else (ONNX) read from the graph.

    A TensorRT engine without a recorded precision is not parsed as ONNX: None (unknown).
    """
    from edgeres.artifacts import read_sidecar
    from edgeres.engine import onnx_precision

    recorded = ((read_sidecar(path) or {}).get("options") or {}).get("precision")
    if artifact_kind(path) is ArtifactKind.TENSORRT and recorded is None:
        return None
    return onnx_precision(path).value


def profile_artifact(path: Path, options: ProfileOptions) -> ArtifactProfile:
    """Profile one artifact with the backend its type calls for."""
    kind = artifact_kind(path)
    if kind is ArtifactKind.ONNX:
        from edgeres.profile_onnx import profile_onnx

        return profile_onnx(Path(path), options)
    from edgeres.profile_trt import profile_engine

    return profile_engine(Path(path), options)


def profile_artifacts(paths: Sequence[Path], options: ProfileOptions) -> tuple[ArtifactProfile, ...]:
    """Check every path first (a typo in the last one should not cost a long run), then profile each.

    With two or more ONNX artifacts, an interleaved pass follows for a drift-resistant comparison."""
    from edgeres.profile_compare import add_interleaved

    if not paths:
        raise UserInputError("no artifact to profile")
    for path in paths:
        artifact_kind(path)
    return add_interleaved(tuple(profile_artifact(Path(p), options) for p in paths), options)


@dataclass(frozen=True)
class QuickProfile:
    """The short profile `edgeres build` prints after writing an artifact."""

    profile: ArtifactProfile

    def describe(self) -> str:
        first = self.profile.batches[0]
        memory = self.profile.memory
        text = (
            f"{Path(self.profile.path).name} on {self.profile.backend}: batch {first.batch} median "
            f"{first.sync.median_ms:.2f} ms, p99 {first.sync.p99_ms:.2f} ms ({first.sync_fps:.1f} frames/s "
            f"synchronous), {memory.artifact_bytes / 1e6:.1f} MB on disk"
        )
        return text + ("; unstable run, see `edgeres profile`" if first.unstable else "")


def quick_profile(path: Path, iterations: int = 20) -> QuickProfile:
    """Batch 1, a few iterations, no per-layer pass: a first idea of speed right after a build."""
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=iterations), warmup=3, layers=False)
    return QuickProfile(profile_artifact(Path(path), options))
