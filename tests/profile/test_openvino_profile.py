"""Profiling on OpenVINO (real OpenVINO, tiny models built here): the same steps and report as onnxruntime's,
the runtime named in every row, and the refusals of a runtime that cannot run a file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto
from rich.console import Console
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.flow.orchestrator import build
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.profile.dispatch import profile_artifacts
from edgeres.profile.openvino_profiler import ConcurrentOpenVinoRunner
from edgeres.profile.options import FrameClip, ProfileOptions
from edgeres.profile.report import all_tables, validate_report
from edgeres.profile.results import PipelineMode
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import OpenVinoRunner
from edgeres.timing import RunLength
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto
from tests.flow.test_build import tiny_build_options
from tests.profile.test_profile import write_tiny_classifier, write_tiny_frame_model

OPENVINO = ProfileOptions(
    batches=(1, 4), run_length=RunLength(iterations=6), warmup=1, layer_runs=3, runtime=RuntimeKind.OPENVINO
)


@pytest.fixture()
def tiny_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    write_tiny_classifier(path)
    return path


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path_factory.mktemp("src") / "tiny_fp32.onnx", "fp32")
    folder = tmp_path_factory.mktemp("int8")
    build(tiny_build_options(source, gate=FidelityGate(min_sqnr_db=10.0)), folder)
    return folder


def test_an_onnx_profiled_on_openvino_is_named_so_with_layers_from_its_counters(tiny_onnx: Path) -> None:
    (profile,) = profile_artifacts([tiny_onnx], OPENVINO)
    assert profile.runtime is RuntimeKind.OPENVINO and profile.backend.startswith("openvino CPU (latency hint")
    assert profile.described == "tiny.onnx (fp32, openvino)"
    assert [b.batch for b in profile.batches] == [1, 4]
    for result in profile.batches:
        assert result.sync.count == 6 and result.pipelined_fps > 0 and result.pipeline_mode is PipelineMode.THREADS
    layers = profile.layers
    assert layers is not None and layers.runs == 3 and "OpenVINO performance counters" in layers.source
    assert sum(t.share for t in layers.top) == pytest.approx(1.0) and layers.total_ms > 0
    assert profile.memory.activation_bytes is None and "OpenVINO" in profile.memory.activation_source
    assert profile.memory.weights_bytes is not None and profile.memory.weights_bytes > 0


def test_two_runtimes_on_one_file_are_told_apart(tiny_onnx: Path) -> None:
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=3), warmup=0, layers=False)
    (onnxruntime,) = profile_artifacts([tiny_onnx], options)
    (openvino,) = profile_artifacts([tiny_onnx], OPENVINO)
    assert onnxruntime.runtime is RuntimeKind.ONNXRUNTIME and onnxruntime.described != openvino.described
    console = Console(record=True, width=200)
    for table in all_tables((onnxruntime, openvino)):
        console.print(table)
    text = console.export_text()
    assert "tiny.onnx (fp32, onnxruntime)" in text and "tiny.onnx (fp32, openvino)" in text


def test_the_concurrent_runner_gives_every_thread_a_request_of_its_own(tiny_onnx: Path) -> None:
    """One OpenVINO request runs one call at a time ("Infer Request is busy"): the pipelined pass needs one each."""
    batch = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with OpenVinoRunner(tiny_onnx) as plain:
        expected = plain.infer(batch)
    results: list[np.ndarray] = []
    with ConcurrentOpenVinoRunner(tiny_onnx) as runner:

        def calls() -> None:
            for _ in range(50):
                results.append(runner.infer(batch))

        threads = [threading.Thread(target=calls) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 150
    for logits in results:
        np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_two_onnx_models_on_openvino_are_interleaved_on_openvino(tmp_path: Path) -> None:
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    write_tiny_classifier(first, seed=1)
    write_tiny_classifier(second, seed=2, weight_type=TensorProto.INT8)
    options = ProfileOptions(
        batches=(1,), run_length=RunLength(iterations=14), warmup=1, layers=False, runtime=RuntimeKind.OPENVINO
    )
    profiles = profile_artifacts([first, second], options)
    assert all(p.runtime is RuntimeKind.OPENVINO and p.batches[0].interleaved is not None for p in profiles)


def test_a_camera_model_on_openvino_is_timed_end_to_end(tmp_path: Path) -> None:
    contract = InputContract(YuvLayout.YUYV, 16, 8)
    model, clip_path = tmp_path / "frames.onnx", tmp_path / "clip.yuv"
    write_tiny_frame_model(model, contract)
    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 16, 3), dtype=np.uint8)
    write_yuv(clip_path, rgb_to_yuv422(rgb, YuvLayout.YUYV), YuvLayout.YUYV)
    options = ProfileOptions(
        batches=(1,), run_length=RunLength(iterations=3), warmup=0, layers=False, runtime=RuntimeKind.OPENVINO,
        clip=FrameClip(clip_path, contract.frame_format),
    )  # fmt: skip
    (profile,) = profile_artifacts([model], options)
    assert profile.runtime is RuntimeKind.OPENVINO and profile.end_to_end is not None
    assert profile.end_to_end.frames == 3


def test_a_runtime_that_does_not_run_the_file_is_refused_before_any_run(tmp_path: Path, tiny_onnx: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(UserInputError, match=r"model\.engine: openvino does not run a TensorRT engine; tensorrt does"):
        profile_artifacts([tiny_onnx, engine], OPENVINO)
    tensorrt = ProfileOptions(run_length=RunLength(iterations=2), runtime=RuntimeKind.TENSORRT)
    refusal = r"tiny\.onnx: tensorrt does not run an ONNX model; onnxruntime or openvino does"
    with pytest.raises(UserInputError, match=refusal):
        profile_artifacts([tiny_onnx], tensorrt)


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["profile", *map(str, args)], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_cli_profile_on_openvino_writes_a_report_naming_it(tiny_onnx: Path, tmp_path: Path) -> None:
    report = tmp_path / "openvino.json"
    code, output = _cli(tiny_onnx, "--runtime", "openvino", "--iterations", "3", "--warmup", "0", "--json", report)
    assert code == 0, output
    assert "tiny.onnx (fp32, openvino)" in output and "OpenVINO performance counters" in output
    document = json.loads(report.read_text())
    validate_report(document)
    assert document["options"]["runtime"] == "openvino"
    (artifact,) = document["artifacts"]
    assert artifact["runtime"] == "openvino" and artifact["backend"].startswith("openvino CPU")
    assert document["machine"]["versions"]["openvino"]


def test_cli_profile_of_a_build_on_openvino_runs_its_qdq_model(int8_build: Path) -> None:
    code, output = _cli(int8_build, "--runtime", "openvino", "--iterations", "2", "--warmup", "0", "--no-layers")
    assert code == 0, output
    assert "model_int8_qdq.onnx (int8, openvino)" in output and "u8s8" not in output
    code, output = _cli(int8_build, "--runtime", "tensorrt")
    assert code == 2 and output.strip() == f"error: {int8_build}: this build has no model that tensorrt runs"


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ("tensorrt", "tensorrt does not run an ONNX model; onnxruntime or openvino does"),
        ("bogus", "unknown --runtime 'bogus': choose one of auto|onnxruntime|openvino|tensorrt"),
    ],
)
def test_cli_profile_refuses_a_runtime_in_one_line(tiny_onnx: Path, runtime: str, message: str) -> None:
    code, output = _cli(tiny_onnx, "--runtime", runtime)
    assert code == 2 and message in output, output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output


@pytest.mark.parametrize(
    ("runtime", "model", "shown"),
    [(RuntimeKind.OPENVINO, "model_int8_qdq.onnx", "model_int8_qdq.onnx (int8, openvino)"),
     (RuntimeKind.ONNXRUNTIME, "model_int8_u8s8.onnx", "model_int8_u8s8.onnx (int8, onnxruntime)")],
)
def test_a_build_folder_is_profiled_on_the_cpu_runtime_its_build_chose(
    int8_build: Path, tmp_path: Path, runtime: RuntimeKind, model: str, shown: str
) -> None:
    import shutil
    from dataclasses import replace

    from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
    from edgeres.runtime.cpu_choice import CPU_RUNTIME_SECTION, CpuRuntimeChoice

    folder = tmp_path / "build"
    shutil.copytree(int8_build, folder)
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    choice = CpuRuntimeChoice(runtime, model, "as measured")
    replace(summary, sections={**summary.sections, CPU_RUNTIME_SECTION: choice.to_json()}).write(folder / SUMMARY_NAME)
    code, output = _cli(folder, "--iterations", "3", "--warmup", "0", "--no-layers")
    assert code == 0, output
    other = {"model_int8_qdq.onnx": "u8s8", "model_int8_u8s8.onnx": "int8_qdq"}[model]
    assert shown in output and "(fp32, onnxruntime)" in output and other not in output
