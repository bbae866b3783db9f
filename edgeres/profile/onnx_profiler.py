"""Profile an ONNX model with ONNX Runtime (CPU here; the CUDA execution provider where installed).

The per-layer pass runs in a profiling session of its own after the timed runner has closed and the
host peak RSS was read: the profiler's session and its trace do not count in the timed run's peak.
Activation memory is the CPU arena's peak in use, which that profiler reports.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.artifacts.tensors import TensorSpec
from edgeres.profile.artifact_profiler import LAYER_WARMUP_RUNS, ArtifactProfiler, BackendReadings, MeasuredBytes
from edgeres.profile.layers import LayerProfile, profile_onnx_layers
from edgeres.profile.memory import onnx_weights_bytes
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.ort_runner import OnnxRuntimeRunner


def onnx_weights(path: Path) -> MeasuredBytes:
    """An ONNX model's weight bytes, whichever runtime runs it."""
    return MeasuredBytes(onnx_weights_bytes(path), "ONNX initializers and constants at their stored element type")


def arena_activation(layers: LayerProfile | None) -> MeasuredBytes:
    """Activation memory as the per-layer pass read it from ONNX Runtime's CPU arena."""
    if layers is None:
        return MeasuredBytes(None, "not measured (the per-layer pass, which reads the arena, was off)")
    if layers.arena_peak_bytes is None:
        return MeasuredBytes(None, "not measured (this onnxruntime's profiler reports no arena figures)")
    return MeasuredBytes(
        layers.arena_peak_bytes,
        f"onnxruntime CPU arena: peak bytes in use at batch {layers.batch} (from its profiler; "
        f"arena reserved {layers.arena_held_bytes} bytes)",
    )


class OnnxRuntimeProfiler(ArtifactProfiler[OnnxRuntimeRunner]):
    """An ONNX model on ONNX Runtime: named by its execution providers; layers and arena after the runner closed."""

    kind = ArtifactKind.ONNX
    runtime = RuntimeKind.ONNXRUNTIME

    def _open_runner(self) -> OnnxRuntimeRunner:
        return OnnxRuntimeRunner(self.path, threads=self.options.threads)

    def _read_loaded(self, runner: OnnxRuntimeRunner) -> BackendReadings:
        return BackendReadings("onnxruntime " + "+".join(p.removesuffix("ExecutionProvider") for p in runner.providers))

    def _read_closed(self, readings: BackendReadings, spec: TensorSpec) -> BackendReadings:
        layer_input = self._layer_input(spec)
        layers = None
        if layer_input is not None:
            options = self.options
            layers = profile_onnx_layers(self.path, layer_input, options.layer_runs, LAYER_WARMUP_RUNS, options.threads)
        return replace(readings, layers=layers, activation=arena_activation(layers))

    def _weights(self) -> MeasuredBytes:
        return onnx_weights(self.path)
