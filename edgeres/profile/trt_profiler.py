"""Profile a TensorRT engine: stage split with CUDA events, CUDA-graph replay, IProfiler layers, memory.

Every TensorRT call used here is in the TensorRT 10 Python API (`IExecutionContext.profiler`,
`IProfiler.report_layer_time`, `ICudaEngine.device_memory_size_v2`, `execute_async_v3`); the
stubs in typings/ let mypy check them on machines without a GPU. The per-layer pass and the device
memory are read while the timed runner is loaded (an engine's context is what they measure).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.artifacts.lineage import source_onnx
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.engine.cuda import EventTimer, copy_to_device, copy_to_host
from edgeres.engine.dims import dims_tuple
from edgeres.profile.artifact_profiler import LAYER_WARMUP_RUNS, ArtifactProfiler, BackendReadings, MeasuredBytes
from edgeres.profile.layers import LayerProfile, make_tensorrt_layer_collector, tensorrt_layer_profile
from edgeres.profile.memory import onnx_weights_bytes
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import BatchResult, StageSplit
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.profile.timing import measure_batch
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.trt_runner import EngineBindings, TensorRTRunner

if TYPE_CHECKING:
    import tensorrt as trt


class ProfilingTensorRTRunner(TensorRTRunner):
    """The TensorRT runner plus what profiling needs: per-stage CUDA-event timing and queued runs.

    It drives the context through the runner's public `bindings` and `enqueue()` only.
    """

    def _prepare(self, batch: np.ndarray) -> tuple[EngineBindings, int]:
        """Set shapes with one ordinary call and stage the input; returns the bindings and the output bytes."""
        self.infer(batch)
        bindings = self.bindings
        bindings.host_input.array.reshape(-1)[: batch.size] = batch.reshape(-1)
        context: trt.IExecutionContext = bindings.context
        out_count = int(np.prod(dims_tuple(context.get_tensor_shape(bindings.output_name))))
        return bindings, out_count * int(bindings.host_output.array.itemsize)

    def stage_times_ms(self, batch: np.ndarray, calls: int) -> list[tuple[float, float, float]]:
        """(H2D, compute, D2H) milliseconds per call, timed with CUDA events on the runner's stream."""
        bindings, out_bytes = self._prepare(batch)
        stream = bindings.stream
        timers = [EventTimer() for _ in range(3)]
        samples: list[tuple[float, float, float]] = []
        try:
            for _ in range(calls):
                timers[0].start(stream)
                copy_to_device(bindings.device_input, bindings.host_input, batch.nbytes, stream)
                timers[0].stop(stream)
                timers[1].start(stream)
                self.enqueue()
                timers[1].stop(stream)
                timers[2].start(stream)
                copy_to_host(bindings.host_output, bindings.device_output, out_bytes, stream)
                timers[2].stop(stream)
                stream.synchronize()
                h2d, compute, d2h = (t.elapsed_ms() for t in timers)
                samples.append((h2d, compute, d2h))
        finally:
            for timer in timers:
                timer.destroy()
        return samples

    def queued_fps(self, batch: np.ndarray, calls: int) -> float:
        """Frames per second with `calls` copy-in/compute/copy-out rounds queued back to back, one sync.

        This is how trtexec measures throughput: the host never waits between frames.
        """
        bindings, out_bytes = self._prepare(batch)
        stream = bindings.stream
        start = time.perf_counter()
        for _ in range(calls):
            copy_to_device(bindings.device_input, bindings.host_input, batch.nbytes, stream)
            self.enqueue()
            copy_to_host(bindings.host_output, bindings.device_output, out_bytes, stream)
        stream.synchronize()
        return frames_per_second(len(batch) * calls, time.perf_counter() - start)

    def layer_profile(self, batch: np.ndarray, runs: int, warmup: int) -> LayerProfile:
        """Per-layer times from an IProfiler attached to the context (plain enqueues, no graph)."""
        import tensorrt as trt

        context: trt.IExecutionContext = self.bindings.context
        collector = make_tensorrt_layer_collector(trt)
        previous = context.profiler  # None unless one was attached (IExecutionContext.profiler)
        context.profiler = collector
        try:
            for _ in range(warmup):
                self.infer(batch)
            collector.totals_ms.clear()
            for _ in range(runs):
                self.infer(batch)
        finally:
            # detach: an attached IProfiler makes every later enqueue synchronous and report layers
            context.profiler = previous
        return tensorrt_layer_profile(collector.totals_ms, runs, len(batch))

    @property
    def device_memory_bytes(self) -> int:
        """Activation + scratch memory one execution context needs (ICudaEngine.device_memory_size_v2)."""
        engine: trt.ICudaEngine = self.bindings.engine
        return int(engine.device_memory_size_v2)


def source_onnx_weights(engine: Path) -> MeasuredBytes:
    """The weights of the ONNX the engine was built from (its sidecar names it), when that file is here."""
    sidecar = read_sidecar(engine)
    source = source_onnx(engine, sidecar) if sidecar is not None else None
    if source is not None:
        return MeasuredBytes(onnx_weights_bytes(source), f"weights of the source ONNX {source.name} (before TensorRT)")
    return MeasuredBytes(None, "not measured: the engine's source ONNX (from its sidecar) is not on this machine")


def measure_engine_batch(
    runner: ProfilingTensorRTRunner, batch_input: np.ndarray, options: ProfileOptions
) -> BatchResult:
    """Synchronous latency and queued throughput, then the stage split, then CUDA-graph replay."""
    plain = measure_batch(runner.infer, batch_input, options, queued_fps=runner.queued_fps)
    calls = plain.sync.count
    stages = np.asarray(runner.stage_times_ms(batch_input, calls))
    split = StageSplit(*(float(np.median(stages[:, i])) for i in range(3)))
    runner.cuda_graph = True
    try:
        for _ in range(max(1, options.warmup)):
            runner.infer(batch_input)
        graph_seconds = [0.0] * calls
        for i in range(calls):
            start = time.perf_counter()
            runner.infer(batch_input)
            graph_seconds[i] = time.perf_counter() - start
    finally:
        runner.cuda_graph = False
    return replace(plain, stages=split, graph=LatencyStats.from_seconds(graph_seconds))


class TensorRTProfiler(ArtifactProfiler[ProfilingTensorRTRunner]):
    """A TensorRT engine: stages and CUDA graphs per batch; layers and device memory while the runner is loaded."""

    kind = ArtifactKind.TENSORRT
    runtime = RuntimeKind.TENSORRT
    no_gpu_source = "no NVML here (Jetson has none: read tegrastats): not measured"

    def _open_runner(self) -> ProfilingTensorRTRunner:
        return ProfilingTensorRTRunner(self.path, allow_unverified=True)  # timing, not fidelity: any engine

    def _measure_batch(self, runner: ProfilingTensorRTRunner, batch_input: np.ndarray) -> BatchResult:
        return measure_engine_batch(runner, batch_input, self.options)

    def _read_loaded(self, runner: ProfilingTensorRTRunner) -> BackendReadings:
        layer_input = self._layer_input(runner.input_spec)
        layers = None
        if layer_input is not None:
            layers = runner.layer_profile(layer_input, self.options.layer_runs, warmup=LAYER_WARMUP_RUNS)
        activation = MeasuredBytes(
            runner.device_memory_bytes,
            "TensorRT ICudaEngine.device_memory_size_v2 (activations + scratch per context)",
        )
        return BackendReadings("TensorRT", layers, activation)

    def _weights(self) -> MeasuredBytes:
        return source_onnx_weights(self.path)
