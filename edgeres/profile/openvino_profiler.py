"""Profile an ONNX model on OpenVINO's CPU device, as `edgeres camera --runtime openvino` runs it.

Timing uses the runner the camera loop uses (latency hint, float layers in f32), with one infer request per
calling thread: a request runs one call at a time, and the pipelined measurement calls from a thread pool. The
per-layer pass compiles the model again with OpenVINO's performance counters on, after the timed runner has
closed and the host peak RSS was read. OpenVINO reports no activation memory: it is not measured.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import numpy as np

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.artifacts.tensors import TensorSpec
from edgeres.profile.artifact_profiler import (
    LAYER_WARMUP_RUNS,
    ArtifactProfiler,
    BackendReadings,
    MeasuredBytes,
)
from edgeres.profile.layers import profile_openvino_layers
from edgeres.profile.onnx_profiler import onnx_weights
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import DEVICE, OpenVinoRunner

NO_ACTIVATION = MeasuredBytes(None, "not measured (OpenVINO reports no activation memory)")


class ConcurrentOpenVinoRunner(OpenVinoRunner):
    """The OpenVINO runner whose calls may overlap: each thread infers on a request of its own, made on its first
    call from the one compiled model (the loading thread keeps the runner's request)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._requests = threading.local()

    def _load_impl(self) -> TensorSpec:
        spec = super()._load_impl()
        self._requests.request = self._request
        return spec

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        return self._run(request, batch)

    def _close_impl(self) -> None:
        super()._close_impl()
        self._requests = threading.local()


class OpenVinoProfiler(ArtifactProfiler[ConcurrentOpenVinoRunner]):
    """An ONNX model on OpenVINO: named by device, hint and float precision; layers after the runner closed."""

    kind = ArtifactKind.ONNX
    runtime = RuntimeKind.OPENVINO

    def _open_runner(self) -> ConcurrentOpenVinoRunner:
        return ConcurrentOpenVinoRunner(self.path, threads=self.options.threads)

    def _read_loaded(self, runner: ConcurrentOpenVinoRunner) -> BackendReadings:
        return BackendReadings(
            f"openvino {DEVICE} ({runner.hint.value} hint, {runner.inference_precision} floats)",
            activation=NO_ACTIVATION,
        )

    def _read_closed(self, readings: BackendReadings, spec: TensorSpec) -> BackendReadings:
        layer_input = self._layer_input(spec)
        if layer_input is None:
            return readings
        options = self.options
        layers = profile_openvino_layers(self.path, layer_input, options.layer_runs, LAYER_WARMUP_RUNS, options.threads)
        return replace(readings, layers=layers)

    def _weights(self) -> MeasuredBytes:
        return onnx_weights(self.path)
