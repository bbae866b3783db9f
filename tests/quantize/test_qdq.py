"""Q/DQ placement, the U8S8 twin, weight quantization and FP16, on small models built here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.frontend.graph import NODE_PREFIX
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model
from edgeres.quantize.calibrate import collect_ranges
from edgeres.quantize.cpu_twin import WeightType, exact_weight_type, insert_qdq_cpu, offset_weights, uint8_weights
from edgeres.quantize.fp16 import to_fp16
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import (
    QdqPlan,
    WeightQuant,
    activation_scale,
    bias_safe_scales,
    insert_qdq,
    plan_qdq,
    quantize_weight,
)


def session(model: onnx.ModelProto, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, Path]:
    model = torch_to_onnx(build_model(Arch.RESNET18, num_classes=10))
    path = tmp_path_factory.mktemp("r18") / "r18.onnx"
    onnx.save(model, path)
    return model, path


@pytest.fixture(scope="module")
def resnet18_ranges(resnet18: tuple[onnx.ModelProto, Path]) -> tuple[QdqPlan, dict[str, float]]:
    model, path = resnet18
    plan = plan_qdq(model)
    batches = [np.random.default_rng(1).standard_normal((2, 3, 224, 224)).astype(np.float32)]
    ranges = collect_ranges(path, batches, CalibAlgo.MAX, tensors=list(plan.activations + plan.cpu_extra))
    return plan, ranges


def test_every_conv_and_gemm_reads_quantized_input_and_weight(resnet18, resnet18_ranges) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    qdq = insert_qdq(model, plan, ranges)
    made_by = producers(qdq)
    inits = {i.name: i for i in qdq.graph.initializer}
    weighted = [n for n in qdq.graph.node if n.op_type in ("Conv", "Gemm")]
    assert len(weighted) == 21  # 20 convs + fc in ResNet18
    for node in weighted:
        act, weight = made_by[node.input[0]], made_by[node.input[1]]
        assert act.op_type == "DequantizeLinear" and weight.op_type == "DequantizeLinear", node.name
        assert inits[weight.input[0]].data_type == TensorProto.INT8
        axis = helper.get_attribute_value(weight.attribute[0])
        assert axis == 0  # Conv [M, C, kH, kW] and the exported fc (transB=1, [N, K]): output channels first
        scales = numpy_helper.to_array(inits[weight.input[1]])
        assert scales.shape == (numpy_helper.to_array(inits[weight.input[0]]).shape[0],)
        zp = numpy_helper.to_array(inits[act.input[2]])
        assert zp.dtype == np.int8 and zp == 0
    # Logits stay float: nothing quantizes the graph output.
    assert made_by["logits"].op_type == "Gemm"


def test_residual_add_quantizes_the_skip_only(resnet18, resnet18_ranges) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    qdq = insert_qdq(model, plan, ranges)
    made_by = producers(qdq)
    adds = [n for n in qdq.graph.node if n.op_type == "Add"]
    assert len(adds) == 8 and len(plan.residual_adds) == 8
    for add in adds:
        kinds = sorted(made_by[i].op_type for i in add.input)
        assert kinds == ["Conv", "DequantizeLinear"], add.name
    # Downsampling blocks: both inputs come from convs; the shortcut conv's output is the quantized one.
    shortcut = next(n for n in adds if n.name == "/layer2/layer2.0/Add")
    skip = next(i for i in shortcut.input if made_by[i].op_type == "DequantizeLinear")
    assert made_by[made_by[skip].input[0]].input[0] == "/layer2/layer2.0/downsample/downsample.0/Conv_output_0"


def test_keep_float_layers_stay_float(resnet18, resnet18_ranges) -> None:
    model, _ = resnet18
    _, ranges = resnet18_ranges
    plan = plan_qdq(model, keep_float=("conv1", "fc"))
    qdq = insert_qdq(model, plan, ranges)
    made_by = producers(qdq)
    by_name = {n.name: n for n in qdq.graph.node}
    assert by_name["/conv1/Conv"].input[0] == "input"
    assert by_name["/fc/Gemm"].input[:2] == ["/Flatten_output_0", "fc.weight"]
    assert made_by[by_name["/layer1/layer1.0/conv1/Conv"].input[0]].op_type == "DequantizeLinear"
    with pytest.raises(UserInputError, match="no-such-layer"):
        plan_qdq(model, keep_float=("no-such-layer",))


@pytest.mark.parametrize(
    ("layer", "kept"),
    [
        ("layer1.0.conv1", ["/layer1/layer1.0/conv1/Conv"]),
        ("layer1.0", ["/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/conv2/Conv"]),
        ("layer2.0.downsample", ["/layer2/layer2.0/downsample/downsample.0/Conv"]),
    ],
)
def test_keep_float_takes_module_paths_of_layers_blocks_and_stages(resnet18, layer: str, kept: list[str]) -> None:
    model, _ = resnet18
    assert list(plan_qdq(model, keep_float=(layer,)).kept_float) == kept
    stage = plan_qdq(model, keep_float=("layer4",)).kept_float
    assert len(stage) == 5 and all(name.startswith("/layer4/") for name in stage)  # 2 blocks x 2 convs + downsample


@pytest.mark.parametrize("layer", ["maxpool", "layer1.0.relu", "/", ""])
def test_keep_float_refuses_names_without_a_weighted_layer(resnet18, layer: str) -> None:
    """A pooling, an activation or an empty name would keep nothing: refused, not silently ignored."""
    model, _ = resnet18
    with pytest.raises(UserInputError, match="no Conv or Gemm of that name"):
        plan_qdq(model, keep_float=(layer,))


def test_missing_range_is_named(resnet18, resnet18_ranges) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    partial = dict(ranges)
    del partial[plan.activations[3]]
    with pytest.raises(UserInputError, match="no range for tensor"):
        insert_qdq(model, plan, partial)


def test_qdq_model_runs_with_dynamic_batch(resnet18, resnet18_ranges) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    run = session(insert_qdq(model, plan, ranges))
    batch = np.random.default_rng(2).standard_normal((3, 3, 224, 224)).astype(np.float32)
    together = run.run(None, {"input": batch})[0]
    alone = np.concatenate([run.run(None, {"input": batch[i : i + 1]})[0] for i in range(3)])
    assert together.shape == (3, 10)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)


def test_cpu_twin_fuses_every_conv_into_qlinearconv(resnet18, resnet18_ranges, tmp_path: Path) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    twin = insert_qdq_cpu(model, plan, ranges)
    zero_points = [
        numpy_helper.to_array(i) for i in twin.graph.initializer if i.name.endswith("_zero_point") and i.dims == []
    ]
    assert zero_points and all(zp.dtype == np.uint8 and zp == 128 for zp in zero_points)
    optimized = tmp_path / "optimized.onnx"
    session(twin, optimized)
    ops = Counter(n.op_type for n in onnx.load(optimized).graph.node)
    assert ops["QLinearConv"] == 20 and ops["QLinearAdd"] == 7, ops  # the last Add feeds the float pooling
    assert ops["Conv"] == 0 and ops["FusedConv"] == 0, ops


def reference_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """Q/DQ nodes evaluated as written (no integer-kernel fusion): the arithmetic TensorRT follows."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_uint8_weight_twin_holds_the_same_grid_and_fuses(resnet18, resnet18_ranges, tmp_path: Path) -> None:
    model, _ = resnet18
    plan, ranges = resnet18_ranges
    int8_twin = insert_qdq_cpu(model, plan, ranges, WeightType.INT8)
    uint8_twin = insert_qdq_cpu(model, plan, ranges, WeightType.UINT8)
    weights = [i for i in uint8_twin.graph.initializer if i.name.endswith("_quantized") and len(i.dims) > 1]
    # The classifier's output is not quantized, so no integer kernel takes it: its weights are stored as the
    # float values their DequantizeLinear gives (constant_unfused_weights), the others as uint8 codes.
    assert len(weights) == len(plan.weights) - 1 and all(i.data_type == TensorProto.UINT8 for i in weights)
    gemm = next(n for n in uint8_twin.graph.node if n.op_type == "Gemm")
    assert gemm.input[1] in {i.name for i in uint8_twin.graph.initializer if i.data_type == TensorProto.FLOAT}
    batch = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    same = [reference_session(t).run(None, {"input": batch})[0] for t in (int8_twin, uint8_twin)]
    np.testing.assert_array_equal(same[0], same[1])  # identical dequantized values
    optimized = tmp_path / "optimized.onnx"
    session(uint8_twin, optimized)
    ops = Counter(n.op_type for n in onnx.load(optimized).graph.node)
    assert ops["QLinearConv"] == 20 and ops["Conv"] == 0, ops


def saturating_conv() -> tuple[onnx.ModelProto, np.ndarray]:
    """A Q/DQ 1x1 conv whose uint8 inputs and int8 weights are large: 16-bit pair sums overflow."""
    rng = np.random.default_rng(0)
    weight = rng.integers(90, 128, (8, 64, 1, 1)).astype(np.int8) * rng.choice([-1, 1], (8, 64, 1, 1)).astype(np.int8)
    inits = [
        numpy_helper.from_array(np.array(0.02, np.float32), "s"),
        numpy_helper.from_array(np.array(128, np.uint8), "zp"),
        numpy_helper.from_array(weight, "w_q"),
        numpy_helper.from_array(np.full(8, 0.01, np.float32), "w_s"),
        numpy_helper.from_array(np.zeros(8, np.int8), "w_zp"),
        numpy_helper.from_array(np.array(1.0, np.float32), "y_s"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x", "s", "zp"], ["x_f"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["w_f"], axis=0),
        helper.make_node("Conv", ["x_f", "w_f"], ["y_f"]),
        helper.make_node("QuantizeLinear", ["y_f", "y_s", "zp"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "sat", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 64, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 8, 8, 8])], inits,
    )  # fmt: skip
    frame = np.where(rng.random((1, 64, 8, 8)) < 0.5, 255, 1).astype(np.uint8)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), frame


def saturating_twin_parts() -> tuple[onnx.ModelProto, np.ndarray, np.ndarray, QdqPlan, onnx.ModelProto]:
    """(the saturating conv, its input codes, its Q/DQ result, the plan of its one weight, a copy whose
    weight DequantizeLinear is named as the twin names it, for the twin's weight rewrites)."""
    model, codes = saturating_conv()
    expected = reference_session(model).run(None, {"x": codes})[0]
    plan = QdqPlan((), (WeightQuant("conv", "w", 0),), (), (), ())
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    converted.graph.node[1].output[0] = "w_dequantized"
    converted.graph.node[2].input[1] = "w_dequantized"
    return model, codes, expected, plan, converted


def test_uint8_weights_make_onnxruntime_integer_kernels_exact() -> None:
    """U8U8 fused kernels give the Q/DQ result on every CPU; U8S8 only where the CPU has VNNI."""
    model, codes, expected, plan, converted = saturating_twin_parts()
    uint8_weights(converted, plan)
    assert [i.data_type for i in converted.graph.initializer if i.name == "w_q"] == [TensorProto.UINT8]
    np.testing.assert_array_equal(session(converted).run(None, {"x": codes})[0], expected)
    if exact_weight_type() is not WeightType.UINT8:
        np.testing.assert_array_equal(session(model).run(None, {"x": codes})[0], expected)


def test_offset_weights_are_the_same_values_and_exact() -> None:
    """int8 codes minus 1, zero point -1: onnxruntime's GEMM path computes exactly the Q/DQ result."""
    _, codes, expected, plan, converted = saturating_twin_parts()
    before = {i.name: numpy_helper.to_array(i) for i in converted.graph.initializer}
    offset_weights(converted, plan)
    after = {i.name: numpy_helper.to_array(i) for i in converted.graph.initializer}
    assert after["w_q"].dtype == np.int8 and after["w_zp"].dtype == np.int8
    shifted = after["w_q"].astype(int) - after["w_zp"].astype(int).reshape(-1, 1, 1, 1)
    np.testing.assert_array_equal(shifted, before["w_q"].astype(int))
    assert np.all(after["w_zp"] == -1)
    if exact_weight_type() is not WeightType.UINT8:  # U8S8 kernels are exact on this CPU
        np.testing.assert_array_equal(session(converted).run(None, {"x": codes})[0], expected)


@pytest.mark.parametrize(
    ("machine", "flags", "expected"),
    [
        ("x86_64", {"avx2", "avx512_vnni"}, WeightType.INT8),
        ("x86_64", {"avx2", "avx_vnni"}, WeightType.INT8),
        ("x86_64", {"avx512_vnni", "amx_tile", "amx_int8"}, WeightType.INT8_OFFSET),
        ("x86_64", {"avx2", "fma"}, WeightType.UINT8),
        ("AMD64", set(), WeightType.UINT8),
        ("aarch64", set(), WeightType.INT8),
    ],
)
def test_twin_weight_type_follows_the_cpu(machine: str, flags: set[str], expected: WeightType) -> None:
    assert exact_weight_type(machine, flags) is expected


def chain_model(relu6: bool = False) -> onnx.ModelProto:
    """input -> Conv -> Relu (or Clip 0..6) -> MaxPool -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    first = (
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"], name="relu1")
        if relu6
        else helper.make_node("Relu", ["c1"], ["r1"], name="relu1")
    )
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) * 0.1, "b1"),
        numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2, "w2"),
        numpy_helper.from_array(rng.standard_normal((5, 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(5, np.float32), "fc_b"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array(0.61, np.float32), "six"),  # a bound off the grid, and inside the range
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        first,
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_near_zero_channel_with_bias_does_not_overflow_the_fused_bias(tmp_path: Path) -> None:
    """A batch-norm-dead channel (weights ~1e-8, bias of a few units) must give the same codes fused or not.

    onnxruntime's QLinearConv keeps the bias as int32 codes of (input scale x weight scale); with the
    weight scale of such a channel that overflows unless the scale is floored (bias_safe_scales).
    """
    model = chain_model()
    inits = {i.name: i for i in model.graph.initializer}
    weight, bias = numpy_helper.to_array(inits["w1"]).copy(), numpy_helper.to_array(inits["b1"]).copy()
    weight[0] *= 1e-7
    bias[0] = 2.0
    inits["w1"].CopyFrom(numpy_helper.from_array(weight, "w1"))
    inits["b1"].CopyFrom(numpy_helper.from_array(bias, "b1"))
    plan = plan_qdq(model)
    ranges = {"input": 3.0, "p1": 2.5, "f": 1.7}
    twin = insert_qdq_cpu(model, plan, ranges, exact_weight_type())  # exact kernels on this CPU
    scales = numpy_helper.to_array(next(i for i in twin.graph.initializer if i.name == "w1_scale"))
    floor = bias_safe_scales(bias, activation_scale(3.0))
    assert np.all(scales >= floor.astype(np.float32)) and scales[0] > np.abs(weight[0]).max() / 127
    fused_ops = Counter(
        n.op_type for n in (session(twin, tmp_path / "opt.onnx"), onnx.load(tmp_path / "opt.onnx"))[1].graph.node
    )
    assert fused_ops["QLinearConv"] == 1  # conv1 is fused, so its bias is held in int32
    unfused = onnx.ModelProto()
    unfused.CopyFrom(twin)
    unfused.graph.output.extend([helper.make_empty_tensor_value_info("c1")])  # fetching c1 keeps conv1 float
    batch = np.random.default_rng(3).standard_normal((4, 3, 16, 16)).astype(np.float32)
    fused_logits, float_logits = (session(m).run(["logits"], {"input": batch})[0] for m in (twin, unfused))
    np.testing.assert_allclose(fused_logits, float_logits, rtol=0, atol=1e-4)


@pytest.mark.parametrize("relu6", [False, True])
def test_cpu_twin_is_exactly_the_tensorrt_grid_without_residual_adds(relu6: bool) -> None:
    """With no residual Add the twin only moves quantization through ReLU/Clip/MaxPool: same numbers."""
    model = chain_model(relu6)
    plan = plan_qdq(model)
    assert plan.cpu_extra == ()
    assert plan.cpu_moves == (("c1", "p1"),)  # GlobalAveragePool does not commute with rounding: no move
    ranges = {"input": 3.0, "p1": 2.5, "f": 1.7}
    batch = np.random.default_rng(3).standard_normal((4, 3, 16, 16)).astype(np.float32)
    s8 = reference_session(insert_qdq(model, plan, ranges)).run(None, {"input": batch})[0]
    twin = insert_qdq_cpu(model, plan, ranges, exact_weight_type())
    on_codes = [n for n in twin.graph.node if n.name.startswith("relu1")]
    assert [n.op_type for n in on_codes] == ["Clip"]  # the ReLU/Clip now acts on the uint8 codes
    code_min = next(i for i in twin.graph.initializer if i.name == on_codes[0].input[1])
    assert numpy_helper.to_array(code_min) == np.uint8(128)
    u8 = session(twin).run(None, {"input": batch})[0]
    np.testing.assert_allclose(u8, s8, rtol=0, atol=1e-5)


def test_frontend_nodes_are_untouched() -> None:
    """A camera front-end (uint8 frame -> float RGB, including a 1x1 colour conv) stays float."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((3, 3, 1, 1)).astype(np.float32), "colour"),
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((2, 4)).astype(np.float32), "fc_w"),
    ]
    nodes = [
        helper.make_node("Cast", ["frame"], ["f32"], name=NODE_PREFIX + "cast", to=TensorProto.FLOAT),
        helper.make_node("Conv", ["f32", "colour"], ["rgb"], name=NODE_PREFIX + "colour"),
        helper.make_node("Conv", ["rgb", "w"], ["c"], name="/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "frontend",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    plan = plan_qdq(model)
    assert plan.frontend_nodes == (NODE_PREFIX + "cast", NODE_PREFIX + "colour")
    qdq = insert_qdq(model, plan, {"rgb": 2.0, "flat": 1.0})
    by_name = {n.name: n for n in qdq.graph.node}
    assert list(by_name[NODE_PREFIX + "cast"].input) == ["frame"]
    assert list(by_name[NODE_PREFIX + "colour"].input) == ["f32", "colour"]
    assert by_name["/conv1/Conv"].input[0] == "rgb_dequantized"
    frame = rng.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    assert session(qdq).run(None, {"frame": frame})[0].shape == (2, 2)


@pytest.mark.parametrize(("shape", "axis"), [((16, 3, 3, 3), 0), ((10, 64), 0), ((64, 10), 1)])
def test_weight_quantization_is_per_channel_within_half_a_step(shape: tuple[int, ...], axis: int) -> None:
    rng = np.random.default_rng(4)
    weight = rng.standard_normal(shape).astype(np.float32) * rng.uniform(0.01, 3, shape[axis]).reshape(
        [-1 if d == axis else 1 for d in range(len(shape))]
    )
    values, scales = quantize_weight(weight, axis)
    assert values.dtype == np.int8 and scales.shape == (shape[axis],)
    view = [-1 if d == axis else 1 for d in range(len(shape))]
    error = np.abs(values * scales.reshape(view) - weight)
    assert np.all(error <= scales.reshape(view) / 2 + 1e-7)
    assert np.abs(values).max() == 127  # each channel's largest weight lands on the grid's end


def test_gemm_without_transpose_quantizes_along_columns() -> None:
    model = chain_model()
    fc = next(n for n in model.graph.node if n.name == "fc")
    del fc.attribute[:]
    init = next(i for i in model.graph.initializer if i.name == "fc_w")
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).T.copy(), "fc_w"))
    plan = plan_qdq(model)
    assert next(w for w in plan.weights if w.node == "fc").axis == 1


def test_fp16_model_runs_on_cpu_close_to_fp32(resnet18) -> None:
    model, _ = resnet18
    half = to_fp16(model)
    weights = [i for i in half.graph.initializer if len(i.dims) == 4]
    assert weights and all(i.data_type == TensorProto.FLOAT16 for i in weights)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    batch = np.random.default_rng(5).standard_normal((2, 3, 224, 224)).astype(np.float32)
    ref = session(model).run(None, {"input": batch})[0]
    got = session(half).run(None, {"input": batch})[0]
    sqnr = 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - got).astype(np.float64) ** 2))
    assert sqnr > 40, sqnr  # FP16 rounding only: ~60 dB expected, far above INT8's ~30 dB
