"""`edgeres camera` on OpenVINO: named with --runtime, or read from the build's recorded CPU runtime.

The build is a real INT8 camera build (a tiny classifier behind the YUYV front-end at 64x48, as `edgeres build
--input yuyv:64x48` makes it) and OpenVINO runs for real; its absence is simulated by making `import openvino`
fail.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.camera.model import CameraModel, choose_model
from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.flow.orchestrator import build
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.frontend.graph import attach_frontend
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.cpu_choice import CPU_RUNTIME_SECTION, CpuRuntimeChoice
from edgeres.runtime.kinds import RuntimeKind
from tests.fixtures.tiny_classifier import TINY_SIZE, save_with_sidecar, tiny_classifier_proto
from tests.flow.test_build import tiny_build_options

CLASSES = 10
CONTRACT = InputContract(YuvLayout.YUYV, width=64, height=48, size=TINY_SIZE)


@pytest.fixture(scope="module")
def yuyv_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An INT8 build of a YUYV 64x48 camera model: its Q/DQ model, U8S8 twin and held-out set, no engine."""
    fused = attach_frontend(tiny_classifier_proto(CLASSES), CONTRACT)
    source = tmp_path_factory.mktemp("src") / "tiny_yuyv_fp32.onnx"
    save_with_sidecar(fused, source, "fp32", input_contract=CONTRACT.to_dict())
    folder = tmp_path_factory.mktemp("yuyv")
    build(tiny_build_options(source, gate=FidelityGate(min_sqnr_db=10.0)), folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.yuyv"
    rgb = np.random.default_rng(0).integers(0, 256, (3, CONTRACT.height, CONTRACT.width, 3), dtype=np.uint8)
    write_yuv(path, rgb_to_yuv422(rgb, YuvLayout.YUYV), YuvLayout.YUYV)
    return path


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "classes.txt"
    path.write_text("".join(f"class {i}\n" for i in range(CLASSES)))
    return path


def recording_openvino(folder: Path, target: Path, model: str = "model_int8_qdq.onnx") -> Path:
    """A copy of the build whose summary records OpenVINO as its CPU runtime, as the build does where it won."""
    shutil.copytree(folder, target)
    summary = BuildSummary.read(target / SUMMARY_NAME)
    choice = CpuRuntimeChoice(RuntimeKind.OPENVINO, model, "faster than onnxruntime, fidelity passed")
    replace(summary, sections={**summary.sections, CPU_RUNTIME_SECTION: choice.to_json()}).write(target / SUMMARY_NAME)
    return target


def camera(model: Path, clip: Path, labels: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["camera", str(model), "--yuv", str(clip), "--labels", str(labels), *args])


def first_line(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[0]


def one_error_line(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_camera_runs_a_yuyv_build_on_openvino_when_told(yuyv_build: Path, clip: Path, labels: Path) -> None:
    result = camera(yuyv_build, clip, labels, "--runtime", "openvino", "--frames", "2")
    assert first_line(result) == f"model_int8_qdq.onnx on OpenVinoRunner: yuyv 64x48, {CLASSES} classes"
    assert "2 frames" in result.stdout
    model_file = camera(yuyv_build / "model_int8_u8s8.onnx", clip, labels, "--runtime", "openvino")
    assert first_line(model_file).startswith("model_int8_u8s8.onnx on OpenVinoRunner:")


def test_camera_on_openvino_gives_the_classes_onnxruntime_gives(yuyv_build: Path, clip: Path, labels: Path) -> None:
    top1 = {}
    for runtime in ("onnxruntime", "openvino"):
        result = camera(yuyv_build / "model_int8_qdq.onnx", clip, labels, "--runtime", runtime, "--top", "1")
        assert result.exit_code == 0, result.output
        top1[runtime] = [line.split("ms  ")[1].rsplit(" ", 1)[0] for line in result.stdout.splitlines()[1:4]]
    assert top1["openvino"] == top1["onnxruntime"]


def test_a_build_recording_openvino_runs_on_it(yuyv_build: Path, clip: Path, labels: Path, tmp_path: Path) -> None:
    folder = recording_openvino(yuyv_build, tmp_path / "recorded")
    assert first_line(camera(folder, clip, labels)).startswith("model_int8_qdq.onnx on OpenVinoRunner:")
    # a runtime named wins over the record
    named = camera(folder, clip, labels, "--runtime", "onnxruntime")
    assert first_line(named).startswith("model_int8_u8s8.onnx on OnnxRuntimeRunner:")


def test_a_build_without_the_record_runs_as_before(yuyv_build: Path, clip: Path, labels: Path, tmp_path: Path) -> None:
    """A build made before the CPU runtime was recorded (the section removed: the fixture's own build records
    whichever runtime was faster on this machine)."""
    folder = tmp_path / "older"
    shutil.copytree(yuyv_build, folder)
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    sections = {k: v for k, v in summary.sections.items() if k != CPU_RUNTIME_SECTION}
    replace(summary, sections=sections).write(folder / SUMMARY_NAME)
    assert first_line(camera(folder, clip, labels)).startswith("model_int8_u8s8.onnx on OnnxRuntimeRunner:")


def test_a_recorded_openvino_without_openvino_falls_back_to_onnxruntime(
    yuyv_build: Path, clip: Path, labels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = recording_openvino(yuyv_build, tmp_path / "recorded")
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now fails, as where it is not installed
    assert choose_model(folder) == CameraModel(folder / "model_int8_u8s8.onnx", RuntimeKind.AUTO)
    assert first_line(camera(folder, clip, labels)).startswith("model_int8_u8s8.onnx on OnnxRuntimeRunner:")
    refused = one_error_line(camera(folder, clip, labels, "--runtime", "openvino"))
    assert "OpenVINO is not installed: pip install edgeres[openvino]" in refused


def test_a_recorded_model_that_is_gone_is_one_line(yuyv_build: Path, clip: Path, labels: Path, tmp_path: Path) -> None:
    folder = recording_openvino(yuyv_build, tmp_path / "recorded", model="model_gone.onnx")
    with pytest.raises(UserInputError, match=r"records model_gone\.onnx for OpenVINO; no such file there"):
        choose_model(folder)
    assert "model_gone.onnx" in one_error_line(camera(folder, clip, labels))


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ("tensorrt", "model_int8_qdq.onnx: tensorrt does not run an ONNX model; onnxruntime or openvino does"),
        ("bogus", "unknown --runtime 'bogus': choose one of auto|onnxruntime|openvino|tensorrt"),
    ],
)
def test_camera_refuses_a_runtime_that_cannot_run_the_file(
    yuyv_build: Path, clip: Path, labels: Path, runtime: str, message: str
) -> None:
    assert message in one_error_line(camera(yuyv_build / "model_int8_qdq.onnx", clip, labels, "--runtime", runtime))


def test_a_build_without_a_file_for_the_runtime_named_is_one_line(yuyv_build: Path, clip: Path, labels: Path) -> None:
    line = one_error_line(camera(yuyv_build, clip, labels, "--runtime", "tensorrt"))
    assert line == f"error: {yuyv_build}: no model file that tensorrt runs (*.engine, *.plan)"
