"""What a TensorRT Q/DQ ONNX asks TensorRT for, read from the graph alone: each weighted layer's precision
(report.html's precision map) and the placement checks of edgeres.quantize.qdq (its placement audit).

The build records its own plan, but the report audits the file TensorRT will parse, so that a placement
bug or a hand-edited model shows up as what it is rather than as what was intended. A strongly typed
TensorRT network runs each layer in the type its ONNX tensors carry: INT8 where a Conv/Gemm reads both
its activation and its weight through DequantizeLinear, otherwise the float type of those tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from edgeres.artifacts.precision import Precision
from edgeres.frontend.graph import NODE_PREFIX
from edgeres.quantize.qdq import ancestors, module_path

LAYER_OPS = ("Conv", "Gemm", "MatMul")
STEM, HEAD = "stem", "head"
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
RESNET_GROUPS = (STEM, *RESNET_STAGES, HEAD)  # the drawing order of a ResNet's groups
FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE)


@dataclass(frozen=True)
class LayerPlacement:
    """One weighted layer and the precision TensorRT will run it in."""

    name: str  # the node name (edgeres.quantize's name for an unnamed node: "<op>_<index>")
    op: str  # "Conv", "Gemm" or "MatMul"
    precision: Precision
    group: str  # ResNet: "stem", "layer1".."layer4", "head"; other models: ""
    block: str  # ResNet: "layer1.0" etc., "" for stem and head; other models: ""


@dataclass(frozen=True)
class PlacementAudit:
    """Where the Q/DQ nodes sit, checked against NVIDIA's placement recommendations (see edgeres.quantize.qdq).

    A residual Add is an Add (outside the front-end) of two non-constant tensors. Its shortcut input is told
    apart from its main one with Q/DQ looked through, as the placement plan does it on the float graph: the
    input that is not the output of a Conv, or, when both are, the downsample one (whose Conv reads a tensor
    the other branch is computed from). It passes when that shortcut input is the output of a
    DequantizeLinear fed by a QuantizeLinear. An Add whose shortcut cannot be told (neither input from a
    Conv) fails: TensorRT has no convolution to fuse it into either. An Add left without Q/DQ because the
    Conv on its main branch is kept in float also fails, rightly: it runs in float, unfused.
    """

    qdq_pairs: int  # DequantizeLinear nodes fed by a QuantizeLinear (activations)
    weight_dequantizers: int  # DequantizeLinear nodes of constant (weight) codes
    residual_adds: int
    residual_adds_quantized: int  # of those, how many pass the shortcut check
    adds_without_qdq: tuple[str, ...]  # residual Adds failing it
    # Residual Adds whose main (conv) input comes through Q/DQ too: the placement NVIDIA advises against, since
    # it keeps TensorRT from fusing the Add into that Conv.
    adds_with_qdq_on_both: tuple[str, ...]
    # Tensors read by QuantizeLinear nodes of different scales or zero points: one tensor, two INT8 grids.
    multi_scale_tensors: tuple[str, ...]
    frontend_nodes: int  # nodes named NODE_PREFIX..., the fused camera front-end (0 when none)
    # FP16 when every float tensor a non-Cast front-end node writes is FP16, else FP32; None without a front-end.
    frontend_precision: Precision | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the build summary's placement_audit section."""
        data: dict[str, object] = {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}
        data["frontend_precision"] = None if self.frontend_precision is None else self.frontend_precision.value
        return data


@dataclass(frozen=True)
class _Graph:
    """The lookups every check needs, made once per model."""

    nodes: tuple[onnx.NodeProto, ...]
    names: tuple[str, ...]  # per node, as edgeres.quantize.qdq.name_nodes would name it
    producers: Mapping[str, onnx.NodeProto]
    constants: frozenset[str]  # initializers, Constant outputs and whatever is computed from those alone
    types: Mapping[str, int]  # tensor -> TensorProto element type, where known
    values: Mapping[str, onnx.TensorProto]  # initializers and Constant node values

    def op(self, tensor: str) -> str | None:
        node = self.producers.get(tensor)
        return None if node is None else node.op_type

    def dequantized(self, tensor: str) -> bool:
        return self.op(tensor) == "DequantizeLinear"

    def through_qdq(self, tensor: str) -> bool:
        """Whether `tensor` is the output of a DequantizeLinear fed by a QuantizeLinear."""
        return self.dequantized(tensor) and self.op(self.producers[tensor].input[0]) == "QuantizeLinear"

    def origin(self, tensor: str) -> str:
        """The float tensor behind any Q/DQ pairs that `tensor` comes through."""
        while self.through_qdq(tensor):
            tensor = self.producers[self.producers[tensor].input[0]].input[0]
        return tensor

    def ancestors(self, tensor: str) -> set[str]:
        """All tensors `tensor` is computed from (itself included)."""
        return ancestors(tensor, self.producers)


def _node_names(graph: onnx.GraphProto) -> tuple[str, ...]:
    """The names edgeres.quantize.qdq.name_nodes gives, without renaming the caller's model."""
    seen: set[str] = set()
    names = []
    for index, node in enumerate(graph.node):
        name = node.name if node.name and node.name not in seen else f"{node.op_type}_{index}"
        seen.add(name)
        names.append(name)
    return tuple(names)


def _element_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor element types from ONNX's type inference (on a copy), the declared ones where it gives none."""
    graph = model.graph
    declared = (*graph.input, *graph.value_info, *graph.output)
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
        declared = (*declared, *inferred.input, *inferred.value_info, *inferred.output)
    except Exception:  # inference refuses some models (unknown ops, > 2 GB): the declared types remain
        pass
    types = {v.name: v.type.tensor_type.elem_type for v in declared if v.type.HasField("tensor_type")}
    types.update({init.name: init.data_type for init in graph.initializer})
    return {name: kind for name, kind in types.items() if kind != TensorProto.UNDEFINED}


def _graph(model: onnx.ModelProto) -> _Graph:
    graph = model.graph
    values = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = node.attribute[0].t
    constants = set(values)
    for node in graph.node:  # ONNX graphs are topologically sorted
        if node.op_type == "Constant" or (node.input and all(not i or i in constants for i in node.input)):
            constants.update(node.output)
    producers = {out: node for node in graph.node for out in node.output if out}
    return _Graph(tuple(graph.node), _node_names(graph), producers, frozenset(constants), _element_types(model), values)


def _frontend(name: str) -> bool:
    return name.startswith(NODE_PREFIX)


def _layer_precision(node: onnx.NodeProto, g: _Graph) -> Precision:
    activation, weight = node.input[0], node.input[1]
    if g.dequantized(activation) and g.dequantized(weight):
        return Precision.INT8
    return Precision.FP16 if TensorProto.FLOAT16 in {g.types.get(activation), g.types.get(weight)} else Precision.FP32


def _resnet_position(name: str) -> tuple[str, str] | None:
    """(group, block) of a torchvision ResNet layer from its exported node name, None if it is no such layer.

    torch names nodes by module path: '/conv1/Conv', '/layer2/layer2.0/downsample/downsample.0/Conv', '/fc/Gemm'.
    """
    path = module_path(name)
    if path == "conv1":
        return STEM, ""
    if path == "fc":
        return HEAD, ""
    parts = path.split(".")
    if len(parts) >= 3 and parts[0] in RESNET_STAGES and parts[1].isdigit():
        return parts[0], f"{parts[0]}.{parts[1]}"
    return None


def layer_placements(model: onnx.ModelProto) -> list[LayerPlacement]:
    """Every Conv, Gemm and MatMul outside the camera front-end, in graph order, with its precision.

    Groups are filled in only when every layer sits where a torchvision ResNet has it and the stem and head
    are both there, so another model's "fc" is never drawn as a ResNet head.
    """
    g = _graph(model)
    layers = [
        (name, node)
        for name, node in zip(g.names, g.nodes, strict=True)
        if node.op_type in LAYER_OPS and len(node.input) >= 2 and not _frontend(name)
    ]
    positions = [_resnet_position(name) for name, _ in layers]
    groups = {p[0] for p in positions if p is not None}
    resnet = all(p is not None for p in positions) and {STEM, HEAD} <= groups and len(groups) > 2
    return [
        LayerPlacement(name, node.op_type, _layer_precision(node, g), *(position if resnet and position else ("", "")))
        for (name, node), position in zip(layers, positions, strict=True)
    ]


def resnet_grid(
    placements: Sequence[LayerPlacement],
) -> list[tuple[str, list[tuple[str, list[LayerPlacement]]]]]:
    """Groups -> blocks -> layers for drawing: a ResNet's groups in network order (stem, layer1..4, head), its
    blocks as the graph orders them and each block's layers by module path (conv1, conv2[, conv3], downsample),
    since the FP16 conversion re-sorts nodes and a map should not change with that; one ("", [("", all)])
    group, in graph order, for any other model."""
    groups: dict[str, dict[str, list[LayerPlacement]]] = {}
    for layer in placements:
        groups.setdefault(layer.group, {}).setdefault(layer.block, []).append(layer)
    for group, blocks in groups.items():
        if group in RESNET_STAGES:
            for layers in blocks.values():
                layers.sort(key=lambda layer: module_path(layer.name))

    def rank(group: str) -> int:
        return RESNET_GROUPS.index(group) if group in RESNET_GROUPS else -1

    ordered = sorted(groups.items(), key=lambda item: rank(item[0]))
    return [(group, list(blocks.items())) for group, blocks in ordered]


def _shortcut(node: onnx.NodeProto, g: _Graph) -> tuple[str, str] | None:
    """(shortcut input, main input) of a residual Add, or None when neither input is a Conv's output."""
    a, b = node.input
    origins = (g.origin(a), g.origin(b))
    from_conv = tuple(g.op(o) == "Conv" for o in origins)
    if from_conv == (True, False):
        return b, a
    if from_conv == (False, True):
        return a, b
    if not all(from_conv):
        return None
    if g.origin(g.producers[origins[0]].input[0]) in g.ancestors(origins[1]):
        return a, b
    if g.origin(g.producers[origins[1]].input[0]) in g.ancestors(origins[0]):
        return b, a
    return None


def _value(tensor: str, g: _Graph) -> tuple[float, ...] | str:
    """A constant's values, to compare Q/DQ grids; its name where it is no readable constant."""
    proto = g.values.get(tensor)
    if proto is None:
        return tensor
    try:
        return tuple(np.asarray(numpy_helper.to_array(proto), dtype=np.float64).ravel().tolist())
    except Exception:  # external data not loaded: the name identifies it
        return tensor


def _multi_scale(g: _Graph) -> tuple[str, ...]:
    grids: dict[str, set[tuple[tuple[float, ...] | str, tuple[float, ...] | str]]] = {}
    for node in g.nodes:
        if node.op_type == "QuantizeLinear":
            zero_point = _value(node.input[2], g) if len(node.input) > 2 and node.input[2] else (0.0,)
            grids.setdefault(node.input[0], set()).add((_value(node.input[1], g), zero_point))
    return tuple(tensor for tensor, seen in grids.items() if len(seen) > 1)


def _frontend_precision(g: _Graph) -> Precision | None:
    front = [node for name, node in zip(g.names, g.nodes, strict=True) if _frontend(name)]
    if not front:
        return None
    written = {g.types.get(out) for node in front if node.op_type != "Cast" for out in node.output}
    floats = written & set(FLOAT_TYPES)
    return Precision.FP16 if floats == {TensorProto.FLOAT16} else Precision.FP32


def audit_placement(model: onnx.ModelProto) -> PlacementAudit:
    """The Q/DQ placement checks of `model` (see PlacementAudit)."""
    g = _graph(model)
    dequantizers = [node for node in g.nodes if node.op_type == "DequantizeLinear"]
    adds = [
        (name, node)
        for name, node in zip(g.names, g.nodes, strict=True)
        if node.op_type == "Add" and not _frontend(name)
        and len(node.input) == 2 and not any(i in g.constants for i in node.input)
    ]  # fmt: skip
    failing, both = [], []
    for name, node in adds:
        sides = _shortcut(node, g)
        if sides is None or not g.through_qdq(sides[0]):
            failing.append(name)
        elif g.through_qdq(sides[1]):
            both.append(name)
    front = sum(_frontend(name) for name in g.names)
    return PlacementAudit(
        qdq_pairs=sum(g.op(node.input[0]) == "QuantizeLinear" for node in dequantizers),
        weight_dequantizers=sum(node.input[0] in g.constants for node in dequantizers),
        residual_adds=len(adds),
        residual_adds_quantized=len(adds) - len(failing),
        adds_without_qdq=tuple(failing),
        adds_with_qdq_on_both=tuple(both),
        multi_scale_tensors=_multi_scale(g),
        frontend_nodes=front,
        frontend_precision=_frontend_precision(g),
    )
