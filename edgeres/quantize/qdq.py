"""FP32 ONNX -> explicit INT8 Q/DQ ONNX for TensorRT, its U8S8 twin for onnxruntime CPU, and FP16 ONNX.

Placement follows NVIDIA's "Q/DQ layer-placement recommendations" (TensorRT developer guide, Working
with Quantized Types, https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/work-quantized-types.html):
quantize every input of weighted operations (Conv, Gemm), do not quantize their outputs, and in a
residual block quantize only the skip input of the Add, so TensorRT can fuse the Add (and the ReLU
after it) into the epilogue of the convolution that feeds its other input. NVIDIA's TensorFlow
quantization toolkit describes this ResNet case ("Add Custom QDQ Insertion Case", ResNetV1QDQCase),
and TensorRT Model Optimizer fixed Q/DQ wrongly placed on both Add inputs in 2025
(NVIDIA/Model-Optimizer pull requests 425 and 450). When both Add inputs come from convolutions (a
downsampling shortcut), the shortcut is the branch whose convolution reads a tensor the other branch
also descends from; that one is quantized, the main branch's convolution keeps the fusion.

Scales are written on a `ScaleGrid`: FP32 (any float32), or FP16, for a model whose Q/DQ scales will be
stored in FP16 (edgeres.quantize.tensorrt_qdq): each scale rounded up to a float16 value (so nothing
that fitted the FP32 scale clips) and the weight codes computed against that value (so writing it in FP16
adds no representation error); a weight scale is also floored so that input scale x weight scale is not
zero in FP16. The scales are still written as float32 initializers here; the values are exact in FP16.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.frontend.graph import NODE_PREFIX
from edgeres.quantize.grid import BIAS_CODE_LIMIT, INT8_MAX, MIN_AMAX, U8_ZERO_POINT

WEIGHTED_OPS = ("Conv", "Gemm")


class ScaleGrid(str, enum.Enum):
    """The values a Q/DQ scale may take: any float32, or only float16 values (see the module docstring)."""

    FP32 = "fp32"
    FP16 = "fp16"


# The smallest positive float16 (subnormal 2**-24) and the largest finite one.
FP16_TINIEST = float(np.finfo(np.float16).smallest_subnormal)
FP16_MAX = float(np.finfo(np.float16).max)


class ActivationType(str, enum.Enum):
    """How activations are stored: INT8 (S8S8) for TensorRT, UINT8 (U8S8) for onnxruntime on x86."""

    INT8 = "int8"
    UINT8 = "uint8"


@dataclass(frozen=True)
class QuantizedInput:
    """One node input that reads a dequantized activation instead of the float tensor."""

    node: str
    index: int
    tensor: str


@dataclass(frozen=True)
class WeightQuant:
    """A weight initializer quantized per output channel along `axis`."""

    node: str
    initializer: str
    axis: int


@dataclass(frozen=True)
class ResidualAdd:
    """A residual Add: which input is the quantized skip and which comes straight from a conv."""

    node: str
    skip: str
    fused: str


@dataclass(frozen=True)
class QdqPlan:
    """Where Q/DQ pairs go; computed from the float graph alone, so calibration knows what to measure."""

    inputs: tuple[QuantizedInput, ...]
    weights: tuple[WeightQuant, ...]
    residual_adds: tuple[ResidualAdd, ...]
    kept_float: tuple[str, ...]
    frontend_nodes: tuple[str, ...]
    # Conv outputs that feed an Add unquantized: the CPU twin quantizes them so onnxruntime can fuse.
    cpu_extra: tuple[str, ...] = field(default=())
    # (conv or residual-Add output, quantized tensor it reaches through ReLU/Clip/MaxPool): the CPU twin
    # quantizes that output on the same grid, exact because those ops commute with rounding to the grid.
    cpu_moves: tuple[tuple[str, str], ...] = field(default=())

    @property
    def activations(self) -> tuple[str, ...]:
        """Tensors whose range calibration must measure, in graph order, without repeats."""
        return tuple(dict.fromkeys([q.tensor for q in self.inputs]))


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name: the plan refers to nodes by name."""
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def module_path(node_name: str) -> str:
    """The torch module path in an exported node name: '/layer1/layer1.0/conv1/Conv' -> 'layer1.0.conv1'.

    torch's exporter names each scope by its attribute, and a container's children by the container's
    attribute plus their index ('layer1.0', 'downsample.0'), so such a part replaces the one before it.
    """
    parts: list[str] = []
    for part in node_name.strip("/").split("/")[:-1]:
        if parts and part.startswith(parts[-1] + "."):
            parts[-1] = part
        else:
            parts.append(part)
    return ".".join(parts)


def matches_layer(node_name: str, layer: str) -> bool:
    """`layer` is a node name ("/fc/Gemm") or a torch module path: a layer ("fc", "layer1.0.conv1"), or a
    block or stage ("layer1.0", "layer1"), which takes every node inside it. Exported node names carry the
    path ("/layer1/layer1.0/conv1/Conv")."""
    path = layer.strip("/")
    if not path:
        return False
    if node_name == layer:
        return True
    inside = module_path(node_name)
    if inside == path or inside.startswith(path + "."):
        return True
    prefix = "/" + path.replace(".", "/") + "/"
    return node_name.startswith(prefix) and "/" not in node_name[len(prefix) :]


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def ancestors(tensor: str, producers: Mapping[str, onnx.NodeProto]) -> set[str]:
    """All tensors `tensor` is computed from (itself included)."""
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        node = producers.get(current)
        if node is not None:
            stack.extend(i for i in node.input if i)
    return seen


def _residual_skip(
    node: onnx.NodeProto, producers: Mapping[str, onnx.NodeProto], constants: Collection[str]
) -> ResidualAdd | None:
    """The skip input of a residual Add, or None when the Add has no input straight from a Conv."""
    if len(node.input) != 2 or any(i in constants for i in node.input):
        return None
    a, b = node.input
    from_conv = [producers.get(t) is not None and producers[t].op_type == "Conv" for t in (a, b)]
    if from_conv == [True, False]:
        return ResidualAdd(node.name, skip=b, fused=a)
    if from_conv == [False, True]:
        return ResidualAdd(node.name, skip=a, fused=b)
    if not all(from_conv):
        return None
    # Both from convs: the shortcut conv reads a tensor that the main branch also descends from.
    if producers[a].input[0] in ancestors(b, producers):
        return ResidualAdd(node.name, skip=a, fused=b)
    return ResidualAdd(node.name, skip=b, fused=a)


def _weight_axis(node: onnx.NodeProto) -> int:
    """Output-channel axis of the weight: Conv [M, C/g, kH, kW] -> 0; Gemm B [N, K] (transB=1) -> 0, [K, N] -> 1."""
    if node.op_type == "Conv":
        return 0
    trans_b = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "transB"), 0)
    return 0 if trans_b else 1


def plan_qdq(model: onnx.ModelProto, keep_float: Iterable[str] = (), frontend_prefix: str = NODE_PREFIX) -> QdqPlan:
    """Decide every Q/DQ position of the TensorRT model (and the CPU twin's extras)."""
    name_nodes(model)
    keep = tuple(keep_float)
    constants = {init.name for init in model.graph.initializer}
    producers = _producers(model)
    nodes = list(model.graph.node)
    weighted = [n.name for n in nodes if n.op_type in WEIGHTED_OPS]
    for layer in keep:
        if not any(matches_layer(name, layer) for name in weighted):
            raise UserInputError(
                f"layer '{layer}' to keep in float: no Conv or Gemm of that name or inside it "
                "(e.g. 'conv1', 'fc', 'layer1.0.conv1', 'layer4', '/fc/Gemm')"
            )
    frontend = tuple(n.name for n in nodes if n.name.startswith(frontend_prefix))
    kept = tuple(name for name in weighted if any(matches_layer(name, k) for k in keep))
    inputs: list[QuantizedInput] = []
    weights: list[WeightQuant] = []
    adds: list[ResidualAdd] = []
    for node in nodes:
        if node.name in frontend or node.name in kept:
            continue
        if node.op_type in WEIGHTED_OPS:
            if node.input[0] in constants or len(node.input) < 2 or node.input[1] not in constants:
                continue  # only activation x constant-weight layers are quantized
            inputs.append(QuantizedInput(node.name, 0, node.input[0]))
            weights.append(WeightQuant(node.name, node.input[1], _weight_axis(node)))
        elif node.op_type == "Add":
            residual = _residual_skip(node, producers, constants)
            if residual is not None and producers[residual.fused].name not in kept:
                adds.append(residual)
                inputs.append(QuantizedInput(node.name, list(node.input).index(residual.skip), residual.skip))
    quantized_convs = {w.node for w in weights}
    extra = tuple(a.fused for a in adds if producers[a.fused].name in quantized_convs)
    # A tensor counts as quantized for a move only if every reader gets the dequantized copy.
    readers = {(q.node, q.index) for q in inputs}
    quantized = {
        q.tensor
        for q in inputs
        if all((n.name, i) in readers for n in nodes for i, name in enumerate(n.input) if name == q.tensor)
        and q.tensor not in {o.name for o in model.graph.output}
    }
    # Residual Adds whose both inputs the twin dequantizes can become QLinearAdd once their output is too.
    movable = quantized_convs | {a.node for a in adds if a.fused in extra}
    moves = tuple(
        (n.output[0], reached)
        for n in nodes
        if n.name in movable and n.op_type in ("Conv", "Add") and n.output[0] not in quantized
        for reached in [_quantized_downstream(n.output[0], model, quantized)]
        if reached is not None
    )
    return QdqPlan(tuple(inputs), tuple(weights), tuple(adds), kept, frontend, extra, moves)


GRID_COMMUTING_OPS = ("Relu", "Clip", "MaxPool")  # monotone: rounding to a grid before or after is the same


def _quantized_downstream(tensor: str, model: onnx.ModelProto, quantized: Collection[str]) -> str | None:
    """The quantized tensor reached from `tensor` through single-consumer grid-commuting ops, if any."""
    graph_outputs = {o.name for o in model.graph.output}
    current = tensor
    while current not in quantized:
        consumers = [n for n in model.graph.node if current in n.input]
        if current in graph_outputs or len(consumers) != 1 or consumers[0].op_type not in GRID_COMMUTING_OPS:
            return None
        if consumers[0].input[0] != current:
            return None
        current = consumers[0].output[0]
    return None if current == tensor else current


def activation_scale(amax: float) -> float:
    """Symmetric per-tensor scale: amax (at least MIN_AMAX) maps to 127."""
    return max(float(amax), MIN_AMAX) / INT8_MAX


def on_grid(scales: np.ndarray | float, grid: ScaleGrid) -> np.ndarray:
    """Scales as written on `grid` (float32 arrays): FP32 as given (rounded to float32); FP16 rounded up
    to the next float16 value, at least the smallest positive one."""
    values = np.asarray(scales, dtype=np.float64)
    if grid is ScaleGrid.FP32:
        return values.astype(np.float32)
    if np.any(values > FP16_MAX):
        raise UserInputError(f"scale {float(values.max())} exceeds the largest float16 value {FP16_MAX}")
    nearest = values.astype(np.float16)
    up = np.where(nearest.astype(np.float64) < values, np.nextafter(nearest, np.float16(np.inf)), nearest)
    return np.maximum(up.astype(np.float32), np.float32(FP16_TINIEST))


def quantize_weight(
    weight: np.ndarray,
    axis: int,
    min_scales: np.ndarray | None = None,
    grid: ScaleGrid = ScaleGrid.FP32,
    stored: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel INT8 of a weight tensor: (int8 values in [-127, 127], float32 scales).

    The scales come from the weight's per-channel range, or are `stored` ones (quantization-aware training
    trains against fixed scales: recomputing them from the trained weights would not be what was trained).
    `min_scales` (one per channel) raises a channel's scale where needed (see `bias_safe_scales`).
    On the FP16 grid the codes are computed against the float16 scale that will be written.
    """
    if stored is not None:
        scales = np.asarray(stored, np.float64).reshape(-1)
    else:
        moved = np.moveaxis(weight.astype(np.float64), axis, 0).reshape(weight.shape[axis], -1)
        scales = np.maximum(np.abs(moved).max(axis=1), MIN_AMAX) / INT8_MAX
    if min_scales is not None:
        scales = np.maximum(scales, min_scales)
    if grid is ScaleGrid.FP16:
        scales = on_grid(scales, grid).astype(np.float64)
    shape = [1] * weight.ndim
    shape[axis] = -1
    values = np.clip(np.rint(weight / scales.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
    return values, scales.astype(np.float32)


def _zero_point(kind: ActivationType, name: str) -> TensorProto:
    if kind is ActivationType.INT8:
        return numpy_helper.from_array(np.array(0, dtype=np.int8), name)
    return numpy_helper.from_array(np.array(U8_ZERO_POINT, dtype=np.uint8), name)


def _qdq_nodes(
    tensor: str, scale: float, kind: ActivationType, graph: onnx.GraphProto, grid: ScaleGrid = ScaleGrid.FP32
) -> tuple[list[onnx.NodeProto], str]:
    """A QuantizeLinear/DequantizeLinear pair on `tensor`; returns the nodes and the dequantized name."""
    scale_name, zp_name = f"{tensor}_scale", f"{tensor}_zero_point"
    value = np.array(scale, dtype=np.float32) if grid is ScaleGrid.FP32 else on_grid(scale, grid)
    graph.initializer.append(numpy_helper.from_array(value, scale_name))
    graph.initializer.append(_zero_point(kind, zp_name))
    quantized, dequantized = f"{tensor}_quantized", f"{tensor}_dequantized"
    q = helper.make_node("QuantizeLinear", [tensor, scale_name, zp_name], [quantized], name=f"{tensor}_QuantizeLinear")
    dq = helper.make_node(
        "DequantizeLinear", [quantized, scale_name, zp_name], [dequantized], name=f"{tensor}_DequantizeLinear"
    )
    return [q, dq], dequantized


def bias_safe_scales(bias: np.ndarray, input_scale: float) -> np.ndarray:
    """Per-channel weight-scale floor keeping |bias| / (input scale x weight scale) within BIAS_CODE_LIMIT.

    onnxruntime's QLinearConv/QGemm hold the bias as int32 codes of that product scale. A channel that
    batch-norm folding left with near-zero weights (scale ~1e-8) but a bias of a few units overflows
    int32 there (EfficientNet-Lite0's stem has such channels).
    Raising those channels' scales only rounds their (negligible) weights to zero; TensorRT keeps the
    bias in float, so its result moves by no more than those weights contribute.
    """
    return np.abs(bias.astype(np.float64)) / (float(input_scale) * BIAS_CODE_LIMIT)


def fp16_product_floor(input_scale: float) -> float:
    """The weight scale below which input scale x weight scale would be zero in FP16."""
    return FP16_TINIEST / float(input_scale)


def weight_scale_floor(
    bias: np.ndarray | None, channels: int, input_scale: float | None, grid: ScaleGrid = ScaleGrid.FP32
) -> np.ndarray | None:
    """Per-channel weight-scale floor: `bias_safe_scales`, and on the FP16 grid `fp16_product_floor`;
    `input_scale` is the activation scale as written (on `grid`)."""
    if input_scale is None:
        return None
    floor = None
    if bias is not None and bias.size == channels:
        floor = bias_safe_scales(bias.reshape(-1), input_scale)
    if grid is ScaleGrid.FP16:
        product = np.full(channels, fp16_product_floor(input_scale))
        floor = product if floor is None else np.maximum(floor, product)
    return floor


def written_input_scale(amax: float | None, grid: ScaleGrid = ScaleGrid.FP32) -> float | None:
    """The scale a weighted layer's input gets in the model (None: its input is not quantized)."""
    if amax is None:
        return None
    scale = activation_scale(amax)
    return scale if grid is ScaleGrid.FP32 else float(on_grid(scale, grid))


def _weight_dq(
    model: onnx.ModelProto,
    quant: WeightQuant,
    input_scale: float | None,
    grid: ScaleGrid = ScaleGrid.FP32,
    stored: np.ndarray | None = None,
) -> tuple[onnx.NodeProto, str]:
    """Replace a float weight initializer by INT8 values + per-channel scales and a DequantizeLinear."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    weight = numpy_helper.to_array(inits[quant.initializer])
    node = next(n for n in graph.node if n.name == quant.node)
    bias = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
    floor = weight_scale_floor(bias, weight.shape[quant.axis], input_scale, grid)
    values, scales = quantize_weight(weight, quant.axis, floor, grid, stored)
    base = quant.initializer
    graph.initializer.extend(
        [
            numpy_helper.from_array(values, f"{base}_quantized"),
            numpy_helper.from_array(scales, f"{base}_scale"),
            numpy_helper.from_array(np.zeros(len(scales), dtype=np.int8), f"{base}_zero_point"),
        ]
    )
    dq = helper.make_node(
        "DequantizeLinear",
        [f"{base}_quantized", f"{base}_scale", f"{base}_zero_point"],
        [f"{base}_dequantized"],
        name=f"{base}_DequantizeLinear",
        axis=quant.axis,
    )
    return dq, f"{base}_dequantized"


def sort_nodes(model: onnx.ModelProto) -> None:
    """Reorder the nodes topologically (stable: the original order wherever it is already valid)."""
    graph = model.graph
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise UserInputError(f"graph has a cycle or a missing input at node '{pending[0].name}'")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {i for node in model.graph.node for i in node.input} | {o.name for o in model.graph.output}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def _check_ranges(plan_tensors: Iterable[str], ranges: Mapping[str, float]) -> None:
    missing = [t for t in plan_tensors if t not in ranges]
    if missing:
        raise UserInputError(f"calibration has no range for tensor '{missing[0]}' ({len(missing)} missing)")
    bad = [t for t in plan_tensors if not np.isfinite(ranges[t]) or ranges[t] < 0]
    if bad:
        raise UserInputError(f"calibration range of tensor '{bad[0]}' is {ranges[bad[0]]}: not a finite amax >= 0")


def insert_qdq(
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    kind: ActivationType = ActivationType.INT8,
    extra: Iterable[str] = (),
    grid: ScaleGrid = ScaleGrid.FP32,
    weight_scales: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """A copy of `model` with the plan's Q/DQ pairs; `extra` tensors get a Q/DQ feeding all consumers.
    `grid` is the set of values the scales take (float32 initializers either way); `weight_scales` (by weight
    initializer) are stored per-channel scales to use instead of the weights' ranges."""
    extra = tuple(extra)
    _check_ranges(plan.activations + extra, ranges)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    name_nodes(out)
    graph = out.graph
    weight_nodes = []
    weight_inputs: dict[tuple[str, int], str] = {}
    input_ranges = {q.node: ranges[q.tensor] for q in plan.inputs if q.index == 0}
    for quant in plan.weights:
        stored = None if weight_scales is None else weight_scales.get(quant.initializer)
        dq, name = _weight_dq(out, quant, written_input_scale(input_ranges.get(quant.node), grid), grid, stored)
        weight_nodes.append(dq)
        weight_inputs[(quant.node, 1)] = name
    pairs: dict[str, list[onnx.NodeProto]] = {}
    dequantized: dict[str, str] = {}
    for tensor in plan.activations + extra:
        scale = activation_scale(ranges[tensor])
        pairs[tensor], dequantized[tensor] = _qdq_nodes(tensor, scale, kind, graph, grid)
    rewired = {(q.node, q.index): dequantized[q.tensor] for q in plan.inputs}
    rewired.update(weight_inputs)
    extra_set = set(extra)
    graph_inputs = {i.name for i in graph.input}
    ordered: list[onnx.NodeProto] = list(weight_nodes)
    ordered += [n for t in pairs if t in graph_inputs for n in pairs[t]]
    for node in list(graph.node):
        for index, name in enumerate(node.input):
            if (node.name, index) in rewired:
                node.input[index] = rewired[(node.name, index)]
            elif name in extra_set:
                node.input[index] = dequantized[name]
        ordered.append(node)
        ordered += [n for out_name in node.output if out_name in pairs for n in pairs[out_name]]
    del graph.node[:]
    graph.node.extend(ordered)
    drop_unused_initializers(out)
    onnx.checker.check_model(out)
    return out

