"""Profiling a real TensorRT engine: stage split, CUDA-graph replay, IProfiler layers, device memory.

Run on a machine with TensorRT and a GPU:  .venv/bin/python -m pytest tests/gpu -v
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.engine.builder import build_engine
from edgeres.engine.options import BatchProfile, EngineOptions
from edgeres.errors import EdgeresError
from edgeres.profile.dispatch import profile_artifacts
from edgeres.profile.machine import machine_info
from edgeres.profile.options import ProfileOptions
from edgeres.profile.report import report_json, validate_report
from edgeres.profile.results import PipelineMode
from edgeres.profile.trt_profiler import ProfilingTensorRTRunner
from edgeres.quantize.fp16 import to_fp16
from edgeres.timing import RunLength
from tests.runtime.test_runtime import small_classifier


@pytest.fixture(scope="module")
def fp16_engine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("profile_gpu")
    onnx_path = folder / "small_fp16.onnx"
    onnx.save(to_fp16(small_classifier()), str(onnx_path))
    write_sidecar(onnx_path, "quantize", {}, {"precision": "fp16"})
    engine = folder / "small_fp16.engine"
    build_engine(onnx_path, engine, EngineOptions(batch=BatchProfile(1, 4, 8)))
    return engine


def test_engine_profile_has_gpu_numbers(fp16_engine: Path) -> None:
    options = ProfileOptions(batches=(1, 8), run_length=RunLength(iterations=20), warmup=3, layer_runs=5)
    (profile,) = profile_artifacts([fp16_engine], options)
    assert profile.kind is ArtifactKind.TENSORRT and profile.precision == "fp16"
    for result in profile.batches:
        assert result.stages is not None and result.graph is not None
        assert result.stages.compute_ms > 0 and result.stages.h2d_ms > 0 and result.stages.d2h_ms > 0
        assert result.pipeline_mode is PipelineMode.STREAM_QUEUE and result.pipelined_fps > 0
        # the host-timed call includes both copies and the compute the events measured
        assert result.sync.median_ms >= result.stages.compute_ms
    assert profile.layers is not None and profile.layers.source == "TensorRT IProfiler"
    assert profile.layers.layer_count >= 1 and profile.layers.total_ms > 0
    assert profile.memory.activation_bytes is not None and profile.memory.activation_bytes >= 0
    validate_report(report_json((profile,), options, machine_info()))


def test_profiling_runner_sees_the_engine_through_its_bindings(fp16_engine: Path) -> None:
    runner = ProfilingTensorRTRunner(fp16_engine)
    with runner:
        bindings = runner.bindings
        assert bindings.input_name == runner.input_spec.name and bindings.output_name != bindings.input_name
        assert bindings.host_input.array.dtype == runner.input_spec.dtype
        assert bindings.host_input.array.shape[0] == 8  # sized for the profile's largest batch
        assert runner.device_memory_bytes == int(bindings.engine.device_memory_size_v2)
    with pytest.raises(EdgeresError, match="bindings"):
        _ = runner.bindings
