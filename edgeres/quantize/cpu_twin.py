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
On CPUs with AMX int8 the int8 codes are stored minus 1 with zero point -1 (the same values), which
moves onnxruntime's QLinearConv from its symmetric VNNI kernels to its AMX GEMM (bench/quant.py times both).
Weights of a layer whose output is not quantized (the classifier) are stored as the float values
their DequantizeLinear computes, which onnxruntime would otherwise recompute on every call.
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
from edgeres.quantize.qdq import ActivationType, QdqPlan, drop_unused_initializers, insert_qdq, sort_nodes


class WeightType(str, enum.Enum):
    """How the twin stores its weights: int8 (U8S8 kernels), int8 codes minus 1 with zero point -1 (the
    same values; U8S8 through onnxruntime's GEMM path, see `offset_weights`) or uint8 with zero point 128
    (U8U8 kernels)."""

    INT8 = "int8"
    INT8_OFFSET = "int8-offset"
    UINT8 = "uint8"

    @property
    def kernels(self) -> str:
        return "U8U8" if self is WeightType.UINT8 else "U8S8"


X86_MACHINES = ("x86_64", "amd64", "i386", "i686")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "avx512vnni", "avxvnni")
AMX_INT8_FLAGS = ("amx_int8",)


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
    """INT8 where onnxruntime's U8S8 kernels are exact on this CPU (VNNI, or not x86), INT8_OFFSET where it
    also has AMX int8 (bench/quant.py: its GEMM path is faster there); UINT8 otherwise."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86_MACHINES:
        return WeightType.INT8
    flags = cpu_flags() if flags is None else flags
    if not any(flag in flags for flag in VNNI_FLAGS):
        return WeightType.UINT8
    return WeightType.INT8_OFFSET if any(flag in flags for flag in AMX_INT8_FLAGS) else WeightType.INT8


def cpu_ranges(plan: QdqPlan, ranges: Mapping[str, float]) -> dict[str, float]:
    """Ranges for the twin: the TensorRT ones, plus each moved output on its target's grid."""
    merged = dict(ranges)
    merged.update({moved: ranges[reached] for moved, reached in plan.cpu_moves if reached in ranges})
    return merged


def insert_qdq_cpu(
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    weights: WeightType = WeightType.INT8,
    weight_scales: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The twin (see the module docstring): uint8 activations, zero point 128, TensorRT scales (and the stored
    weight scales of quantization-aware training, where given)."""
    extra = tuple(dict.fromkeys(plan.cpu_extra + tuple(moved for moved, _ in plan.cpu_moves)))
    twin = insert_qdq(model, plan, cpu_ranges(plan, ranges), ActivationType.UINT8, extra, weight_scales=weight_scales)
    if weights is WeightType.UINT8:
        uint8_weights(twin, plan)
    elif weights is WeightType.INT8_OFFSET:
        offset_weights(twin, plan)
    integer_clips(twin)
    drop_requantize(twin)
    constant_unfused_weights(twin)
    _drop_unused_constants(twin)
    onnx.checker.check_model(twin)
    return twin


def uint8_weights(model: onnx.ModelProto, plan: QdqPlan) -> None:
    """Store the plan's int8 weights as uint8 codes + 128 with zero point 128: the same values (in place)."""
    _recode_weights(model, plan, np.uint8, U8_ZERO_POINT)


def _recode_weights(model: onnx.ModelProto, plan: QdqPlan, dtype: type[np.integer], shift: int) -> None:
    """Codes and zero points of the plan's weights, both moved by `shift` into `dtype` (the same values)."""
    graph = model.graph
    weights = {w.initializer for w in plan.weights}
    inits = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not node.output[0].endswith("_dequantized"):
            continue
        if node.output[0].removesuffix("_dequantized") not in weights:
            continue
        for name in (node.input[0], node.input[2]):
            codes = numpy_helper.to_array(inits[name]).astype(np.int16) + shift
            inits[name].CopyFrom(numpy_helper.from_array(codes.astype(dtype), name))


def constant_unfused_weights(model: onnx.ModelProto) -> None:
    """Store as float the dequantized weights of Conv/Gemm layers whose output is not quantized (in place).

    onnxruntime fuses a Q/DQ layer into an integer kernel only when its output is quantized (the
    classifier's logits are not); otherwise it runs the weight's DequantizeLinear on every call and
    the float layer after it. The float constant holds the very values that DequantizeLinear computes
    ((code - zero point) x scale in float32), so the arithmetic is unchanged and the per-call pass goes.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for node in [n for n in graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1]:
        dq = producers.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or any(i not in inits for i in dq.input):
            continue
        consumers = readers.get(node.output[0], [])
        if consumers and all(c.op_type == "QuantizeLinear" for c in consumers):
            continue  # an integer kernel takes this layer: its weights stay codes
        if len(readers.get(dq.output[0], [])) != 1:
            continue
        codes, scale = (numpy_helper.to_array(inits[name]) for name in dq.input[:2])
        zero_point = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 else np.zeros((), codes.dtype)
        axis = next((helper.get_attribute_value(a) for a in dq.attribute if a.name == "axis"), 1)
        shape = [1] * codes.ndim
        if scale.ndim == 1:
            shape[axis] = -1
        values = (codes.astype(np.int32) - zero_point.astype(np.int32).reshape(shape if zero_point.ndim else []))
        weights = values.astype(np.float32) * scale.astype(np.float32).reshape(shape if scale.ndim else [])
        graph.initializer.append(numpy_helper.from_array(weights.astype(np.float32), dq.output[0]))
        graph.node.remove(dq)
    drop_unused_initializers(model)


def offset_weights(model: onnx.ModelProto, plan: QdqPlan) -> None:
    """Store the plan's int8 weight codes minus 1 with zero point -1: the same values (in place).

    Codes are within [-127, 127], so minus 1 stays int8. onnxruntime runs a QLinearConv whose weight zero
    point is 0 with its symmetric convolution kernels (AVX-512 VNNI) and any other one as im2col + its
    U8S8 GEMM, which uses AMX where the CPU has it: faster there, exactly the same integers.
    """
    _recode_weights(model, plan, np.int8, -1)


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

