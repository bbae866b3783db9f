"""The TensorRT Q/DQ model with an FP16 remainder (edgeres.quantize.tensorrt_qdq), on models built here.

The FP16 model is run on onnxruntime CPU with basic optimisations (no Q/DQ fusions) and without
onnxruntime's WeightBiasQuantization: that level-1 optimizer turns each float Conv bias into int32 codes
of (input scale x weight scale) and, in an FP16 model, rounds those codes to FP16 before the int32 cast,
so any code above 65504 becomes infinite (measured on EfficientNet-Lite0: -7 dB logits SQNR with it,
21 dB without it). TensorRT keeps the bias in float, so without it is the faithful figure.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.artifacts.onnx import model_opset
from edgeres.artifacts.ort_session import cpu_session
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.images import default_calibration_dir
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout, rgb_to_yuv422
from edgeres.frontend.graph import NODE_PREFIX, attach_frontend, frontend_graph
from edgeres.frontend.plan import clip_bounds
from edgeres.quantize.bias_correction import correct_biases, weighted_inputs
from edgeres.quantize.calibrate import collect_ranges, collect_statistics, ranges_from_statistics
from edgeres.quantize.fp16 import convert_to_fp16, to_fp16
from edgeres.quantize.grid import INT8_MAX
from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.quantize.qdq import (
    FP16_TINIEST,
    QdqPlan,
    activation_scale,
    insert_qdq,
    plan_qdq,
)
from edgeres.quantize.tensorrt_qdq import (
    FP16_SCALE_OPSET,
    HighPrecision,
    at_least_opset,
    tensorrt_qdq_model,
)
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for

FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)


def faithful_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """Q/DQ computed as written: edgeres's reference session (Q/DQ fusions and WeightBiasQuantization off)."""
    return cpu_session(model, 2, reference_kernels=True)


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - cand) ** 2)))


def residual_model(size: int = 16) -> onnx.ModelProto:
    """input -> Conv -> Relu -> Conv -> Add(skip) -> Relu -> MaxPool -> GlobalAveragePool -> Gemm (opset 17)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b1"),
        numpy_helper.from_array(rng.standard_normal((8, 8, 1, 1)).astype(np.float32) * 0.3, "w2"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b2"),
        numpy_helper.from_array(rng.standard_normal((5, 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.standard_normal(5).astype(np.float32) * 0.1, "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def calibrated(
    model: onnx.ModelProto, batch: np.ndarray, keep: tuple[str, ...] = ()
) -> tuple[QdqPlan, dict[str, float]]:
    plan = plan_qdq(model, keep)
    return plan, collect_ranges(model, [batch], CalibAlgo.MAX, tensors=list(plan.activations))


def float_types(model: onnx.ModelProto) -> dict[str, int]:
    """Every float tensor of the model (inputs, outputs, intermediates, initializers) -> its element type."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info, *graph.output)}
    types.update({i.name: i.data_type for i in graph.initializer})
    for node in graph.node:
        if node.op_type == "Constant":
            types[node.output[0]] = node.attribute[0].t.data_type
    return {name: t for name, t in types.items() if t in FLOAT_TYPES}


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name))


@pytest.fixture(scope="module")
def tiny() -> tuple[onnx.ModelProto, QdqPlan, dict[str, float], np.ndarray]:
    model = residual_model()
    batch = np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)
    plan, ranges = calibrated(model, batch)
    return model, plan, ranges, batch


def test_fp32_remainder_is_insert_qdq_byte_for_byte(tiny) -> None:
    model, plan, ranges, _ = tiny
    written = tensorrt_qdq_model(model, plan, ranges, HighPrecision.FP32).SerializeToString()
    assert written == insert_qdq(model, plan, ranges).SerializeToString()


def test_fp16_remainder_leaves_float32_only_at_the_graph_io(tiny) -> None:
    model, plan, ranges, _ = tiny
    half = tensorrt_qdq_model(model, plan, ranges, HighPrecision.FP16)
    assert model_opset(half) >= FP16_SCALE_OPSET and len(half.opset_import) == 1
    types = float_types(half)
    float32 = {name for name, t in types.items() if t != TensorProto.FLOAT16}
    assert float32 == {"input", "logits"}
    # The float32 input goes through exactly one Cast to FP16; the logits are a Cast of FP16 ones.
    readers = [n for n in half.graph.node if "input" in n.input]
    assert [(n.op_type, n.attribute[0].i) for n in readers] == [("Cast", TensorProto.FLOAT16)]
    producer = next(n for n in half.graph.node if "logits" in n.output)
    assert producer.op_type == "Cast" and types[producer.input[0]] == TensorProto.FLOAT16
    ops = Counter(n.op_type for n in half.graph.node)
    assert ops["Cast"] == 2 and ops["QuantizeLinear"] == len(plan.activations)
    for node in half.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert types[node.input[1]] == TensorProto.FLOAT16, node.name


def test_fp16_scales_are_rounded_up_and_weight_codes_exact_against_them(tiny) -> None:
    model, plan, ranges, _ = tiny
    full, half = insert_qdq(model, plan, ranges), tensorrt_qdq_model(model, plan, ranges, HighPrecision.FP16)
    for tensor in plan.activations:
        written = initializer(half, f"{tensor}_scale")
        assert written.dtype == np.float16
        exact = activation_scale(ranges[tensor])
        assert exact <= float(written) < exact * (1 + 2**-10)  # the next FP16 value up, nothing clips
    for quant in plan.weights:
        weight = initializer(model, quant.initializer).astype(np.float64)
        scales = initializer(half, f"{quant.initializer}_scale")
        codes = initializer(half, f"{quant.initializer}_quantized")
        assert scales.dtype == np.float16
        assert np.all(scales.astype(np.float64) >= initializer(full, f"{quant.initializer}_scale"))
        shape = [1] * weight.ndim
        shape[quant.axis] = -1
        expected = np.clip(np.rint(weight / scales.astype(np.float64).reshape(shape)), -INT8_MAX, INT8_MAX)
        np.testing.assert_array_equal(codes, expected)
        assert np.abs(codes).max() == INT8_MAX  # the largest weight of every channel still fits


def test_fp16_remainder_computes_what_the_fp32_one_does(tiny) -> None:
    model, plan, ranges, batch = tiny
    full = faithful_session(insert_qdq(model, plan, ranges)).run(None, {"input": batch})[0]
    half = faithful_session(tensorrt_qdq_model(model, plan, ranges)).run(None, {"input": batch})[0]
    assert half.dtype == np.float32
    assert sqnr_db(full, half) > 40.0  # FP16 rounding of the remainder only (~50 dB measured here)


def test_kept_float_layers_run_in_fp16(tiny) -> None:
    model, _, _, batch = tiny
    plan, ranges = calibrated(model, batch, ("conv1", "fc"))
    half = tensorrt_qdq_model(model, plan, ranges)
    types = float_types(half)
    nodes = {n.name: n for n in half.graph.node}
    for name in ("conv1", "fc"):
        assert all(types[t] == TensorProto.FLOAT16 for t in (*nodes[name].input, *nodes[name].output))
        assert not nodes[name].input[1].endswith("_dequantized")  # float weights, not a DQ


def hostile_model() -> onnx.ModelProto:
    """Conv channels that batch-norm folding left with weights ~1e-9 and a bias of several units."""
    model = residual_model()
    inits = {i.name: i for i in model.graph.initializer}
    for name, bias_name in (("w1", "b1"), ("w2", "b2")):
        weight, bias = numpy_helper.to_array(inits[name]).copy(), numpy_helper.to_array(inits[bias_name]).copy()
        weight[:3] *= 1e-8
        bias[:3] = [4.0, -3.0, 2.5]
        inits[name].CopyFrom(numpy_helper.from_array(weight, name))
        inits[bias_name].CopyFrom(numpy_helper.from_array(bias, bias_name))
    return model


def test_tiny_weight_scales_keep_a_nonzero_fp16_product_with_the_input_scale() -> None:
    model = hostile_model()
    batch = np.random.default_rng(2).standard_normal((4, 3, 16, 16)).astype(np.float32) * 0.01
    plan, ranges = calibrated(model, batch)
    half = tensorrt_qdq_model(model, plan, ranges)
    nodes = {n.name: n for n in half.graph.node}
    dq = {n.output[0]: n for n in half.graph.node if n.op_type == "DequantizeLinear"}
    for quant in plan.weights:
        node = nodes[quant.node]
        input_scale = initializer(half, dq[node.input[0]].input[1])
        weight_scale = initializer(half, dq[node.input[1]].input[1])
        product = input_scale * weight_scale  # float16 arithmetic, as onnxruntime forms the bias scale
        assert product.dtype == np.float16 and np.all(product > 0), quant.node
        assert np.all(product.astype(np.float64) >= FP16_TINIEST)
    # The trap this avoids: the FP32 model's scales converted to FP16 as they are (the converter clamps
    # a positive value to 5.96e-8 at least) give a zero product for the dead channels.
    w1_scale = initializer(insert_qdq(model, plan, ranges), "w1_scale")
    naive = np.float16(activation_scale(ranges["input"])) * np.maximum(w1_scale, 5.96e-8).astype(np.float16)
    assert np.any(naive == 0)
    full = faithful_session(insert_qdq(model, plan, ranges)).run(None, {"input": batch})[0]
    out = faithful_session(half).run(None, {"input": batch})[0]
    assert np.all(np.isfinite(out)) and sqnr_db(full, out) > 40.0


def test_a_range_beyond_fp16_is_refused_by_name(tiny) -> None:
    model, plan, ranges, _ = tiny
    wide = dict(ranges, r1=1e6)
    with pytest.raises(UserInputError, match=r"'r1'.*FP16"):
        tensorrt_qdq_model(model, plan, wide)
    tensorrt_qdq_model(model, plan, wide, HighPrecision.FP32)  # FP32 takes it


def camera_model(contract: InputContract) -> onnx.ModelProto:
    return attach_frontend(residual_model(contract.size), contract)


def test_opset_19_copy_of_a_camera_model_computes_the_same() -> None:
    contract = InputContract(YuvLayout.UYVY, 64, 48, size=16)
    model = camera_model(contract)
    converted = at_least_opset(model, FP16_SCALE_OPSET)
    assert model_opset(model) == 17  # merge_models may import the default domain twice
    assert [(o.domain, o.version) for o in converted.opset_import] == [("", FP16_SCALE_OPSET)]
    frames = np.random.default_rng(5).integers(0, 256, (2, *contract.frame_shape), dtype=np.uint8)
    before, after = (cpu_session(m, 2).run(None, {"frame": frames})[0] for m in (model, converted))
    np.testing.assert_array_equal(before, after)


def test_camera_model_casts_its_uint8_frame_straight_to_fp16() -> None:
    contract = InputContract(YuvLayout.YUYV, 64, 48, size=16)
    model = camera_model(contract)
    frames = np.random.default_rng(3).integers(0, 256, (3, *contract.frame_shape), dtype=np.uint8)
    plan, ranges = calibrated(model, frames)
    half = tensorrt_qdq_model(model, plan, ranges)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    first = next(n for n in half.graph.node if "frame" in n.input)
    assert first.op_type == "Cast" and first.attribute[0].i == TensorProto.FLOAT16
    float32 = {name for name, t in float_types(half).items() if t != TensorProto.FLOAT16}
    assert float32 == {"logits"}
    # The front-end kept FP32 instead: its tensors stay float32 (no FP16 rounding between its nodes),
    # and its output is cast to FP16 once, where the network reads it.
    kept = tensorrt_qdq_model(model, plan, ranges, HighPrecision.FP16, frontend=HighPrecision.FP32)
    types = float_types(kept)
    frontend = [n for n in kept.graph.node if n.name.startswith(NODE_PREFIX)]
    assert len(frontend) == len(plan.frontend_nodes)
    assert all(types.get(t, TensorProto.FLOAT) == TensorProto.FLOAT for n in frontend for t in n.output)
    casts = [Counter(n.op_type for n in m.graph.node)["Cast"] for m in (half, kept)]
    assert casts[1] == casts[0] + 1
    full = faithful_session(insert_qdq(model, plan, ranges)).run(None, {"frame": frames})[0]
    for candidate in (half, kept):
        assert sqnr_db(full, faithful_session(candidate).run(None, {"frame": frames})[0]) > 30.0


def test_fp16_build_keeps_the_frontend_in_float32_between_its_nodes() -> None:
    """to_fp16 keeps front-end nodes FP32: their intermediate tensors too, not only their arithmetic."""
    contract = InputContract(YuvLayout.NV16, 64, 48, size=16)
    half = to_fp16(camera_model(contract))
    types = float_types(half)
    for node in half.graph.node:
        if node.name.startswith(NODE_PREFIX) and node.op_type != "Cast":
            assert all(types.get(t, TensorProto.FLOAT) == TensorProto.FLOAT for t in node.output), node.name
    assert not [n for n in half.graph.node if n.op_type == "Cast" and n.name.startswith(NODE_PREFIX + "box")]


def hostile_pictures(width: int, height: int) -> list[np.ndarray]:
    """Near-white, saturated colour ramps and block noise: large box sums and every colour corner."""
    rng = np.random.default_rng(4)
    white = rng.integers(245, 256, (height, width, 3), dtype=np.uint8)
    x, y = np.meshgrid(np.linspace(0, 255, width), np.linspace(0, 255, height))
    ramps = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    blocks = rng.integers(0, 256, (height // 40 + 1, width // 40 + 1, 3), dtype=np.uint8)
    blocky = np.repeat(np.repeat(blocks, 40, axis=0), 40, axis=1)[:height, :width]
    return [white, ramps, np.ascontiguousarray(blocky)]


# FP16 front-end error in INT8 steps of its output (step = the largest value the front-end can output,
# the end of its RGB clip, / 127: what calibration finds on real photographs, 0.0208). Measured against
# the FP32 front-end on the 12 shipped photographs (yuyv and nv16, 1920x1080 and 3840x2160, limited/bt601
# and full/bt709, centre-crop and stretch): max 0.20-0.27 steps for yuyv, 0.37-0.46 for nv16 (which keeps
# its colour 1x1 Conv after the filters), RMS 0.03-0.09 steps; 3-7 % of the INT8 codes move by one. On the
# generated frames below at 1920x1080: max 0.27 (yuyv) and 0.43 (nv16, near-white full range), RMS per
# picture up to 0.10 and 0.135; at 3840x2160 max 0.24 and 0.53, RMS up to 0.07 and 0.13. Any error under
# one step moves an INT8 code by one at most; INT8 rounding itself is RMS 0.29 steps, so an RMS of 0.15
# adds at most a quarter of its noise power (about 1 dB on conv1's input, 0.1-0.4 dB measured on logits).
FRONTEND_MAX_STEPS = 0.75
FRONTEND_RMS_STEPS = 0.15


@pytest.mark.parametrize(
    ("layout", "width", "height", "colorspace", "color_range"),
    [
        (YuvLayout.YUYV, 1920, 1080, ColorSpace.BT601, ColorRange.LIMITED),
        (YuvLayout.YUYV, 1920, 1080, ColorSpace.BT709, ColorRange.FULL),
        (YuvLayout.NV16, 1920, 1080, ColorSpace.BT709, ColorRange.FULL),
        (YuvLayout.NV16, 3840, 2160, ColorSpace.BT601, ColorRange.LIMITED),  # the largest error measured
    ],
)
def test_fp16_frontend_error_is_within_a_fraction_of_the_int8_step(
    layout: YuvLayout, width: int, height: int, colorspace: ColorSpace, color_range: ColorRange
) -> None:
    contract = InputContract(layout, width, height, colorspace, color_range)
    graph = frontend_graph(contract, FP16_SCALE_OPSET)
    full, half = cpu_session(graph, 2), cpu_session(convert_to_fp16(graph, op_block_list=[]), 2)
    low, high = clip_bounds()
    step = max(np.abs(low).max(), np.abs(high).max()) / INT8_MAX
    errors = []
    for picture in hostile_pictures(contract.width, contract.height):
        frame = rgb_to_yuv422(picture, layout, colorspace, color_range)[None]
        ref = full.run(None, {"frame": frame})[0].astype(np.float64)
        errors.append((half.run(None, {"frame": frame})[0] - ref) / step)
    error = np.abs(np.concatenate(errors))
    rms = float(np.sqrt(np.mean(error**2)))
    assert error.max() < FRONTEND_MAX_STEPS and rms < FRONTEND_RMS_STEPS, f"max {error.max():.3f}, rms {rms:.4f}"


# Logits SQNR against FP32 on the 16 held-out samples of tests/quantize/test_int8_trained.py, with the
# calibration below (32 samples, mse, bias correction), measured with this test's own steps:
# FP32 remainder 21.26 dB, FP16 remainder 21.12 dB; keeping the stem conv and the classifier float (so they
# run in FP16) 21.29 and 21.10 dB. FP16-representable scales alone move the figure by up to 0.2 dB either
# way, so 0.75 dB below the FP32 remainder is where FP16 would really cost something; 20 dB is the floor.
MIN_FP16_SQNR_DB = 20.0
MAX_FP16_LOSS_DB = 0.75


@pytest.fixture(scope="module")
def lite0() -> onnx.ModelProto:
    from edgeres.export.onnx_export import torch_to_onnx
    from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0

    return torch_to_onnx(load_efficientnet_lite0())


@pytest.mark.slow
@pytest.mark.parametrize("keep", [(), ("_conv_stem", "_fc")])
def test_fp16_remainder_keeps_the_int8_fidelity_of_a_trained_network(
    lite0: onnx.ModelProto, keep: tuple[str, ...], tmp_path: Path
) -> None:
    from tests.quantize.test_int8_trained import HELD_OUT, held_out_batch

    for photo in default_calibration_dir().glob("*.jpg"):
        if photo.stem not in HELD_OUT:
            shutil.copy(photo, tmp_path)
    plan = plan_qdq(lite0, keep)
    calibration = CalibrationSet(tmp_path, encoder_for(lite0), 32)
    inputs = weighted_inputs(lite0, plan)
    stats = collect_statistics(lite0, calibration.batches(8), list(plan.activations), means_for=inputs)
    ranges = ranges_from_statistics(stats, CalibAlgo.MSE, CalibOptions())
    corrected = correct_biases(lite0, plan, ranges, {name: s.mean for name, s in stats.means.items()})
    batch = held_out_batch()
    reference = cpu_session(lite0, 2).run(None, {"input": batch})[0]
    figures = {}
    for precision in HighPrecision:
        model = tensorrt_qdq_model(corrected, plan, ranges, precision)
        figures[precision] = sqnr_db(reference, faithful_session(model).run(None, {"input": batch})[0])
    assert figures[HighPrecision.FP16] > MIN_FP16_SQNR_DB, figures
    assert figures[HighPrecision.FP16] > figures[HighPrecision.FP32] - MAX_FP16_LOSS_DB, figures
