"""The precision map and placement audit, read from Q/DQ models that real builds of a ResNet18 export write."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx
import pytest
from onnx import helper, numpy_helper

from edgeres.artifacts.precision import Precision
from edgeres.export.from_weights import export_default
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout
from edgeres.frontend.graph import NODE_PREFIX
from edgeres.model.arch import Arch
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import plan_qdq
from edgeres.quantize.tensorrt_qdq import HighPrecision, tensorrt_qdq_model
from edgeres.report.graph_audit import LayerPlacement, audit_placement, layer_placements, resnet_grid
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

KEPT = "/layer2/layer2.0/conv1/Conv"  # the layer the remainder builds keep in float (--keep-float layer2.0.conv1)
STAGES = ("layer1", "layer2", "layer3", "layer4")
ADDS = tuple(f"/{s}/{s}.{b}/Add" for s in STAGES for b in (0, 1))
# ResNet18: 21 weighted layers reading 18 distinct tensors (a downsample conv shares its block's input), plus
# the 3 downsample outputs that are the skip inputs of their Adds: 21 activation Q/DQ pairs.
ACTIVATION_PAIRS = 21


def qdq_build(source: Path, outdir: Path, **options: object) -> onnx.ModelProto:
    build(
        BuildOptions(
            onnx=source, calib_algo=CalibAlgo.MAX, calib_size=8, profile_iterations=0, build_engine=False,
            **options,  # type: ignore[arg-type]
        ),
        outdir,
    )  # fmt: skip
    return onnx.load(str(outdir / "model_int8_qdq.onnx"))


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.warns(UserWarning, match="random"):
        return export_default(tmp_path_factory.mktemp("r18") / "r18.onnx", Arch.RESNET18, num_classes=10).path


@pytest.fixture(scope="module")
def remainders(resnet18: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[HighPrecision, onnx.ModelProto]:
    """The Q/DQ model of one build per remainder type, both keeping layer2.0.conv1 in float."""
    return {
        high: qdq_build(
            resnet18, tmp_path_factory.mktemp(high.value), keep_float=("layer2.0.conv1",), high_precision=high
        )
        for high in HighPrecision
    }


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(the fused YUYV ResNet18 export, the Q/DQ model of its build)."""
    folder = tmp_path_factory.mktemp("camera")
    contract = InputContract(YuvLayout.YUYV, 64, 48)
    with pytest.warns(UserWarning, match="random"):
        source = export_default(folder / "cam.onnx", Arch.RESNET18, num_classes=10, contract=contract).path
    return onnx.load(str(source)), qdq_build(source, folder / "build", contract=contract)


def by_name(model: onnx.ModelProto) -> dict[str, LayerPlacement]:
    return {layer.name: layer for layer in layer_placements(model)}


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    return edited


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def add_qdq(model: onnx.ModelProto, tensor: str, like: str, factor: float, tag: str) -> str:
    """A new Q/DQ pair on `tensor` with the scale of the existing tensor `like` times `factor` (same type and
    zero point), right after the node that writes `tensor`; returns the dequantized name."""
    inits = {i.name: i for i in model.graph.initializer}
    scale = numpy_helper.to_array(inits[f"{like}_scale"])
    model.graph.initializer.append(numpy_helper.from_array((scale * factor).astype(scale.dtype), f"{tag}_scale"))
    zero = f"{like}_zero_point"
    q = helper.make_node("QuantizeLinear", [tensor, f"{tag}_scale", zero], [f"{tag}_q"], name=f"{tag}_Q")
    dq = helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_scale", zero], [f"{tag}_dq"], name=f"{tag}_DQ")
    at = next(i for i, n in enumerate(model.graph.node) if tensor in n.output) + 1
    model.graph.node.insert(at, dq)
    model.graph.node.insert(at, q)
    return f"{tag}_dq"


@pytest.mark.parametrize("high", list(HighPrecision))
def test_the_kept_layer_runs_in_the_remainder_type_and_every_other_layer_in_int8(
    remainders: dict[HighPrecision, onnx.ModelProto], high: HighPrecision
) -> None:
    layers = layer_placements(remainders[high])
    assert Counter(layer.op for layer in layers) == {"Conv": 20, "Gemm": 1}
    assert [layer.name for layer in layers if layer.precision is not Precision.INT8] == [KEPT]
    assert by_name(remainders[high])[KEPT].precision is Precision(high.value)


def test_fp16_and_fp32_remainders_differ_only_in_the_kept_layer(
    remainders: dict[HighPrecision, onnx.ModelProto],
) -> None:
    half, full = (by_name(remainders[high]) for high in (HighPrecision.FP16, HighPrecision.FP32))
    assert half.keys() == full.keys()
    assert [name for name in half if half[name] != full[name]] == [KEPT]
    assert (half[KEPT].precision, full[KEPT].precision) == (Precision.FP16, Precision.FP32)


def test_resnet18_groups_into_stem_four_stages_of_two_blocks_and_head(
    remainders: dict[HighPrecision, onnx.ModelProto],
) -> None:
    grid = resnet_grid(layer_placements(remainders[HighPrecision.FP16]))
    assert [group for group, _ in grid] == ["stem", *STAGES, "head"]
    shape = {group: [(block, len(layers)) for block, layers in blocks] for group, blocks in grid}
    assert shape["stem"] == [("", 1)] and shape["head"] == [("", 1)]
    assert shape["layer1"] == [("layer1.0", 2), ("layer1.1", 2)]
    for stage in STAGES[1:]:  # conv1, conv2 and the downsample conv, then conv1 and conv2
        assert shape[stage] == [(f"{stage}.0", 3), (f"{stage}.1", 2)]
    stem, head = grid[0][1][0][1][0], grid[-1][1][0][1][0]
    assert (stem.name, stem.op, head.name, head.op) == ("/conv1/Conv", "Conv", "/fc/Gemm", "Gemm")
    downsample = by_name(remainders[HighPrecision.FP16])["/layer3/layer3.0/downsample/downsample.0/Conv"]
    assert (downsample.group, downsample.block) == ("layer3", "layer3.0")


def test_a_block_draws_alike_in_any_node_order(remainders: dict[HighPrecision, onnx.ModelProto]) -> None:
    """The FP16 conversion re-sorts nodes (a kept conv1 may come before its downsample); the grid does not."""
    model = copy(remainders[HighPrecision.FP32])
    nodes = list(model.graph.node)
    conv1 = nodes.pop(next(i for i, n in enumerate(nodes) if n.name == KEPT))
    downsample = next(i for i, n in enumerate(nodes) if n.name == "/layer2/layer2.0/downsample/downsample.0/Conv")
    nodes.insert(downsample, conv1)  # the kept conv1 reads the float block input, written before either
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    assert [n.name for n in layer_placements(model) if "/layer2.0/" in n.name][:2] == [KEPT, nodes[downsample + 1].name]
    for variant in (model, *remainders.values()):
        block = dict(dict(resnet_grid(layer_placements(variant)))["layer2"])["layer2.0"]
        assert [layer.name.split("/")[-2] for layer in block] == ["conv1", "conv2", "downsample.0"]


@pytest.mark.parametrize("high", list(HighPrecision))
def test_a_real_build_passes_the_placement_audit(
    remainders: dict[HighPrecision, onnx.ModelProto], high: HighPrecision
) -> None:
    audit = audit_placement(remainders[high])
    assert audit.residual_adds == audit.residual_adds_quantized == len(ADDS)
    assert audit.adds_without_qdq == audit.adds_with_qdq_on_both == audit.multi_scale_tensors == ()
    assert (audit.qdq_pairs, audit.weight_dequantizers) == (ACTIVATION_PAIRS, 20)  # the kept layer's weight is float
    assert (audit.frontend_nodes, audit.frontend_precision) == (0, None)


def test_the_float_export_has_eight_residual_adds_and_no_int8(resnet18: Path) -> None:
    model = onnx.load(str(resnet18))
    audit = audit_placement(model)
    assert (audit.residual_adds, audit.residual_adds_quantized, audit.adds_without_qdq) == (8, 0, ADDS)
    assert (audit.qdq_pairs, audit.weight_dequantizers) == (0, 0)
    assert {layer.precision for layer in layer_placements(model)} == {Precision.FP32}


def test_a_tensor_quantized_on_two_grids_is_reported(remainders: dict[HighPrecision, onnx.ModelProto]) -> None:
    model = copy(remainders[HighPrecision.FP16])
    tensor = "/maxpool/MaxPool_output_0"
    add = node(model, "/layer1/layer1.0/Add")
    add.input[1] = add_qdq(model, tensor, like=tensor, factor=2.0, tag="second")
    onnx.checker.check_model(model)
    audit = audit_placement(model)
    assert audit.multi_scale_tensors == (tensor,)
    assert audit.residual_adds_quantized == len(ADDS)  # still a Q/DQ on the shortcut, only on another grid
    same = copy(remainders[HighPrecision.FP16])  # a second pair on the same grid is no second grid
    node(same, "/layer1/layer1.0/Add").input[1] = add_qdq(same, tensor, like=tensor, factor=1.0, tag="again")
    assert audit_placement(same).multi_scale_tensors == ()


def test_adds_whose_shortcut_skips_qdq_are_named(remainders: dict[HighPrecision, onnx.ModelProto]) -> None:
    model = copy(remainders[HighPrecision.FP32])
    identity, downsample = node(model, "/layer1/layer1.1/Add"), node(model, "/layer3/layer3.0/Add")
    assert identity.input[1] == "/layer1/layer1.0/relu_1/Relu_output_0_dequantized"
    identity.input[1] = "/layer1/layer1.0/relu_1/Relu_output_0"  # the float block input
    downsample.input[1] = "/layer3/layer3.0/downsample/downsample.0/Conv_output_0"  # straight from its Conv
    onnx.checker.check_model(model)
    audit = audit_placement(model)
    assert audit.adds_without_qdq == ("/layer1/layer1.1/Add", "/layer3/layer3.0/Add")
    assert (audit.residual_adds, audit.residual_adds_quantized) == (8, 6)


def test_an_add_quantized_on_both_inputs_is_named(remainders: dict[HighPrecision, onnx.ModelProto]) -> None:
    model = copy(remainders[HighPrecision.FP32])
    main = "/layer2/layer2.1/conv2/Conv_output_0"
    node(model, "/layer2/layer2.1/Add").input[0] = add_qdq(model, main, like=main.replace("conv2/Conv", "relu/Relu"),
                                                           factor=1.0, tag="main")  # fmt: skip
    onnx.checker.check_model(model)
    audit = audit_placement(model)
    assert audit.adds_with_qdq_on_both == ("/layer2/layer2.1/Add",)
    assert audit.residual_adds_quantized == 8 and audit.adds_without_qdq == ()


def test_keeping_the_conv_an_add_would_fuse_into_leaves_that_add_without_qdq(resnet18: Path) -> None:
    """The plan quantizes no skip whose Add cannot be fused; the audit says so from the graph alone."""
    model = onnx.load(str(resnet18))
    plan = plan_qdq(model, keep_float=("layer2.0.conv2",))
    ranges = dict.fromkeys(plan.activations + plan.cpu_extra, 4.0)  # placement only: any range will do
    qdq = tensorrt_qdq_model(model, plan, ranges, HighPrecision.FP32)
    audit = audit_placement(qdq)
    assert audit.adds_without_qdq == ("/layer2/layer2.0/Add",) and audit.residual_adds_quantized == 7
    assert by_name(qdq)["/layer2/layer2.0/conv2/Conv"].precision is Precision.FP32


def test_the_camera_front_end_is_counted_and_its_precision_read(
    camera: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    source, qdq = camera
    front = sum(n.name.startswith(NODE_PREFIX) for n in source.graph.node)
    assert front > 0 and any(
        n.op_type in ("Conv", "MatMul") for n in source.graph.node if n.name.startswith(NODE_PREFIX)
    )
    audit = audit_placement(qdq)
    assert (audit.frontend_nodes, audit.frontend_precision) == (front, Precision.FP16)  # the FP16 default
    assert audit.residual_adds_quantized == audit.residual_adds == 8
    layers = layer_placements(qdq)  # the front-end's Conv and MatMul are no network layers
    assert len(layers) == 21 and {layer.precision for layer in layers} == {Precision.INT8}
    assert [group for group, _ in resnet_grid(layers)] == ["stem", *STAGES, "head"]
    plan = plan_qdq(copy(source))
    ranges = dict.fromkeys(plan.activations + plan.cpu_extra, 4.0)
    kept = tensorrt_qdq_model(source, plan, ranges, HighPrecision.FP16, frontend=HighPrecision.FP32)
    assert audit_placement(kept).frontend_precision is Precision.FP32  # its output is cast to FP16 for the network
    assert audit_placement(source).frontend_precision is Precision.FP32


def test_a_model_that_is_no_resnet_is_one_flat_group(tmp_path: Path) -> None:
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "tiny.onnx", "fp32")
    model = qdq_build(source, tmp_path / "build", min_holdout_samples=0)
    layers = layer_placements(model)
    assert [(layer.name, layer.op, layer.precision, layer.group, layer.block) for layer in layers] == [
        ("conv", "Conv", Precision.INT8, "", ""),
        ("fc", "Gemm", Precision.INT8, "", ""),
    ]
    assert resnet_grid(layers) == [("", [("", layers)])]
    audit = audit_placement(model)
    assert (audit.residual_adds, audit.qdq_pairs, audit.weight_dequantizers, audit.frontend_nodes) == (0, 2, 2, 0)


def test_a_model_with_a_resnet_like_name_but_no_stem_is_not_grouped() -> None:
    model = tiny_classifier_proto(10)
    for n in model.graph.node:
        n.name = {"conv": "/layer1/layer1.0/conv1/Conv", "fc": "/fc/Gemm"}.get(n.name, n.name)
    assert {(layer.group, layer.block) for layer in layer_placements(model)} == {("", "")}
    unnamed = tiny_classifier_proto(10)
    for n in unnamed.graph.node:
        n.name = ""
    assert [layer.name for layer in layer_placements(unnamed)] == ["Conv_0", "Gemm_4"]  # as name_nodes names them
    assert {n.name for n in unnamed.graph.node} == {""}  # the caller's model is not renamed
