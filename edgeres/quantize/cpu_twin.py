"""The onnxruntime CPU twin of the TensorRT Q/DQ model: uint8 activations on the same grids, shaped for ORT's fusions.

onnxruntime's x86 integer kernels are fast for uint8 activations (U8S8, U8U8) and slow for int8 ones
(S8S8; bench/quant.py measures both). A symmetric int8
activation (scale s, zero point 0) and a uint8 one (scale s, zero point 128) represent the same values,
so the twin reuses the TensorRT scales. ORT fuses DequantizeLinear -> Conv -> QuantizeLinear into
QLinearConv only when the conv output is quantized, so the twin also quantizes conv outputs (and the
outputs of residual Adds, for QLinearAdd): on the downstream grid where a ReLU/Clip/MaxPool leads to an
already quantized tensor (exact), with their own calibrated range where a conv feeds a residual Add
(the one place the twin rounds where TensorRT does not). Finally ReLU/Clip between a dequantize and a
quantize on the same grid become an integer Clip on the uint8 codes, so no float pass remains there.

Weights are int8 (U8S8) where onnxruntime's integer kernels compute U8S8 exactly: CPUs with a VNNI
dot product, and non-x86 CPUs. x86 CPUs without VNNI multiply U8S8 with an instruction whose 16-bit
pair sums saturate (onnxruntime's quantization guide warns of it; tests/quantize/test_qdq.py shows it),
so there the weights are stored as uint8 with zero point 128 (U8U8): the same grid, exact kernels.
"""

from __future__ import annotations

import enum
import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeres.quantize.grid import U8_ZERO_POINT, UINT8_MAX
from edgeres.quantize.qdq import ActivationType, QdqPlan, insert_qdq, sort_nodes


class WeightType(str, enum.Enum):
    """How the twin stores its weights: int8 (U8S8 kernels) or uint8 with zero point 128 (U8U8 kernels)."""

    INT8 = "int8"
    UINT8 = "uint8"


X86_MACHINES = ("x86_64", "amd64", "i386", "i686")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags of the first CPU listed in `cpuinfo` (empty where it cannot be read)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return set(value.split())
    except OSError:
        pass
    return set()


def exact_weight_type(machine: str | None = None, flags: set[str] | None = None) -> WeightType:
    """INT8 where onnxruntime's U8S8 kernels are exact on this CPU (VNNI, or not x86); UINT8 otherwise."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86_MACHINES:
        return WeightType.INT8
    flags = cpu_flags() if flags is None else flags
    return WeightType.INT8 if any(flag in flags for flag in VNNI_FLAGS) else WeightType.UINT8


def cpu_ranges(plan: QdqPlan, ranges: Mapping[str, float]) -> dict[str, float]:
    """Ranges for the twin: the TensorRT ones, plus each moved output on its target's grid."""
    merged = dict(ranges)
    merged.update({moved: ranges[reached] for moved, reached in plan.cpu_moves if reached in ranges})
    return merged


def insert_qdq_cpu(
    model: onnx.ModelProto, plan: QdqPlan, ranges: Mapping[str, float], weights: WeightType = WeightType.INT8
) -> onnx.ModelProto:
    """The twin (see the module docstring): uint8 activations, zero point 128, TensorRT scales."""
    extra = tuple(dict.fromkeys(plan.cpu_extra + tuple(moved for moved, _ in plan.cpu_moves)))
    twin = insert_qdq(model, plan, cpu_ranges(plan, ranges), ActivationType.UINT8, extra)
    if weights is WeightType.UINT8:
        uint8_weights(twin, plan)
    integer_clips(twin)
    drop_requantize(twin)
    _drop_unused_constants(twin)
    onnx.checker.check_model(twin)
    return twin


def uint8_weights(model: onnx.ModelProto, plan: QdqPlan) -> None:
    """Store the plan's int8 weights as uint8 codes + 128 with zero point 128: the same values (in place)."""
    graph = model.graph
    weights = {w.initializer for w in plan.weights}
    inits = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not node.output[0].endswith("_dequantized"):
            continue
        if node.output[0].removesuffix("_dequantized") not in weights:
            continue
        for name in (node.input[0], node.input[2]):
            codes = numpy_helper.to_array(inits[name]).astype(np.int16) + U8_ZERO_POINT
            inits[name].CopyFrom(numpy_helper.from_array(codes.astype(np.uint8), name))


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _clip_bounds(node: onnx.NodeProto, constants: Mapping[str, np.ndarray]) -> tuple[float, float] | None:
    """(low, high) of a Relu or of a Clip with constant bounds; None for anything else."""
    if node.op_type == "Relu":
        return 0.0, float("inf")
    if node.op_type != "Clip":
        return None
    bounds = [-float("inf"), float("inf")]
    for index, name in enumerate(node.input[1:3]):
        if name:
            if name not in constants:
                return None
            bounds[index] = float(constants[name])
    return bounds[0], bounds[1]


def integer_clips(model: onnx.ModelProto) -> None:
    """DequantizeLinear(uint8) -> Relu/Clip  ==>  integer Clip on the codes -> DequantizeLinear.

    Exact: clipping a value of the grid to [low, high] and rounding back equals clipping the code to
    [code(low), code(high)], since both maps are monotone.
    """
    graph = model.graph
    constants = _constants(model)
    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for node in list(graph.node):
        bounds = _clip_bounds(node, constants)
        if bounds is None:
            continue
        dq = producers.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or readers[dq.output[0]] != 1:
            continue
        zero_point = constants.get(dq.input[2]) if len(dq.input) > 2 else None
        if zero_point is None or zero_point.dtype != np.uint8 or zero_point.size != 1:
            continue
        scale, zp = float(constants[dq.input[1]]), int(zero_point)
        low, high = (int(np.clip(np.rint(b / scale) + zp, 0, UINT8_MAX)) if np.isfinite(b) else None for b in bounds)
        low = 0 if low is None else low
        high = UINT8_MAX if high is None else high
        names = (f"{node.name}_code_min", f"{node.name}_code_max")
        graph.initializer.extend(
            numpy_helper.from_array(np.array(v, dtype=np.uint8), n) for v, n in zip((low, high), names, strict=True)
        )
        codes = f"{node.output[0]}_codes"
        clip = helper.make_node("Clip", [dq.input[0], *names], [codes], name=f"{node.name}_on_codes")
        new_dq = helper.make_node("DequantizeLinear", [codes, dq.input[1], dq.input[2]], [node.output[0]], name=dq.name)
        graph.node.remove(node)
        graph.node.remove(dq)
        graph.node.extend([clip, new_dq])
    sort_nodes(model)


def drop_requantize(model: onnx.ModelProto) -> None:
    """DequantizeLinear -> QuantizeLinear with the very same scale and zero point is the identity: remove it."""
    graph = model.graph
    constants = _constants(model)
    producers = {out: node for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        dq = producers.get(q.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or len(q.input) < 3 or len(dq.input) < 3:
            continue
        same = all(
            name in constants
            and other in constants
            and np.array_equal(constants[name], constants[other])
            and constants[name].dtype == constants[other].dtype
            for name, other in ((q.input[1], dq.input[1]), (q.input[2], dq.input[2]))
        )
        if not same or q.output[0] in outputs:
            continue
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name == q.output[0]:
                    node.input[index] = dq.input[0]
        graph.node.remove(q)
        if not any(dq.output[0] in n.input for n in graph.node) and dq.output[0] not in outputs:
            graph.node.remove(dq)


def _drop_unused_constants(model: onnx.ModelProto) -> None:
    """Constant nodes left without readers (the bounds of replaced Clips)."""
    used = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
    for node in [n for n in model.graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        model.graph.node.remove(node)

