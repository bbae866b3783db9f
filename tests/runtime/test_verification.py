"""Verification on the CPU: onnxruntime and OpenVINO are the runners under test (real runners), the build's U8S8
twin the "engine" that must pass, and models broken on purpose the engines that must be refused, with the reason.

The TensorRT runner itself runs only in tests/gpu; here it is reached up to its refusal of an unverified
engine, which happens before TensorRT is needed.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import sidecar_path
from edgeres.cli.app import app
from edgeres.engine.record import read_engine_record
from edgeres.errors import EdgeresError, UserInputError
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.quantize.calibrate import CalibAlgo
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.heldout import HELDOUT_INPUT_BYTES, HELDOUT_NAME, MAX_HELDOUT_SAMPLES, HeldOutReference
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.trt_runner import TensorRTRunner
from edgeres.runtime.verification import (
    SQNR_ENOUGH_DB,
    required_sqnr,
    verify_artifact,
    verify_runner,
)
from tests.fixtures.engines import engine_with_sidecar, verification
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto


def tiny_build_options(source: Path, precision: Precision) -> BuildOptions:
    gate = FidelityGate(min_sqnr_db=10.0)  # random tiny weights: SQNR is the measure; the gate is recorded
    return BuildOptions(
        onnx=source, precision=precision, calib_algo=CalibAlgo.MAX, calib_size=8, batch_size=4, gate=gate,
        profile_iterations=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_fp32.onnx"
    return save_with_sidecar(tiny_classifier_proto(10), path, "fp32")


@pytest.fixture(scope="module")
def int8_build(tiny_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("int8")
    build(tiny_build_options(tiny_source, Precision.INT8), folder)
    return folder


@pytest.fixture(scope="module")
def fp16_build(tiny_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fp16")
    build(tiny_build_options(tiny_source, Precision.FP16), folder)
    return folder


def _heldout(folder: Path) -> HeldOutReference:
    return HeldOutReference.read(folder / HELDOUT_NAME)


def _as_engine(model: onnx.ModelProto, folder: Path, name: str) -> Path:
    path = folder / name
    onnx.save(model, str(path))
    return path


def _judge(model: Path, heldout: HeldOutReference, reference: ArtifactRole):
    with OnnxRuntimeRunner(model) as runner:
        return verify_runner(runner, heldout, reference)


# --- the held-out set travels with the build ---------------------------------------------------------


def test_the_build_writes_its_heldout_set_with_every_models_logits_and_a_digest(int8_build: Path) -> None:
    heldout = _heldout(int8_build)
    summary = BuildSummary.read(int8_build / SUMMARY_NAME)
    assert summary.artifacts[ArtifactRole.HELDOUT].name == HELDOUT_NAME
    assert summary.sha256[HELDOUT_NAME] == sha256_file(int8_build / HELDOUT_NAME) == heldout.sha256
    assert set(heldout.logits) == {ArtifactRole.FP32, ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME}
    assert heldout.models[ArtifactRole.INT8_TENSORRT].sha256 == sha256_file(int8_build / "model_int8_qdq.onnx")
    assert heldout.inputs.dtype == np.float32 and heldout.inputs.shape[1:] == (3, 32, 32)
    assert heldout.gate == FidelityGate(min_sqnr_db=10.0)
    # the recorded FP32 logits are what the FP32 model gives on the recorded inputs
    with OnnxRuntimeRunner(int8_build / summary.artifacts[ArtifactRole.FP32]) as fp32:
        np.testing.assert_allclose(fp32.infer(heldout.inputs), heldout.logits[ArtifactRole.FP32], rtol=1e-5, atol=1e-5)


def test_the_heldout_set_is_bounded_by_bytes_and_count() -> None:
    from edgeres.runtime.heldout import heldout_samples

    rgb_224, yuyv_1080p = 3 * 224 * 224 * 4, 1920 * 1080 * 2
    assert heldout_samples(rgb_224, 1000) * rgb_224 <= HELDOUT_INPUT_BYTES
    assert heldout_samples(3 * 32 * 32 * 4, 1000) == MAX_HELDOUT_SAMPLES
    assert heldout_samples(yuyv_1080p, 1000) == HELDOUT_INPUT_BYTES // yuyv_1080p >= 1
    assert heldout_samples(10 * HELDOUT_INPUT_BYTES, 1000) == 1  # a frame larger than the budget: still one
    assert heldout_samples(rgb_224, 3) == 3


# --- a real runner, a passing "engine", and engines broken on purpose --------------------------------


def test_the_cpu_twin_passes_as_an_engine_of_the_tensorrt_model(int8_build: Path) -> None:
    heldout = _heldout(int8_build)
    outcome = _judge(int8_build / "model_int8_u8s8.onnx", heldout, ArtifactRole.INT8_TENSORRT)
    assert outcome.passed, outcome.failures
    assert outcome.runner == "OnnxRuntimeRunner" and outcome.samples == heldout.samples
    assert outcome.sqnr_vs_fp32_db >= outcome.min_sqnr_vs_fp32_db


def test_every_model_of_the_build_passes_against_its_own_logits(int8_build: Path, fp16_build: Path) -> None:
    for folder, name in ((int8_build, "model_int8_qdq.onnx"), (int8_build, "model_int8_u8s8.onnx"),
                         (fp16_build, "model_fp16.onnx")):  # fmt: skip
        outcome = verify_artifact(folder / name)
        assert outcome.passed, (name, outcome.failures)


def scaled_dequantize(model: onnx.ModelProto, factor: float) -> onnx.ModelProto:
    """The Q/DQ model with the scale of its first weight DequantizeLinear multiplied: a scale misread."""
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    inits = {init.name: init for init in broken.graph.initializer}
    node = next(n for n in broken.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits)
    scale = inits[node.input[1]]
    values = numpy_helper.to_array(scale)  # FP16 scales in the TensorRT model: keep the type
    scale.CopyFrom(numpy_helper.from_array((values.astype(np.float32) * factor).astype(values.dtype), scale.name))
    return broken


def test_a_misread_qdq_scale_is_refused(int8_build: Path, tmp_path: Path) -> None:
    heldout = _heldout(int8_build)
    qdq = onnx.load(str(int8_build / "model_int8_qdq.onnx"))
    engine = _as_engine(scaled_dequantize(qdq, 4.0), tmp_path, "scaled.onnx")
    outcome = _judge(engine, heldout, ArtifactRole.INT8_TENSORRT)
    assert not outcome.passed
    assert "against FP32 is below" in outcome.failures[0]
    assert outcome.sqnr_vs_fp32_db < outcome.min_sqnr_vs_fp32_db


def _overflowing(model: onnx.ModelProto) -> onnx.ModelProto:
    """The FP16 model with its first convolution's output scaled past FP16's largest value (65504) and stored
    as FP16 again: an overflow in the FP16 layers, made explicit because onnxruntime's CPU kernels compute
    most FP16 operators in FP32 (dropping the casts between them) and would never overflow on their own."""
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    conv = next(n for n in broken.graph.node if n.op_type == "Conv")
    stored = conv.output[0]
    conv.output[0] = f"{stored}_raw"
    broken.graph.initializer.append(numpy_helper.from_array(np.array(1e6, np.float32), "overflow_gain"))
    at = list(broken.graph.node).index(conv) + 1
    for offset, node in enumerate([
        helper.make_node("Cast", [f"{stored}_raw"], [f"{stored}_f32"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Mul", [f"{stored}_f32", "overflow_gain"], [f"{stored}_big"]),
        helper.make_node("Cast", [f"{stored}_big"], [f"{stored}_f16"], to=onnx.TensorProto.FLOAT16),
        # an FP16 kernel on the CPU too, so the FP16 tensor is really stored (the pooling after ignores the order)
        helper.make_node("Transpose", [f"{stored}_f16"], [stored], perm=[0, 1, 3, 2]),
    ]):  # fmt: skip
        broken.graph.node.insert(at + offset, node)
    return broken


def test_an_fp16_overflow_is_refused_as_non_finite(fp16_build: Path, tmp_path: Path) -> None:
    heldout = _heldout(fp16_build)
    engine = _as_engine(_overflowing(onnx.load(str(fp16_build / "model_fp16.onnx"))), tmp_path, "overflow.onnx")
    outcome = _judge(engine, heldout, ArtifactRole.FP16)
    assert not outcome.passed
    assert "not finite" in outcome.failures[0]


def _swapped_classes(model: onnx.ModelProto, first: int, second: int) -> onnx.ModelProto:
    """The model with two output classes exchanged after its last layer (a wrong output binding)."""
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    output = broken.graph.output[0]
    classes = output.type.tensor_type.shape.dim[1].dim_value
    order = np.arange(classes, dtype=np.int64)
    order[[first, second]] = order[[second, first]]
    for node in broken.graph.node:
        node.output[:] = [f"{name}_unswapped" if name == output.name else name for name in node.output]
    broken.graph.initializer.append(numpy_helper.from_array(order, "swap_order"))
    unswapped = f"{output.name}_unswapped"
    broken.graph.node.append(helper.make_node("Gather", [unswapped, "swap_order"], [output.name], axis=1))
    return broken


@pytest.mark.parametrize("build_name", ["int8_build", "fp16_build"])
def test_two_swapped_classes_are_refused(build_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    folder: Path = request.getfixturevalue(build_name)
    heldout = _heldout(folder)
    reference = ArtifactRole.INT8_TENSORRT if build_name == "int8_build" else ArtifactRole.FP16
    model = folder / heldout.models[reference].name
    mean = heldout.logits[ArtifactRole.FP32].mean(axis=0)
    top, other = int(np.argmax(mean)), int(np.argmin(mean))  # the class most often on top, and the least likely
    engine = _as_engine(_swapped_classes(onnx.load(str(model)), top, other), tmp_path, "swapped.onnx")
    outcome = _judge(engine, heldout, reference)
    assert not outcome.passed
    assert "against FP32 is below" in outcome.failures[0]
    assert outcome.top1_vs_onnx < 1.0


def test_the_limits_follow_the_onnx_and_stop_at_enough() -> None:
    assert required_sqnr(30.0) == 29.0
    assert required_sqnr(float("inf")) == SQNR_ENOUGH_DB == required_sqnr(80.0)


def test_the_gate_applies_as_far_as_the_onnx_itself_meets_it_on_these_samples(int8_build: Path) -> None:
    heldout = _heldout(int8_build)
    strict = replace(heldout, gate=FidelityGate(min_sqnr_db=99.0, min_agreement=1.0))
    outcome = _judge(int8_build / "model_int8_qdq.onnx", strict, ArtifactRole.INT8_TENSORRT)
    assert outcome.passed, outcome.failures  # the ONNX itself reaches neither: the gate is what it reaches here
    labelled = replace(heldout, gate=FidelityGate(min_accuracy=0.5))
    refused = _judge(int8_build / "model_int8_qdq.onnx", labelled, ArtifactRole.INT8_TENSORRT)
    assert not refused.passed and "no labels" in refused.failures[0]


# --- hostile: the set or the engine's record is not what it claims ---------------------------------


def _copy_build(folder: Path, target: Path) -> Path:
    target.mkdir()
    for path in folder.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_an_edited_or_truncated_heldout_set_is_refused(int8_build: Path, tmp_path: Path) -> None:
    edited = _copy_build(int8_build, tmp_path / "edited")
    data = bytearray((edited / HELDOUT_NAME).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (edited / HELDOUT_NAME).write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="SHA-256 differs"):
        verify_artifact(edited / "model_int8_qdq.onnx")
    truncated = _copy_build(int8_build, tmp_path / "truncated")
    with open(truncated / HELDOUT_NAME, "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(UserInputError, match="describes another file"):
        verify_artifact(truncated / "model_int8_qdq.onnx")


def test_a_heldout_set_rewritten_with_its_sidecar_still_holds_only_arrays(int8_build: Path, tmp_path: Path) -> None:
    folder = _copy_build(int8_build, tmp_path / "pickled")
    # an object array needs pickle to load
    with zipfile.ZipFile(folder / HELDOUT_NAME, "a") as archive, archive.open("inputs_objects.npy", "w") as member:
        np.save(member, np.array([object()], dtype=object), allow_pickle=True)
    sidecar = json.loads(sidecar_path(folder / HELDOUT_NAME).read_text())
    sidecar |= {"sha256": sha256_file(folder / HELDOUT_NAME), "bytes": (folder / HELDOUT_NAME).stat().st_size}
    sidecar_path(folder / HELDOUT_NAME).write_text(json.dumps(sidecar))
    with pytest.raises(UserInputError, match="not a readable held-out set"):
        HeldOutReference.read(folder / HELDOUT_NAME)


def test_a_heldout_set_of_another_build_is_refused(int8_build: Path, fp16_build: Path) -> None:
    with pytest.raises(UserInputError, match="a held-out set of another build"):
        verify_artifact(int8_build / "model_int8_qdq.onnx", fp16_build)


def test_an_engine_whose_sidecar_names_another_onnx_is_refused(
    int8_build: Path, fp16_build: Path, tmp_path: Path
) -> None:
    other = fp16_build / "model_fp16.onnx"
    engine = engine_with_sidecar(tmp_path / "model.engine", {"onnx": str(other), "onnx_sha256": sha256_file(other)}, {})
    with pytest.raises(UserInputError, match="its sidecar names"):
        verify_artifact(engine, int8_build)


def test_a_set_without_its_sidecar_is_refused(int8_build: Path, tmp_path: Path) -> None:
    folder = _copy_build(int8_build, tmp_path / "bare")
    sidecar_path(folder / HELDOUT_NAME).unlink()
    with pytest.raises(UserInputError, match="no sidecar"):
        verify_artifact(folder / "model_int8_qdq.onnx")


# --- the runtime refuses what was never verified, or failed ----------------------------------------


@pytest.mark.parametrize(("verified", "refusal"), [(None, "never verified"), (verification(False), "FAILED verif")])
def test_the_tensorrt_runner_refuses_an_unverified_engine_before_touching_tensorrt(
    tmp_path: Path, verified, refusal: str
) -> None:
    engine = engine_with_sidecar(tmp_path / "model.engine", {}, {}, verified)
    with pytest.raises(UserInputError, match=refusal):
        TensorRTRunner(engine).load()
    record = read_engine_record(engine)
    assert record is not None and record.verification == verified
    with pytest.raises(EdgeresError) as allowed:  # on to the next checks: TensorRT itself, then these bytes
        TensorRTRunner(engine, allow_unverified=True).load()
    assert refusal not in str(allowed.value)


# --- edgeres verify ----------------------------------------------------------------------------------


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_cli_verify_passes_a_model_of_the_build_and_prints_json(int8_build: Path) -> None:
    code, output = _cli("verify", int8_build / "model_int8_u8s8.onnx")
    assert code == 0 and "verification passed" in output, output
    code, output = _cli("verify", int8_build / "model_int8_qdq.onnx", int8_build, "--json")
    assert code == 0 and json.loads(output)["passed"] is True, output


def test_cli_verify_fails_with_one_line_and_exit_2(int8_build: Path, tmp_path: Path) -> None:
    folder = _copy_build(int8_build, tmp_path / "broken")
    heldout = _heldout(folder)
    broken = scaled_dequantize(onnx.load(str(folder / "model_int8_qdq.onnx")), 4.0)
    onnx.save(broken, str(folder / "model_int8_qdq.onnx"))
    # the archive still names the old file's SHA-256, so the edited model is not "its" model: refused as such
    code, output = _cli("verify", folder / "model_int8_qdq.onnx")
    assert code == 2 and "a held-out set of another build" in output, output
    # recorded as the twin's own, the broken model is judged and fails
    forged = replace(heldout, path=None)
    models = dict(forged.models)
    edited = sha256_file(folder / "model_int8_qdq.onnx")
    models[ArtifactRole.INT8_TENSORRT] = replace(models[ArtifactRole.INT8_TENSORRT], sha256=edited)
    replace(forged, models=models).write(folder / HELDOUT_NAME)
    code, output = _cli("verify", folder / "model_int8_qdq.onnx")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "below" in errors[0], output
    assert "Traceback" not in output


# --- edgeres verify --runtime openvino: a build's ONNX on another CPU's runtime ------------------------------


def _forged_broken_build(int8_build: Path, target: Path) -> Path:
    """A copy of the build whose Q/DQ model has one weight scale misread, and whose held-out set is rewritten to
    call the broken file its own: what verification must then refuse on the numbers."""
    folder = _copy_build(int8_build, target)
    heldout = _heldout(folder)
    broken = scaled_dequantize(onnx.load(str(folder / "model_int8_qdq.onnx")), 4.0)
    onnx.save(broken, str(folder / "model_int8_qdq.onnx"))
    models = dict(heldout.models)
    edited = sha256_file(folder / "model_int8_qdq.onnx")
    models[ArtifactRole.INT8_TENSORRT] = replace(models[ArtifactRole.INT8_TENSORRT], sha256=edited)
    replace(heldout, path=None, models=models).write(folder / HELDOUT_NAME)
    return folder


def test_every_int8_model_of_the_build_passes_on_openvino(int8_build: Path) -> None:
    for name in ("model_int8_qdq.onnx", "model_int8_u8s8.onnx"):
        outcome = verify_artifact(int8_build / name, runtime=RuntimeKind.OPENVINO)
        assert outcome.passed, (name, outcome.failures)
        assert outcome.runner == "OpenVinoRunner" and outcome.samples == _heldout(int8_build).samples


def test_a_misread_qdq_scale_is_refused_on_openvino(int8_build: Path, tmp_path: Path) -> None:
    folder = _forged_broken_build(int8_build, tmp_path / "broken")
    outcome = verify_artifact(folder / "model_int8_qdq.onnx", runtime=RuntimeKind.OPENVINO)
    assert not outcome.passed and outcome.runner == "OpenVinoRunner"
    assert "against FP32 is below" in outcome.failures[0]


def test_cli_verify_on_openvino_names_it_and_passes(int8_build: Path) -> None:
    code, output = _cli("verify", int8_build / "model_int8_qdq.onnx", "--runtime", "openvino")
    assert code == 0 and "model_int8_qdq.onnx on OpenVinoRunner: verification passed" in output, output
    code, output = _cli("verify", int8_build / "model_int8_qdq.onnx", int8_build, "--runtime", "openvino", "--json")
    outcome = json.loads(output)
    assert code == 0 and outcome["passed"] is True and outcome["runner"] == "OpenVinoRunner", output


def test_cli_verify_on_openvino_fails_a_wrong_model_with_one_line_and_exit_2(int8_build: Path, tmp_path: Path) -> None:
    folder = _forged_broken_build(int8_build, tmp_path / "broken")
    code, output = _cli("verify", folder / "model_int8_qdq.onnx", "--runtime", "openvino")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "on OpenVinoRunner:" in errors[0] and "below" in errors[0], output
    assert "Traceback" not in output
    # the held-out set of another build: refused before anything runs
    code, output = _cli("verify", int8_build / "model_int8_qdq.onnx", folder, "--runtime", "openvino")
    assert code == 2 and "a held-out set of another build" in output, output


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ("tensorrt", "tensorrt does not run an ONNX model; onnxruntime or openvino does"),
        ("bogus", "unknown --runtime 'bogus': choose one of auto|onnxruntime|openvino|tensorrt"),
    ],
)
def test_cli_verify_refuses_a_runtime_that_cannot_run_the_file(int8_build: Path, runtime: str, message: str) -> None:
    code, output = _cli("verify", int8_build / "model_int8_qdq.onnx", "--runtime", runtime)
    assert code == 2 and message in output and len(output.strip().splitlines()) == 1, output


def test_info_summarises_a_qdq_model_and_an_engine_with_its_verification(int8_build: Path, tmp_path: Path) -> None:
    code, output = _cli("info", int8_build / "model_int8_qdq.onnx")
    assert code == 0 and "FP16 (TensorRT 10 or later) scales" in output and "precision int8" in output, output
    target = {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}
    profile = {"tensor": "input", "min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [4, 3, 32, 32]}
    for verified, expected in ((verification(True), "verification passed"), (None, "never verified")):
        engine = engine_with_sidecar(
            tmp_path / "m.engine", {"onnx": "model_int8_qdq.onnx"}, {"target": target, "profile": profile}, verified
        )
        code, output = _cli("info", engine)
        assert code == 0 and "TensorRT 10.3.0, Orin (compute 8.7)" in output and "batch 1..4" in output, output
        assert expected in output, output
