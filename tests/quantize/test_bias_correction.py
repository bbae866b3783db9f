"""Bias correction: streaming input means, the exact per-channel mean shift, and the build option."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.flow.orchestrator import SUMMARY_NAME
from edgeres.quantize.bias_correction import correct_biases, input_means, weighted_inputs
from edgeres.quantize.histogram import StreamingMean
from edgeres.quantize.qdq import QdqPlan, insert_qdq, plan_qdq

CHANNELS, SIZE = 4, 9


def _branches_model(rng: np.random.Generator) -> onnx.ModelProto:
    """Four weighted layers reading the same input: a strided padded 3x3 conv, a padded depthwise conv,
    a 1x1 conv without bias and a Gemm on the flattened input. Weights are coarse enough to round visibly."""
    x = helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", CHANNELS, SIZE, SIZE])
    weights = {
        "w_full": rng.normal(0, 1, (6, CHANNELS, 3, 3)),
        "b_full": rng.normal(0, 1, 6),
        "w_dw": rng.normal(0, 1, (CHANNELS, 1, 3, 3)),
        "b_dw": rng.normal(0, 1, CHANNELS),
        "w_1x1": rng.normal(0, 1, (5, CHANNELS, 1, 1)),
        "w_fc": rng.normal(0, 1, (3, CHANNELS * SIZE * SIZE)),
        "b_fc": rng.normal(0, 1, 3),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    nodes = [
        helper.make_node("Conv", ["input", "w_full", "b_full"], ["full"], "full", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["input", "w_dw", "b_dw"], ["dw"], "dw", pads=[1, 1, 1, 1], group=CHANNELS),
        helper.make_node("Conv", ["input", "w_1x1"], ["pw"], "pw"),
        helper.make_node("Flatten", ["input"], ["flat"], "flat"),
        helper.make_node("Gemm", ["flat", "w_fc", "b_fc"], ["fc"], "fc", transB=1),
    ]
    shapes = {"full": [6, 5, 5], "dw": [CHANNELS, SIZE, SIZE], "pw": [5, SIZE, SIZE], "fc": [3]}
    outputs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", *s]) for n, s in shapes.items()]
    model = helper.make_model(
        helper.make_graph(nodes, "branches", [x], outputs, inits), opset_imports=[helper.make_opsetid("", 13)]
    )
    onnx.checker.check_model(model)
    return model


def _weights_only(plan: QdqPlan) -> QdqPlan:
    """The plan's weight quantization without any activation Q/DQ: isolates the weight-rounding error."""
    return QdqPlan(inputs=(), weights=plan.weights, residual_adds=(), kept_float=(), frontend_nodes=())


def _output_means(model: onnx.ModelProto, data: np.ndarray) -> list[np.ndarray]:
    """Per output channel, the mean over samples and positions of every graph output."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": data})
    return [o.reshape(o.shape[0], o.shape[1], -1).mean(axis=(0, 2), dtype=np.float64) for o in outputs]


def test_streaming_mean_matches_the_mean_over_all_samples_however_batched() -> None:
    data = np.random.default_rng(1).normal(3.0, 2.0, (11, 2, 5, 5)).astype(np.float32)
    stream = StreamingMean()
    for start, stop in ((0, 4), (4, 5), (5, 11)):
        stream.add(data[start:stop])
    np.testing.assert_allclose(stream.mean, data.astype(np.float64).mean(axis=0), rtol=1e-12)
    with pytest.raises(UserInputError, match="change shape"):
        stream.add(data[:2, :, :4])
    with pytest.raises(UserInputError, match="no calibration samples"):
        _ = StreamingMean().mean


def test_input_means_streams_intermediate_tensors() -> None:
    rng = np.random.default_rng(2)
    model = _branches_model(rng)
    data = rng.uniform(0.0, 2.0, (10, CHANNELS, SIZE, SIZE)).astype(np.float32)
    means = input_means(model, [data[:3], data[3:]], ["input", "flat", "dw"])
    np.testing.assert_allclose(means["input"], data.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(means["flat"], data.reshape(10, -1).mean(axis=0, dtype=np.float64), rtol=1e-6)
    assert means["dw"].shape == (CHANNELS, SIZE, SIZE)


def test_corrected_biases_restore_every_layer_output_mean_on_the_calibration_data() -> None:
    rng = np.random.default_rng(3)
    model = _branches_model(rng)
    # Non-zero-mean inputs (as after a ReLU): weight rounding then shifts the output means.
    data = rng.uniform(0.0, 2.0, (16, CHANNELS, SIZE, SIZE)).astype(np.float32)
    plan = plan_qdq(model)
    assert {w.node for w in plan.weights} == {"full", "dw", "pw", "fc"}
    ranges = {t: 2.0 for t in plan.activations}
    means = input_means(model, [data[:5], data[5:]], weighted_inputs(model, plan))
    corrected = correct_biases(model, plan, ranges, means)
    reference = _output_means(model, data)
    plain = _output_means(insert_qdq(model, _weights_only(plan), {}), data)
    fixed = _output_means(insert_qdq(corrected, _weights_only(plan), {}), data)
    for name, ref, before, after in zip(("full", "dw", "pw", "fc"), reference, plain, fixed, strict=True):
        shift_before, shift_after = np.abs(before - ref).max(), np.abs(after - ref).max()
        assert shift_before > 1e-3, f"{name}: rounding left the mean unchanged ({shift_before:.2e}), nothing to test"
        assert shift_after < shift_before / 100, f"{name}: {shift_after:.2e} vs {shift_before:.2e} before"
    # The bias-less 1x1 conv got a bias; the float model is otherwise untouched.
    pw = next(n for n in corrected.graph.node if n.name == "pw")
    assert len(pw.input) == 3
    before_inits = {i.name for i in model.graph.initializer}
    assert before_inits <= {i.name for i in corrected.graph.initializer}


def test_missing_input_mean_is_named() -> None:
    model = _branches_model(np.random.default_rng(4))
    plan = plan_qdq(model)
    with pytest.raises(UserInputError, match="no input mean for layer"):
        correct_biases(model, plan, {t: 1.0 for t in plan.activations}, {})


class _TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(out, 1), 1))


def _biases(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.name: inits[n.input[2]] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}


def test_cli_bias_correction_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = tmp_path / "tiny.onnx"
    onnx.save(torch_to_onnx(_TinyNet().eval()), source)
    base = ["build", "--int8", "--onnx", str(source), "--calib-size", "4", "--calib-algo", "max", "--no-profile"]
    runner = CliRunner()
    for flag, folder in (([], "on"), (["--no-bias-correction"], "off")):
        result = runner.invoke(app, [*base, *flag, "-o", str(tmp_path / folder)])
        assert result.exit_code == 0, result.output
    float_biases = _biases(source)
    for folder, expected in (("on", True), ("off", False)):
        assert json.loads((tmp_path / folder / SUMMARY_NAME).read_text())["bias_correction"] is expected
        quantized = _biases(tmp_path / folder / "model_int8_qdq.onnx")
        assert quantized.keys() == float_biases.keys()
        # The TensorRT model stores its remainder in FP16 (the default --high-precision): compare in its type.
        moved = any(not np.array_equal(q, float_biases[name].astype(q.dtype)) for name, q in quantized.items())
        assert moved is expected, f"{folder}: biases {'unchanged' if expected else 'changed'}"


def test_calibration_pass_gathers_the_same_means_as_a_pass_of_their_own() -> None:
    from edgeres.quantize.calibrate import collect_statistics

    rng = np.random.default_rng(4)
    model = _branches_model(rng)
    data = rng.uniform(0.0, 2.0, (9, CHANNELS, SIZE, SIZE)).astype(np.float32)
    plan = plan_qdq(model)
    wanted = weighted_inputs(model, plan)
    stats = collect_statistics(model, [data[:4], data[4:]], list(plan.activations), means_for=wanted)
    alone = input_means(model, [data[:4], data[4:]], wanted)
    assert sorted(stats.means) == sorted(alone)
    for name, stream in stats.means.items():
        np.testing.assert_array_equal(stream.mean, alone[name])
    with pytest.raises(ValueError, match="not among the calibrated tensors"):
        collect_statistics(model, [data], ["flat"], means_for=["dw"])
