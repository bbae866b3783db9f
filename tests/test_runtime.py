"""ONNX Runtime runner end to end on CPU, the runner state machine, input checks and top-k."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import EdgeresError, UserInputError
from edgeres.runtime import OnnxRuntimeRunner, RunnerState, TensorSpec, open_runner, top_k

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
    with pytest.raises(UserInputError, match="onnxruntime cannot load it"):
        OnnxRuntimeRunner(junk).load()
    with pytest.raises(UserInputError, match="unknown artifact type"):
        open_runner(tmp_path / "model.pt")


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
    code = "import sys, edgeres.runtime, edgeres.engine, edgeres.cuda; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
