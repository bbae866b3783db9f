"""ONNX Runtime runner end to end on CPU, the runner state machine, input checks and top-k."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import EdgeresError, UserInputError
from edgeres.export.parity import run_onnx
from edgeres.runtime.base import RunnerState
from edgeres.runtime.dispatch import open_runner
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.topk import top_k
from tests.fixtures.engines import engine_with_sidecar

CLASSES = 7


def write_linear_classifier(path: Path, seed: int = 0) -> np.ndarray:
    """A [batch,3,4,4] -> [batch,CLASSES] ONNX model: flatten then a matrix product; returns the weight."""
    weight = np.random.default_rng(seed).standard_normal((48, CLASSES)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        [numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight


@pytest.fixture()
def linear_onnx(tmp_path: Path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "linear.onnx"
    return path, write_linear_classifier(path)


def test_onnxruntime_runner_matches_numpy(linear_onnx: tuple[Path, np.ndarray]) -> None:
    path, weight = linear_onnx
    batch = np.random.default_rng(1).standard_normal((5, 3, 4, 4)).astype(np.float32)
    with OnnxRuntimeRunner(path, providers=["CPUExecutionProvider"]) as runner:
        assert runner.input_spec == TensorSpec("input", np.dtype(np.float32), (None, 3, 4, 4))
        logits = runner.infer(batch)
        assert runner.providers == ["CPUExecutionProvider"]
    np.testing.assert_allclose(logits, batch.reshape(5, -1) @ weight, rtol=1e-5, atol=1e-5)
    assert runner.state is RunnerState.CLOSED


def test_runner_state_is_checked(linear_onnx: tuple[Path, np.ndarray]) -> None:
    runner = OnnxRuntimeRunner(linear_onnx[0])
    with pytest.raises(EdgeresError, match="needs a loaded runner"):
        runner.infer(np.zeros((1, 3, 4, 4), np.float32))
    runner.load()
    with pytest.raises(EdgeresError, match="load\\(\\) called"):
        runner.load()
    runner.close()
    runner.close()
    with pytest.raises(EdgeresError, match="closed"):
        runner.infer(np.zeros((1, 3, 4, 4), np.float32))


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((1, 3, 4, 4), np.float64), "dtype float64"),
        (np.zeros((3, 4, 4), np.float32), "rank 4"),
        (np.zeros((1, 3, 5, 4), np.float32), "axis 2 is 5"),
        (np.zeros((0, 3, 4, 4), np.float32), "axis 0 is empty"),
    ],
)
def test_bad_inputs_are_refused_with_the_tensor_name(
    linear_onnx: tuple[Path, np.ndarray], batch: np.ndarray, message: str
) -> None:
    with OnnxRuntimeRunner(linear_onnx[0]) as runner, pytest.raises(UserInputError, match=f"'input'.*{message}"):
        runner.infer(batch)


def test_missing_and_unloadable_artifacts(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="file not found"):
        OnnxRuntimeRunner(tmp_path / "absent.onnx").load()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserInputError, match="not a valid ONNX model"):
        OnnxRuntimeRunner(junk).load()
    with pytest.raises(UserInputError, match="file not found"):
        open_runner(tmp_path / "absent.engine")
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"weights")
    with pytest.raises(UserInputError, match="neither an ONNX model nor a TensorRT engine"):
        open_runner(checkpoint)


def test_failed_load_releases_what_it_acquired(tmp_path: Path) -> None:
    """onnxruntime opens the two-input model, then the runner refuses it: the session must not linger."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["logits"])],
        "two_inputs",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("a", "b")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    runner = OnnxRuntimeRunner(path)
    with pytest.raises(UserInputError, match="2 inputs"):
        runner.load()
    assert runner._session is None and runner.state is RunnerState.NEW


def test_unavailable_provider_is_named(linear_onnx: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(UserInputError, match="NoSuchExecutionProvider"):
        OnnxRuntimeRunner(linear_onnx[0], providers=["NoSuchExecutionProvider"]).load()


def test_top_k_orders_and_normalises() -> None:
    logits = np.array([[0.0, 3.0, 1.0, 2.0], [5.0, -1.0, 5.5, 0.0]], np.float32)
    result = top_k(logits, k=2)
    np.testing.assert_array_equal(result.indices, [[1, 3], [2, 0]])
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    np.testing.assert_allclose(result.probabilities, np.take_along_axis(softmax, result.indices, 1), rtol=1e-6)
    with pytest.raises(UserInputError, match="k=5"):
        top_k(logits, k=5)


def test_importing_the_runtime_does_not_import_torch() -> None:
    names = ("base", "ort_runner", "trt_runner", "inputs", "topk", "dispatch", "verification", "heldout")
    runtime = [f"edgeres.runtime.{name}" for name in names]
    others = ("edgeres.artifacts.class_names", "edgeres.engine.builder", "edgeres.engine.cuda", "edgeres.engine.target")
    modules = ", ".join([*runtime, *others])
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- raw YUYV frame file -> top-k, for FP32, FP16 and INT8 artifacts of a fused model -------------------

FRAME_W, FRAME_H = 320, 240


def small_classifier(size: int = 224, classes: int = 4) -> onnx.ModelProto:
    """[batch,3,size,size] -> [batch,classes]: 1x1 conv (+/- each channel), ReLU, global mean, Gemm."""
    conv = np.concatenate([np.eye(3), -np.eye(3)]).astype(np.float32).reshape(6, 3, 1, 1)
    gemm = np.random.default_rng(3).standard_normal((classes, 6)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], name="conv"),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
            helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flatten"),
            helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
        ],
        "small",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [
            numpy_helper.from_array(conv, "conv_w"),
            numpy_helper.from_array(np.zeros(6, np.float32), "conv_b"),
            numpy_helper.from_array(gemm, "fc_w"),
            numpy_helper.from_array(np.zeros(classes, np.float32), "fc_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def fused_artifacts(tmp_path_factory: pytest.TempPathFactory, real_images: dict[str, np.ndarray]) -> dict[str, Path]:
    """FP32 fused model (export-style sidecar with the YUYV contract), its FP16 and INT8 (CPU twin)
    quantizations (quantize-style sidecars naming the source), and a raw YUYV file of real photographs."""
    from edgeres.artifacts.atomic import sha256_file
    from edgeres.artifacts.sidecar import write_sidecar
    from edgeres.frames.contract import InputContract
    from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
    from edgeres.frontend.graph import attach_frontend
    from edgeres.quantize.calibrate import collect_ranges
    from edgeres.quantize.cpu_twin import insert_qdq_cpu
    from edgeres.quantize.fp16 import to_fp16
    from edgeres.quantize.histogram import CalibAlgo
    from edgeres.quantize.qdq import plan_qdq

    folder = tmp_path_factory.mktemp("fused")
    contract = InputContract(YuvLayout.YUYV, FRAME_W, FRAME_H)
    crops = [image[:FRAME_H, :FRAME_W] for image in real_images.values()]
    frames = rgb_to_yuv422(np.stack(crops), YuvLayout.YUYV)
    raw = folder / "frames.yuyv"
    write_yuv(raw, frames, YuvLayout.YUYV)
    fused = attach_frontend(small_classifier(), contract)
    paths = {"fp32": folder / "fused.onnx", "fp16": folder / "fused_fp16.onnx", "int8": folder / "fused_int8.onnx"}
    onnx.save(fused, str(paths["fp32"]))
    write_sidecar(paths["fp32"], "export", {}, {"precision": "fp32", "input": contract.to_dict()})
    plan = plan_qdq(fused)
    ranges = collect_ranges(paths["fp32"], [frames], CalibAlgo.MAX, list(plan.activations + plan.cpu_extra))
    source: dict[str, str | None] = {"onnx": str(paths["fp32"]), "onnx_sha256": sha256_file(paths["fp32"])}
    for name, model in (("fp16", to_fp16(fused)), ("int8", insert_qdq_cpu(fused, plan, ranges))):
        onnx.save(model, str(paths[name]))
        write_sidecar(paths[name], "quantize", source, {})
    return {**paths, "frames": raw}


def test_yuyv_file_to_top_k_for_fp32_fp16_int8(fused_artifacts: dict[str, Path]) -> None:
    from edgeres.artifacts.precision import Precision, onnx_precision
    from edgeres.frames.contract import InputContract
    from edgeres.frontend.host import reference_input
    from edgeres.runtime.inputs import read_input

    assert [onnx_precision(fused_artifacts[p]) for p in ("fp32", "fp16", "int8")] == list(Precision)
    logits = {}
    for precision in ("fp32", "fp16", "int8"):
        batch = read_input(fused_artifacts[precision], fused_artifacts["frames"])
        assert batch.dtype == np.uint8 and batch.shape == (4, FRAME_H, 2 * FRAME_W)
        with OnnxRuntimeRunner(fused_artifacts[precision], providers=["CPUExecutionProvider"]) as runner:
            logits[precision] = runner.infer(batch)
    # The fused FP32 model equals the plain classifier on the host-side front-end's output.
    sidecar = json.loads((fused_artifacts["fp32"].parent / "fused.onnx.json").read_text())
    contract = InputContract.from_dict(sidecar["options"]["input"])
    frames = read_input(fused_artifacts["fp32"], fused_artifacts["frames"])
    plain = run_onnx(small_classifier().SerializeToString(), reference_input(frames, contract))
    np.testing.assert_allclose(logits["fp32"], plain, rtol=1e-3, atol=1e-3)
    best = top_k(logits["fp32"], k=3)
    assert len(set(best.indices[:, 0].tolist())) > 1, "the four photographs should not all get one class"
    for precision in ("fp16", "int8"):
        other = top_k(logits[precision], k=3)
        np.testing.assert_array_equal(other.indices[:, 0], best.indices[:, 0])
        noise = logits[precision].astype(np.float64) - logits["fp32"]
        sqnr_db = 10 * np.log10(np.sum(logits["fp32"].astype(np.float64) ** 2) / np.sum(noise**2))
        print(f"{precision}: SQNR {sqnr_db:.1f} dB vs fp32, top-1 {other.indices[:, 0].tolist()}")
        assert sqnr_db > (40 if precision == "fp16" else 20), f"{precision}: SQNR {sqnr_db:.1f} dB"


def test_rgb_model_reads_an_image(tmp_path: Path, real_images: dict[str, np.ndarray]) -> None:
    import cv2

    from edgeres.artifacts.sidecar import write_sidecar
    from edgeres.runtime.inputs import read_input

    model_path = tmp_path / "plain.onnx"
    onnx.save(small_classifier(), str(model_path))
    rgb_contract = {"kind": "rgb_float", "name": "input", "shape": ["batch", 3, 224, 224]}
    write_sidecar(model_path, "export", {}, {"input": rgb_contract})
    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), cv2.cvtColor(real_images["coffee"], cv2.COLOR_RGB2BGR))
    batch = read_input(model_path, image)
    assert batch.shape == (1, 3, 224, 224) and batch.dtype == np.float32
    with OnnxRuntimeRunner(model_path) as runner:
        assert runner.infer(batch).shape == (1, 4)


def test_raw_clip_is_read_a_slice_at_a_time(fused_artifacts: dict[str, Path], tmp_path: Path) -> None:
    from edgeres.frames.yuv import YuvLayout, open_yuv
    from edgeres.runtime.inputs import read_input

    whole = np.array(open_yuv(fused_artifacts["frames"], YuvLayout.YUYV, FRAME_W, FRAME_H).frames())
    np.testing.assert_array_equal(read_input(fused_artifacts["fp32"], fused_artifacts["frames"], 1, 2), whole[1:3])
    np.testing.assert_array_equal(read_input(fused_artifacts["fp32"], fused_artifacts["frames"], 3, 100), whole[3:])
    with pytest.raises(UserInputError, match=r"first frame 4 is outside the clip's 0\.\.3"):
        read_input(fused_artifacts["fp32"], fused_artifacts["frames"], start=4)
    with pytest.raises(UserInputError, match="frame count 0"):
        read_input(fused_artifacts["fp32"], fused_artifacts["frames"], count=0)


def test_a_sidecar_of_another_file_is_refused(fused_artifacts: dict[str, Path], tmp_path: Path) -> None:
    """A sidecar copied beside another model is not trusted for its input contract, nor for an engine."""
    import shutil

    from edgeres.runtime.inputs import read_input
    from edgeres.runtime.trt_runner import TensorRTRunner

    impostor = tmp_path / "fused.onnx"
    onnx.save(small_classifier(), str(impostor))  # another model, smaller than the fused one
    shutil.copy(fused_artifacts["fp32"].with_name("fused.onnx.json"), tmp_path / "fused.onnx.json")
    with pytest.raises(UserInputError, match="sidecar describes another file"):
        read_input(impostor, fused_artifacts["frames"])
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine bytes")
    from edgeres.artifacts.sidecar import write_sidecar

    write_sidecar(engine, "engine", {}, {})
    engine.write_bytes(b"other bytes!")  # same size, other content: only the hash tells
    with pytest.raises(UserInputError, match="SHA-256 differs"):
        TensorRTRunner(engine).load()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, r"options\.input is 5, not an object"),
        ({"kind": "yuv422", "name": "frame", "shape": ["batch", 240, 640]}, r"options\.input: input contract lacks"),
        ({"kind": "rgb_float", "name": "input", "shape": ["batch", 3, "224", 224.5]}, r"options\.input\.shape is"),
    ],
)
def test_a_malformed_input_in_the_sidecar_is_refused_in_one_line(
    tmp_path: Path, real_images: dict[str, np.ndarray], value: object, message: str
) -> None:
    import cv2

    from edgeres.artifacts.sidecar import sidecar_path, write_sidecar
    from edgeres.runtime.inputs import read_input

    model_path = tmp_path / "plain.onnx"
    onnx.save(small_classifier(), str(model_path))
    write_sidecar(model_path, "export", {}, {"input": value})
    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), cv2.cvtColor(real_images["coffee"], cv2.COLOR_RGB2BGR))
    with pytest.raises(UserInputError, match=message) as info:
        read_input(model_path, image)
    assert str(info.value).startswith(f"{sidecar_path(model_path)}: options.input") and "\n" not in str(info.value)


def test_raw_file_of_the_wrong_size_is_refused(fused_artifacts: dict[str, Path], tmp_path: Path) -> None:
    from edgeres.runtime.inputs import read_input

    short = tmp_path / "short.yuyv"
    short.write_bytes(fused_artifacts["frames"].read_bytes()[:-2])
    with pytest.raises(UserInputError, match="not a whole number of yuyv 320x240 frames"):
        read_input(fused_artifacts["int8"], short)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed: tests/gpu runs it")
def test_tensorrt_runner_without_tensorrt_says_how_to_get_it(tmp_path: Path) -> None:
    from edgeres.errors import BackendUnavailableError
    from edgeres.runtime.trt_runner import TensorRTRunner

    engine = engine_with_sidecar(tmp_path / "model.engine", {}, {})
    assert isinstance(open_runner(engine), TensorRTRunner)
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        TensorRTRunner(engine).load()
    with pytest.raises(UserInputError, match="file not found"):
        TensorRTRunner(tmp_path / "absent.engine").load()
