"""Profile a TensorRT engine: stage split with CUDA events, CUDA-graph replay, IProfiler layers, memory.

Every TensorRT call used here is in the TensorRT 10 Python API (`IExecutionContext.profiler`,
`IProfiler.report_layer_time`, `ICudaEngine.device_memory_size_v2`, `execute_async_v3`); the
stubs in typings/ let mypy check them on machines without a GPU.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.artifacts.lineage import source_onnx
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import EdgeresError
from edgeres.profile.dispatch import artifact_precision
from edgeres.profile.layers import LayerProfile, make_tensorrt_layer_collector, tensorrt_layer_profile
from edgeres.profile.memory import GpuMemorySampler, onnx_weights_bytes, peak_rss_bytes, reset_peak_rss
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile, BatchResult, MemoryReport, StageSplit
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.profile.timing import frame_bytes_for, input_batch, measure_batch
from edgeres.runtime.trt_runner import TensorRTRunner


class ProfilingTensorRTRunner(TensorRTRunner):
    """The TensorRT runner plus what profiling needs: per-stage CUDA-event timing and queued runs."""

    def _io(self) -> tuple[Any, Any, Any, Any]:
        from edgeres.engine.cuda import DeviceBuffer, PinnedArray

        host_in, dev_in, host_out, dev_out = self._buffers
        assert isinstance(host_in, PinnedArray) and isinstance(host_out, PinnedArray)
        assert isinstance(dev_in, DeviceBuffer) and isinstance(dev_out, DeviceBuffer)
        return host_in, dev_in, host_out, dev_out

    def _prepare(self, batch: np.ndarray) -> int:
        """Set shapes with one ordinary call and stage the input; returns the output bytes."""
        from edgeres.engine.dims import dims_tuple

        self.infer(batch)
        host_in, _, host_out, _ = self._io()
        host_in.array.reshape(-1)[: batch.size] = batch.reshape(-1)
        assert self._context is not None
        out_count = int(np.prod(dims_tuple(self._context.get_tensor_shape(self._names[1]))))
        return out_count * int(host_out.array.itemsize)

    def stage_times_ms(self, batch: np.ndarray, calls: int) -> list[tuple[float, float, float]]:
        """(H2D, compute, D2H) milliseconds per call, timed with CUDA events on the runner's stream."""
        from edgeres.engine.cuda import EventTimer, copy_to_device, copy_to_host

        out_bytes = self._prepare(batch)
        host_in, dev_in, host_out, dev_out = self._io()
        stream = self._stream
        assert stream is not None
        timers = [EventTimer() for _ in range(3)]
        samples: list[tuple[float, float, float]] = []
        try:
            for _ in range(calls):
                timers[0].start(stream)
                copy_to_device(dev_in, host_in, batch.nbytes, stream)
                timers[0].stop(stream)
                timers[1].start(stream)
                self._enqueue()
                timers[1].stop(stream)
                timers[2].start(stream)
                copy_to_host(host_out, dev_out, out_bytes, stream)
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
        from edgeres.engine.cuda import copy_to_device, copy_to_host

        out_bytes = self._prepare(batch)
        host_in, dev_in, host_out, dev_out = self._io()
        stream = self._stream
        assert stream is not None
        start = time.perf_counter()
        for _ in range(calls):
            copy_to_device(dev_in, host_in, batch.nbytes, stream)
            self._enqueue()
            copy_to_host(host_out, dev_out, out_bytes, stream)
        stream.synchronize()
        return frames_per_second(len(batch) * calls, time.perf_counter() - start)

    def layer_profile(self, batch: np.ndarray, runs: int, warmup: int) -> LayerProfile:
        """Per-layer times from an IProfiler attached to the context (plain enqueues, no graph)."""
        import tensorrt as trt

        context = self._context
        assert context is not None
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
        if self._engine is None:
            raise EdgeresError(f"{self.name}: load() the runner before asking for its device memory")
        return int(self._engine.device_memory_size_v2)


def _source_onnx_weights(engine: Path) -> tuple[int | None, str]:
    sidecar = read_sidecar(engine)
    source = source_onnx(engine, sidecar) if sidecar is not None else None
    if source is not None:
        return onnx_weights_bytes(source), f"weights of the source ONNX {source.name} (before TensorRT)"
    return None, "not measured: the engine's source ONNX (from its sidecar) is not on this machine"


def _measure_engine_batch(
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


def profile_engine(path: Path, options: ProfileOptions) -> ArtifactProfile:
    from edgeres.profile.timing import time_runner

    rss_reset = reset_peak_rss()
    runner = ProfilingTensorRTRunner(path)
    with GpuMemorySampler() as gpu, runner:
        spec = runner.input_spec
        timed = time_runner(runner, path, options, lambda batch: _measure_engine_batch(runner, batch, options))
        layers = None
        if options.layers:
            layer_input = input_batch(spec.shape, spec.dtype, options.batches[0], path)
            layers = runner.layer_profile(layer_input, options.layer_runs, warmup=2)
        device_memory = runner.device_memory_bytes
    weights, weights_source = _source_onnx_weights(path)
    memory = MemoryReport(
        artifact_bytes=path.stat().st_size,
        weights_bytes=weights,
        weights_source=weights_source,
        activation_bytes=device_memory,
        activation_source="TensorRT ICudaEngine.device_memory_size_v2 (activations + scratch per context)",
        host_peak_rss_bytes=peak_rss_bytes(),
        host_rss_source="VmHWM of this process during load and timing" + ("" if rss_reset else " (not reset)"),
        gpu_peak_bytes=gpu.peak_bytes,
        gpu_source="NVML device memory used, sampled every 10 ms"
        if gpu.available
        else "no NVML here (Jetson has none: read tegrastats): not measured",
        frame=frame_bytes_for(spec.shape, options),
    )
    return ArtifactProfile(
        path=str(path),
        kind=ArtifactKind.TENSORRT,
        backend="TensorRT",
        precision=artifact_precision(path),
        input_name=spec.name,
        input_shape=spec.shape,
        batches=timed.batches,
        layers=layers,
        memory=memory,
        end_to_end=timed.end_to_end,
        warnings=timed.warnings,
    )

