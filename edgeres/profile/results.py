"""Measure an artifact the way a camera application runs it: latency, throughput, layers, memory.

Two numbers are kept apart on purpose. *Synchronous latency* is one call at a time, each waiting
for its result, as a camera loop does. *Pipelined throughput* keeps several requests in flight
(threads for ONNX Runtime and OpenVINO, queued enqueues for TensorRT) and counts frames per wall-clock second;
it is what a tool like trtexec reports, and it is higher than 1 / latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.profile.layers import LayerProfile
from edgeres.profile.memory import FrameBytes
from edgeres.profile.stats import LatencyStats
from edgeres.runtime.kinds import RuntimeKind


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
    runtime: RuntimeKind  # the runtime that ran it (never AUTO): one file on two runtimes is two profiles
    backend: str  # that runtime in detail (execution providers, hint, precision)
    precision: str | None
    input_name: str
    input_shape: tuple[int | None, ...]
    batches: tuple[BatchResult, ...]
    layers: LayerProfile | None
    memory: MemoryReport
    end_to_end: EndToEndResult | None
    warnings: tuple[str, ...]
    label: str = ""  # how tables and plots name it: its shortest path that tells it from the others profiled

    @property
    def shown_name(self) -> str:
        return self.label or Path(self.path).name

    @property
    def described(self) -> str:
        """How table rows and plot legends name it: `model_int8_qdq.onnx (int8, openvino)`, so two runs of one
        file on two runtimes are told apart."""
        details = ", ".join(d for d in (self.precision, self.runtime.value) if d)
        return f"{self.shown_name} ({details})"
