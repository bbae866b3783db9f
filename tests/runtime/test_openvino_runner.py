"""The OpenVINO runner on real OpenVINO (the dev extra installs it): FP32, FP16 and the TensorRT Q/DQ model
of a random-weight ResNet18 at 64 px, against onnxruntime; its refusals; and the runtime choice of
`open_runner`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeres.errors import EdgeresError, UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.frames.images import imagenet_batch
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model
from edgeres.quantize.calibrate import collect_ranges
from edgeres.quantize.fidelity import Kernels, compare_logits, model_logits
from edgeres.quantize.fp16 import to_fp16
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import plan_qdq
from edgeres.quantize.tensorrt_qdq import tensorrt_qdq_model
from edgeres.runtime.base import RunnerState
from edgeres.runtime.dispatch import open_runner
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import OpenVinoRunner, PerformanceHint
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.trt_runner import TensorRTRunner
from edgeres.samples.reader import derive_variant
from tests.conftest import REAL_IMAGE_NAMES, real_image

SIZE = 64
CLASSES = 10
# Measured here (OpenVINO 2026.4 CPU plugin, AVX-512 VNNI, seeds 0-4 of the random ResNet18, the fixture's 12
# photographs): OpenVINO vs the Q/DQ reference arithmetic 24.9-30.7 dB (seed 0, the one tested: 27.2 dB);
# OpenVINO vs FP32 within 1.2 dB of the reference's own SQNR vs FP32, better or worse. OpenVINO folds the scales
# into its INT8 convolutions (a lone Q/DQ pair rounds half to even there, as ONNX says), so single codes come out
# one step apart and the two INT8 runs differ about as much as INT8 differs from FP32, while each stays as close
# to FP32. The bounds leave about 5 dB and 2 dB below what was measured.
MIN_SQNR_VS_REFERENCE_DB = 20.0
MAX_LOSS_VS_REFERENCE_DB = 3.0


@pytest.fixture(scope="module")
def photographs() -> np.ndarray:
    """The four bundled photographs and two crops/flips of each, at SIZE px."""
    images = [real_image(name) for name in REAL_IMAGE_NAMES]
    rng = np.random.default_rng(0)
    return imagenet_batch(images + [derive_variant(p, v, rng) for v in (1, 2) for p in images], size=SIZE)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, photographs: np.ndarray) -> dict[str, Path]:
    """A random ResNet18 at SIZE px: FP32 (dynamic batch), FP16 (float32 I/O), and its TensorRT Q/DQ model
    with the FP16 remainder the build ships, calibrated with MAX on the photographs."""
    folder = tmp_path_factory.mktemp("ov")
    fp32 = torch_to_onnx(build_model(Arch.RESNET18, CLASSES), size=SIZE)
    paths = {name: folder / f"{name}.onnx" for name in ("fp32", "fp16", "int8_qdq")}
    onnx.save(fp32, paths["fp32"])
    onnx.save(to_fp16(fp32), paths["fp16"])
    plan = plan_qdq(fp32)
    ranges = collect_ranges(paths["fp32"], [photographs], CalibAlgo.MAX, list(plan.activations + plan.cpu_extra))
    onnx.save(tensorrt_qdq_model(fp32, plan, ranges), paths["int8_qdq"])
    return paths


def onnxruntime_logits(path: Path, batch: np.ndarray) -> np.ndarray:
    with OnnxRuntimeRunner(path) as runner:
        return runner.infer(batch)


@pytest.mark.parametrize("size", [1, 4])
def test_fp32_matches_onnxruntime_at_batch_1_and_4(models: dict[str, Path], photographs: np.ndarray, size: int):
    batch = photographs[:size]
    with OpenVinoRunner(models["fp32"], threads=2) as runner:
        assert runner.input_spec.shape == (None, 3, SIZE, SIZE) and runner.batch_range == (1, None)
        assert runner.inference_precision == "f32"  # not the bf16 OpenVINO picks on CPUs with AVX-512 BF16
        logits = runner.infer(batch)
    assert logits.shape == (size, CLASSES) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, onnxruntime_logits(models["fp32"], batch), rtol=1e-4, atol=1e-5)


def test_one_compile_serves_every_batch_size_and_results_outlive_the_next_call(
    models: dict[str, Path], photographs: np.ndarray
) -> None:
    with OpenVinoRunner(models["fp32"], threads=2) as runner:
        first = runner.infer(photographs[:1])
        kept = first.copy()
        whole = runner.infer(photographs[:8])  # a larger batch after a smaller one: the input tensor grows
        runner.infer(photographs[4:8])
    np.testing.assert_array_equal(first, kept)  # the request's output buffer is not handed out
    np.testing.assert_allclose(first, whole[:1], rtol=1e-5, atol=1e-6)


def test_fp16_model_matches_onnxruntime(models: dict[str, Path], photographs: np.ndarray) -> None:
    with OpenVinoRunner(models["fp16"], threads=2) as runner:
        logits = runner.infer(photographs)
    reference = onnxruntime_logits(models["fp16"], photographs)
    # both compute FP16 weights with float32 arithmetic: they agree far beyond FP16's own error
    assert compare_logits([reference], [logits], [None], "fp16").sqnr_db > 80.0


def test_int8_qdq_runs_int8_kernels_and_is_as_faithful_as_its_reference_arithmetic(
    models: dict[str, Path], photographs: np.ndarray
) -> None:
    with OpenVinoRunner(models["int8_qdq"], threads=2, hint=PerformanceHint.THROUGHPUT) as runner:
        logits = runner.infer(photographs)
        convolutions = [precision for layer, precision in runner.layer_precisions() if layer == "Convolution"]
    assert convolutions and set(convolutions) <= {"u8", "i8"}, convolutions  # no dequantized float convolutions
    (reference,) = model_logits(models["int8_qdq"], [photographs], Kernels.REFERENCE)
    fp32 = onnxruntime_logits(models["fp32"], photographs)
    versus_reference = compare_logits([reference], [logits], [None], "int8").sqnr_db
    assert versus_reference > MIN_SQNR_VS_REFERENCE_DB
    ours, theirs = (compare_logits([fp32], [x], [None], "int8").sqnr_db for x in (logits, reference))
    assert ours > theirs - MAX_LOSS_VS_REFERENCE_DB, f"OpenVINO {ours:.1f} dB, Q/DQ reference {theirs:.1f} dB"


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((1, 3, SIZE, SIZE), np.float64), "dtype float64"),
        (np.zeros((3, SIZE, SIZE), np.float32), "rank 4"),
        (np.zeros((1, 3, SIZE + 1, SIZE), np.float32), "axis 2 is 65"),
        (np.zeros((0, 3, SIZE, SIZE), np.float32), "axis 0 is empty"),
    ],
)
def test_bad_inputs_are_refused_in_one_line(models: dict[str, Path], batch: np.ndarray, message: str) -> None:
    with OpenVinoRunner(models["fp32"]) as runner, pytest.raises(UserInputError, match=f"'input'.*{message}") as err:
        runner.infer(batch)
    assert "\n" not in str(err.value)


def test_a_float16_input_is_described_and_checked(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["logits"], axes=[2, 3], keepdims=0)],
        "half",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT16, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT16, ["batch", 3])],
    )
    path = tmp_path / "half.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with OpenVinoRunner(path) as runner:
        assert runner.input_spec.dtype == np.float16
        with pytest.raises(UserInputError, match="dtype float32 given, the model takes float16"):
            runner.infer(np.ones((2, 3, 4, 4), np.float32))
        np.testing.assert_allclose(runner.infer(np.full((2, 3, 4, 4), 2.0, np.float16)), 2.0)


def test_runner_state_is_checked(models: dict[str, Path]) -> None:
    runner = OpenVinoRunner(models["fp32"])
    batch = np.zeros((1, 3, SIZE, SIZE), np.float32)
    with pytest.raises(EdgeresError, match="needs a loaded runner, this one is new"):
        runner.infer(batch)
    with pytest.raises(EdgeresError, match="load\\(\\) the runner"):
        runner.layer_precisions()
    with pytest.raises(EdgeresError, match="load\\(\\) the runner"):
        _ = runner.inference_precision
    runner.load()
    runner.close()
    runner.close()
    assert runner.state is RunnerState.CLOSED
    with pytest.raises(EdgeresError, match="closed"):
        runner.infer(batch)


def _truncated(source: Path, folder: Path) -> Path:
    path = folder / "truncated.onnx"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return path


def _short_weight(source: Path, folder: Path) -> Path:
    """Valid protobuf, but one initializer holds half the bytes its shape needs (onnx.load accepts it)."""
    model = onnx.load(str(source))
    weight = model.graph.initializer[0]
    weight.raw_data = weight.raw_data[: len(weight.raw_data) // 2]
    path = folder / "short_weight.onnx"
    onnx.save(model, str(path))
    return path


def _unknown_operator(_: Path, folder: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", ["input"], ["logits"])],
        "unknown",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])],
    )
    path = folder / "unknown.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _junk(_: Path, folder: Path) -> Path:
    path = folder / "junk.onnx"
    path.write_bytes(b"not a model at all")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_junk, "not a valid ONNX model"),
        (_truncated, "not a valid ONNX model"),
        (_short_weight, "OpenVINO cannot read it"),
        (_unknown_operator, "OpenVINO cannot read it.*NoSuchOperator"),
    ],
)
def test_broken_files_are_one_line_user_errors(models: dict[str, Path], tmp_path: Path, make, message: str) -> None:
    runner = OpenVinoRunner(make(models["fp32"], tmp_path))
    with pytest.raises(UserInputError, match=message) as err:
        runner.load()
    assert "\n" not in str(err.value) and str(runner.artifact) in str(err.value)
    assert runner.state is RunnerState.NEW and runner._compiled is None and runner._request is None


def test_missing_openvino_names_the_extra(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # what `import openvino` meets where it is not installed
    with pytest.raises(UserInputError, match=r"pip install edgeres\[openvino\]") as err:
        OpenVinoRunner(models["fp32"]).load()
    assert "\n" not in str(err.value)


def test_an_openvino_too_old_for_fp16_scales_is_refused(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    import openvino

    monkeypatch.setattr(openvino, "get_version", lambda: "2025.2.0-18660-2025/2")
    with pytest.raises(UserInputError, match=r"OpenVINO 2025.2.0.*2025.3 or later.*pip install -U edgeres\[openvino\]"):
        OpenVinoRunner(models["int8_qdq"]).load()


def test_negative_threads_are_refused(models: dict[str, Path]) -> None:
    with pytest.raises(UserInputError, match="threads -1"):
        OpenVinoRunner(models["fp32"], threads=-1)


def test_open_runner_takes_a_runtime_choice(models: dict[str, Path], tmp_path: Path) -> None:
    onnx_path = models["fp32"]
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine")
    assert isinstance(open_runner(onnx_path), OnnxRuntimeRunner)  # AUTO: unchanged
    assert isinstance(open_runner(onnx_path, runtime=RuntimeKind.ONNXRUNTIME), OnnxRuntimeRunner)
    assert isinstance(open_runner(onnx_path, runtime=RuntimeKind.OPENVINO), OpenVinoRunner)
    assert isinstance(open_runner(engine, runtime=RuntimeKind.TENSORRT), TensorRTRunner)
    with pytest.raises(UserInputError, match="openvino does not run a TensorRT engine; tensorrt does"):
        open_runner(engine, runtime=RuntimeKind.OPENVINO)
    with pytest.raises(UserInputError, match="tensorrt does not run an ONNX model; onnxruntime or openvino does"):
        open_runner(onnx_path, runtime=RuntimeKind.TENSORRT)
