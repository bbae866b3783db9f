"""Profile an ONNX model with ONNX Runtime (CPU here; the CUDA execution provider where installed)."""

from __future__ import annotations

from pathlib import Path

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.profile.dispatch import artifact_precision
from edgeres.profile.layers import profile_onnx_layers
from edgeres.profile.memory import GpuMemorySampler, onnx_weights_bytes, peak_rss_bytes, reset_peak_rss
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile, MemoryReport
from edgeres.profile.timing import frame_bytes_for, input_batch, measure_batch
from edgeres.runtime.ort_runner import OnnxRuntimeRunner

LAYER_WARMUP_RUNS = 2


def profile_onnx(path: Path, options: ProfileOptions) -> ArtifactProfile:
    from edgeres.profile.timing import time_runner

    rss_reset = reset_peak_rss()
    runner = OnnxRuntimeRunner(path, threads=options.threads)
    with GpuMemorySampler() as gpu, runner:
        spec = runner.input_spec
        timed = time_runner(runner, path, options, lambda batch: measure_batch(runner.infer, batch, options))
        backend = "onnxruntime " + "+".join(p.removesuffix("ExecutionProvider") for p in runner.providers)
    host_peak = peak_rss_bytes()
    warnings = list(timed.warnings)
    if not rss_reset:
        warnings.append("peak RSS could not be reset per artifact: it is the whole process's peak")

    layers = None
    if options.layers:
        layer_input = input_batch(spec.shape, spec.dtype, options.batches[0], path)
        layers = profile_onnx_layers(path, layer_input, options.layer_runs, LAYER_WARMUP_RUNS, options.threads)
    if layers is not None and layers.arena_peak_bytes is not None:
        activation: int | None = layers.arena_peak_bytes
        activation_source = (
            f"onnxruntime CPU arena: peak bytes in use at batch {layers.batch} (from its profiler; "
            f"arena reserved {layers.arena_held_bytes} bytes)"
        )
    elif layers is None:
        activation, activation_source = None, "not measured (the per-layer pass, which reads the arena, was off)"
    else:
        activation, activation_source = None, "not measured (this onnxruntime's profiler reports no arena figures)"

    frame = frame_bytes_for(spec.shape, options)
    memory = MemoryReport(
        artifact_bytes=path.stat().st_size,
        weights_bytes=onnx_weights_bytes(path),
        weights_source="ONNX initializers and constants at their stored element type",
        activation_bytes=activation,
        activation_source=activation_source,
        host_peak_rss_bytes=host_peak,
        host_rss_source="VmHWM of this process during load and timing" + ("" if rss_reset else " (not reset)"),
        gpu_peak_bytes=gpu.peak_bytes,
        gpu_source="NVML device memory used, sampled every 10 ms" if gpu.available else "no NVML here: not measured",
        frame=frame,
    )
    return ArtifactProfile(
        path=str(path),
        kind=ArtifactKind.ONNX,
        backend=backend,
        precision=artifact_precision(path),
        input_name=spec.name,
        input_shape=spec.shape,
        batches=timed.batches,
        layers=layers,
        memory=memory,
        end_to_end=timed.end_to_end,
        warnings=tuple(warnings),
    )

