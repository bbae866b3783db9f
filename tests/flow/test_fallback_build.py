"""`edgeres build --sensitivity --auto-fallback` and `edgeres sensitivity`: files, summary, refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from edgeres.artifacts.completion import IN_PROGRESS_NAME, SUMMARY_NAME, build_complete
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.cli.app import app
from edgeres.errors import FidelityError, UserInputError
from edgeres.flow.int8_analysis import SENSITIVITY_JSON, SENSITIVITY_PLOT
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.quantize import fidelity
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.histogram import CalibAlgo
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_fp32.onnx"
    return save_with_sidecar(tiny_classifier_proto(10), path, "fp32")


def options(source: Path, **changes: object) -> BuildOptions:
    base = BuildOptions(onnx=source, calib_algo=CalibAlgo.MAX, calib_size=8, batch_size=4, profile_iterations=0)
    return replace(base, **changes)  # type: ignore[arg-type]


def weight_dequantized(model_path: Path, weight: str) -> bool:
    model = onnx.load(str(model_path))
    return any(n.op_type == "DequantizeLinear" and n.input[0].startswith(weight) for n in model.graph.node)


def test_unreachable_gate_writes_the_best_candidate_and_fails(tiny_onnx: Path, tmp_path: Path) -> None:
    gate = FidelityGate(min_sqnr_db=200.0)
    with pytest.raises(FidelityError, match=r"could not meet the gate within 1 layers"):
        build(options(tiny_onnx, gate=gate, auto_fallback=True, max_fallback=1, sensitivity=True), tmp_path)
    assert build_complete(tmp_path)  # a finished set whose report says why it fails
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["gate_passed"] is False
    fallback = summary["fallback"]
    assert fallback["met"] is False and len(fallback["keep_float"]) == 1
    assert [step["count"] for step in fallback["curve"]] == [0, 1]
    assert fallback["keep_float_option"] == "--keep-float " + fallback["keep_float"][0]
    kept = fallback["keep_float"][0]
    assert kept in ("conv", "fc")
    other = "fc" if kept == "conv" else "conv"
    for name in ("model_int8_qdq.onnx", "model_int8_u8s8.onnx"):
        assert read_sidecar(tmp_path / name).options["keep_float"] == [kept]
    qdq = tmp_path / "model_int8_qdq.onnx"
    assert not weight_dequantized(qdq, f"{kept}_w") and weight_dequantized(qdq, f"{other}_w")
    # The twin: the kept layer has its float weights; the other its INT8 values (as codes, or as the float
    # values of its codes where no integer kernel takes the layer).
    source = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(tiny_onnx)).graph.initializer}
    twin = onnx.load(str(tmp_path / "model_int8_u8s8.onnx"))
    weights = {n.name: n.input[1] for n in twin.graph.node if n.op_type in ("Conv", "Gemm")}
    inits = {i.name: numpy_helper.to_array(i) for i in twin.graph.initializer}
    assert np.array_equal(inits[weights[kept]], source[f"{kept}_w"])
    assert weights[other] not in inits or not np.array_equal(inits[weights[other]], source[f"{other}_w"])
    assert summary["placement"]["kept_float"] == [kept]
    for name in (SENSITIVITY_JSON, SENSITIVITY_PLOT):
        assert name in summary["sha256"]
    report = json.loads((tmp_path / SENSITIVITY_JSON).read_text())
    assert [layer["name"] for layer in report["layers"]] == ["conv", "fc"]
    assert (tmp_path / SENSITIVITY_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_gate_int8_meets_keeps_nothing_in_float(tiny_onnx: Path, tmp_path: Path) -> None:
    result = build(options(tiny_onnx, gate=FidelityGate(min_sqnr_db=-100.0), auto_fallback=True), tmp_path)
    fallback = result.summary.sections["fallback"]
    assert fallback["met"] is True and fallback["keep_float"] == [] and len(fallback["curve"]) == 1
    assert weight_dequantized(tmp_path / "model_int8_qdq.onnx", "conv_w")


def test_the_fp32_held_out_logits_are_computed_once_per_build(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sensitivity, every fallback step and both written models are measured against one FP32 pass."""
    runs: list[int] = []
    original = fidelity.reference_logits

    def counted(*args: Any, **kwargs: Any) -> list[np.ndarray]:
        runs.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fidelity, "reference_logits", counted)
    gate = FidelityGate(min_sqnr_db=200.0)  # unreachable: the search measures every step it can
    with pytest.raises(FidelityError):
        build(options(tiny_onnx, gate=gate, auto_fallback=True, max_fallback=2, sensitivity=True), tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["fallback"]["evaluations"] >= 2 and "sensitivity" in summary
    assert set(summary["fidelity"]) == {"int8_tensorrt", "int8_onnxruntime"}
    assert len(runs) == 1


def test_fallback_without_a_target_and_accuracy_without_labels_are_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="needs a fidelity target"):
        options(tiny_onnx, auto_fallback=True)
    with pytest.raises(UserInputError, match="for INT8 builds"):
        options(tiny_onnx, sensitivity=True, precision=options(tiny_onnx).precision.FP16)
    with pytest.raises(UserInputError, match="needs labelled held-out samples"):
        build(options(tiny_onnx, gate=FidelityGate(min_accuracy=0.5)), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def refused(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_cli_sensitivity_of_a_finished_build_and_refusals(tiny_onnx: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    build(options(tiny_onnx, gate=FidelityGate(min_sqnr_db=-100.0)), built)
    result = runner.invoke(app, ["sensitivity", str(built)])
    assert result.exit_code == 0, result.output
    assert "all INT8" in result.output and "alone in float" in result.output
    assert json.loads((built / "sensitivity" / SENSITIVITY_JSON).read_text())["samples"] > 0
    assert build_complete(built)  # the analysis went to its own folder; the build is untouched
    # The recorded calibration is redone: the same ranges as the build's.
    cached = json.loads((built / "calibration_cache.json").read_text())["tensors"]
    assert json.loads((built / "sensitivity" / "calibration_cache.json").read_text())["tensors"] == cached

    unfinished = tmp_path / "unfinished"
    shutil.copytree(built, unfinished)
    (unfinished / IN_PROGRESS_NAME).write_text("{}")
    assert "in progress" in refused("sensitivity", unfinished)
    assert "not both" in refused("sensitivity", built, "--onnx", tiny_onnx)
    # Options the command would ignore are refused, naming why, and write nothing.
    for ignored in (["--calib-algo", "entropy"], ["--calib", tmp_path], ["--input", "yuyv:64x48"]):
        assert "redone as recorded" in refused("sensitivity", built, *ignored, "-o", tmp_path / "ignored")
    for flag, value in (("--high-precision", "fp32"), ("--trt-table-version", "8.6.2")):
        line = refused("sensitivity", "--onnx", tiny_onnx, flag, value, "-o", tmp_path / "x")
        assert f"{flag}: shape the written INT8 models; sensitivity writes none" in line
    assert not (tmp_path / "ignored").exists() and not (tmp_path / "x").exists()
    assert "fidelity target" in refused("build", "--int8", "--onnx", tiny_onnx, "--auto-fallback", "-o", tmp_path / "a")
    assert "--max-fallback" in refused("build", "--onnx", tiny_onnx, "--auto-fallback", "--max-fallback", "0")
    assert "accuracy" in refused("build", "--onnx", tiny_onnx, "--min-accuracy", "1.5", "-o", tmp_path / "b")


def test_camera_frame_model_analyses_only_the_network_layers(tmp_path: Path) -> None:
    from edgeres.frames.contract import InputContract
    from edgeres.frames.yuv import YuvLayout
    from edgeres.frontend.graph import NODE_PREFIX, attach_frontend
    from tests.fixtures.tiny_classifier import TINY_SIZE

    contract = InputContract(YuvLayout.YUYV, 96, 64, size=TINY_SIZE)
    fused = attach_frontend(tiny_classifier_proto(10), contract)
    source = save_with_sidecar(fused, tmp_path / "fused.onnx", "fp32", contract.to_dict())
    gate = FidelityGate(min_sqnr_db=300.0)  # above even float arithmetic's agreement: nothing can meet it
    with pytest.raises(FidelityError, match="below the required 300 dB") as failure:
        build(options(source, gate=gate, auto_fallback=True, max_fallback=2, sensitivity=True), tmp_path / "out")
    assert getattr(failure.value, "__notes__", []) == []  # a finished set: nothing to remove, no "not removed"
    report = json.loads((tmp_path / "out" / SENSITIVITY_JSON).read_text())
    assert [layer["name"] for layer in report["layers"]] == ["conv", "fc"]  # no front-end node among them
    summary = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    assert sorted(summary["fallback"]["keep_float"]) == ["conv", "fc"]
    assert summary["fallback"]["curve"][-1]["mac_share"] == pytest.approx(1.0)
    qdq = onnx.load(str(tmp_path / "out" / "model_int8_qdq.onnx"))
    assert any(n.name.startswith(NODE_PREFIX) for n in qdq.graph.node)
    assert qdq.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_a_gate_the_float_model_misses_is_refused_before_the_search(tiny_onnx: Path, tmp_path: Path) -> None:
    from edgeres.frames.images import default_calibration_dir

    photos = sorted(default_calibration_dir().glob("*.jpg"))
    csv = tmp_path / "labels.csv"
    csv.write_text("".join(f"{p},{i % 10}\n" for i, p in enumerate(photos)))  # labels a random model cannot know
    gate = FidelityGate(min_accuracy=0.99)
    with pytest.raises(UserInputError, match="no placement can meet the gate: on the FP32 model itself, top-1"):
        build(options(tiny_onnx, calib=csv, gate=gate, auto_fallback=True, min_holdout_samples=0), tmp_path / "out")


@pytest.mark.parametrize(
    ("extra", "advice"),
    [
        ([], "--auto-fallback"),
        (["--auto-fallback", "--max-fallback", "1"], "a larger --max-fallback (this build allowed 1)"),
    ],
)
def test_a_failed_gate_prints_the_report_then_what_to_try_then_the_error(
    tiny_onnx: Path, tmp_path: Path, extra: list[str], advice: str
) -> None:
    """A CI log of a failed gate is where the numbers are needed."""
    args = ["build", "--int8", "--onnx", tiny_onnx, "--calib-size", "8", "--calib-algo", "max", "--min-sqnr", "200"]
    result = runner.invoke(app, [str(a) for a in [*args, *extra, "--no-profile", "-o", tmp_path / "out"]])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.splitlines()
    measured = ("int8_tensorrt: logits SQNR", "int8_onnxruntime: logits SQNR")
    fidelity = [i for i, line in enumerate(lines) if line.startswith(measured)]
    hint = next(i for i, line in enumerate(lines) if line.startswith("to try next:"))
    error = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    assert len(fidelity) == 2 and max(fidelity) < hint < error == len(lines) - 1
    assert advice in lines[hint] and "another --calib-algo" in lines[hint] and "this build used max" in lines[hint]
    assert "below the required 200 dB" in lines[error]
    if extra:
        steps = [line for line in lines[:hint] if line.startswith("fallback ")]
        assert steps[0].startswith("fallback 0 kept (all INT8): logits SQNR")
        assert steps[1].startswith("fallback 1 kept (+") and all(s.endswith("short of the gate") for s in steps[:2])


def test_info_of_a_build_folder_says_whether_it_is_finished_and_what_it_holds(tiny_onnx: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    build(options(tiny_onnx, gate=FidelityGate(min_sqnr_db=-100.0)), built)
    result = runner.invoke(app, ["info", str(built)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{built}: a finished build"
    assert lines[1].startswith("precision int8, fidelity gate passed")
    assert any(line.startswith("int8_tensorrt: model_int8_qdq.onnx, logits SQNR") for line in lines)
    (built / "model_int8_u8s8.onnx").write_bytes(b"swapped")
    damaged = runner.invoke(app, ["info", str(built)])
    assert damaged.exit_code == 0 and "NOT a finished build" in damaged.output and "differs" in damaged.output
    assert "not a build folder" in refused("info", tmp_path)


def test_profile_of_a_build_folder_measures_its_fp32_and_cpu_models(tiny_onnx: Path, tmp_path: Path) -> None:
    built = tmp_path / "built"
    build(options(tiny_onnx, gate=FidelityGate(min_sqnr_db=-100.0)), built)
    result = runner.invoke(app, ["profile", str(built), "--iterations", "2", "--warmup", "1", "--no-layers",
                                 "--batch", "1", "--json", str(tmp_path / "r.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    measured = [Path(p["path"]).name for p in json.loads((tmp_path / "r.json").read_text())["artifacts"]]
    assert measured == ["tiny_fp32.onnx", "model_int8_u8s8.onnx"]
    (built / IN_PROGRESS_NAME).write_text("{}")
    assert "in progress" in refused("profile", built)
