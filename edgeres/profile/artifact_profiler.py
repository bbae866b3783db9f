"""The steps every back-end's profile takes, once: `ArtifactProfiler.profile()` and the hooks it calls.

A back-end (onnx_profiler, openvino_profiler, trt_profiler) names its runtime and says how to open its runner,
how to time one batch, what it reads from the loaded runner and what it measures apart from it; the order of
the steps, which gives host peak RSS and GPU memory their meaning, is kept here:

1. reset the host's peak RSS, then open the runner inside a GPU memory sampler;
2. time every batch size (and the clip end to end: its frames given, or opened here) on the loaded runner;
3. `_read_loaded`: what needs the loaded runner (TensorRT: its per-layer pass and device memory);
4. close the runner, then read the host peak RSS, so it covers loading, timing and step 3;
5. `_read_closed`: what must not count in that peak (ONNX Runtime, OpenVINO: the per-layer pass in a
   profiling session of its own);
6. assemble the MemoryReport and the ArtifactProfile.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import numpy as np

from edgeres.artifacts.kinds import ArtifactKind, artifact_kind
from edgeres.artifacts.precision import onnx_precision, recorded_precision
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.artifacts.tensors import TensorSpec
from edgeres.profile.end_to_end import ClipFrames, open_clip
from edgeres.profile.layers import LayerProfile
from edgeres.profile.memory import GpuMemorySampler, peak_rss_bytes, reset_peak_rss
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile, BatchResult, MemoryReport
from edgeres.profile.timing import frame_bytes_for, input_batch, measure_batch, time_runner
from edgeres.runtime.base import Runner
from edgeres.runtime.kinds import RuntimeKind

LAYER_WARMUP_RUNS = 2  # untimed calls before the per-layer pass's profiled runs
HOST_RSS_SOURCE = "VmHWM of this process during load and timing"
RSS_NOT_RESET_WARNING = "peak RSS could not be reset per artifact: it is the whole process's peak"
RunnerT = TypeVar("RunnerT", bound=Runner)


def artifact_precision(path: Path) -> str | None:
    """fp32/fp16/int8 of an artifact: the sidecar's recorded precision, else (ONNX) read from the graph.

    A TensorRT engine without a recorded precision is not parsed as ONNX: None (unknown).
    """
    sidecar = read_sidecar(path)
    recorded = recorded_precision(sidecar) if sidecar is not None else None
    if recorded is None and artifact_kind(path) is ArtifactKind.TENSORRT:
        return None
    return (recorded or onnx_precision(path)).value


def gpu_source(sampler: GpuMemorySampler) -> str:
    return f"NVML device memory used, sampled every {sampler.interval_s * 1e3:g} ms"


@dataclass(frozen=True)
class MeasuredBytes:
    """A byte count and how it was obtained; None when it could not be measured here."""

    value: int | None
    source: str


NOT_MEASURED = MeasuredBytes(None, "not measured")


@dataclass(frozen=True)
class BackendReadings:
    """What a back-end measures besides the timing passes: its name, per-layer times, activation memory."""

    backend: str
    layers: LayerProfile | None = None
    activation: MeasuredBytes = NOT_MEASURED


class ArtifactProfiler(ABC, Generic[RunnerT]):
    """Profile one artifact with one back-end: `profile()` runs the steps, subclasses fill in the hooks.

    A subclass names the file kind it takes and its runtime. Hooks: `_open_runner` and `_weights` (required),
    `_read_loaded` (required: at least the back-end's name), `_measure_batch` (default: the shared synchronous +
    thread-pool measurement) and `_read_closed` (default: nothing more).
    """

    kind: ClassVar[ArtifactKind]
    runtime: ClassVar[RuntimeKind]
    no_gpu_source: ClassVar[str] = "no NVML here: not measured"

    def __init__(self, path: Path, options: ProfileOptions, clip_frames: ClipFrames | None = None) -> None:
        self.path = Path(path)
        self.options = options
        self.clip_frames = clip_frames

    def profile(self) -> ArtifactProfile:
        path, options = self.path, self.options
        rss_reset = reset_peak_rss()
        runner = self._open_runner()
        with GpuMemorySampler() as gpu, runner, self._clip() as clip_frames:
            spec = runner.input_spec
            timed = time_runner(runner, path, options, lambda batch: self._measure_batch(runner, batch), clip_frames)
            readings = self._read_loaded(runner)
        host_peak = peak_rss_bytes()
        readings = self._read_closed(readings, spec)
        weights = self._weights()
        memory = MemoryReport(
            artifact_bytes=path.stat().st_size,
            weights_bytes=weights.value,
            weights_source=weights.source,
            activation_bytes=readings.activation.value,
            activation_source=readings.activation.source,
            host_peak_rss_bytes=host_peak,
            host_rss_source=HOST_RSS_SOURCE + ("" if rss_reset else " (not reset)"),
            gpu_peak_bytes=gpu.peak_bytes,
            gpu_source=gpu_source(gpu) if gpu.available else self.no_gpu_source,
            frame=frame_bytes_for(spec.shape, options),
        )
        warnings = timed.warnings if rss_reset else (*timed.warnings, RSS_NOT_RESET_WARNING)
        return ArtifactProfile(
            path=str(path),
            kind=self.kind,
            runtime=self.runtime,
            backend=readings.backend,
            precision=artifact_precision(path),
            input_name=spec.name,
            input_shape=spec.shape,
            batches=timed.batches,
            layers=readings.layers,
            memory=memory,
            end_to_end=timed.end_to_end,
            warnings=warnings,
        )

    def runner(self) -> RunnerT:
        """A new, not yet loaded runner as `profile()` opens it (the comparison pass holds one per artifact)."""
        return self._open_runner()

    def _clip(self) -> AbstractContextManager[ClipFrames | None]:
        """The clip's frames: those given (a stream several artifacts share), else the clip opened for this one."""
        if self.clip_frames is not None or self.options.clip is None:
            return nullcontext(self.clip_frames)
        return open_clip(self.options.clip)

    def _layer_input(self, spec: TensorSpec) -> np.ndarray | None:
        """The per-layer pass's input (the first batch size), or None when the pass is off."""
        if not self.options.layers:
            return None
        return input_batch(spec.shape, spec.dtype, self.options.batches[0], self.path)

    @abstractmethod
    def _open_runner(self) -> RunnerT:
        """A new, not yet loaded runner for `self.path` (`profile()` loads and closes it)."""

    def _measure_batch(self, runner: RunnerT, batch_input: np.ndarray) -> BatchResult:
        """One batch size's measurement on the loaded runner."""
        return measure_batch(runner.infer, batch_input, self.options)

    @abstractmethod
    def _read_loaded(self, runner: RunnerT) -> BackendReadings:
        """After the timing passes, before the runner closes and the host peak RSS is read."""

    def _read_closed(self, readings: BackendReadings, spec: TensorSpec) -> BackendReadings:
        """After the runner closed and the host peak RSS was read; `readings` are `_read_loaded`'s."""
        return readings

    @abstractmethod
    def _weights(self) -> MeasuredBytes:
        """The model's weight bytes and where they were read."""
