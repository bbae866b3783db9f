"""Post-training fixes written into the float ONNX before Q/DQ insertion, so every backend gets them.

Bias correction (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
Correction", section 4.2, empirical variant): rounding a layer's weights to INT8 shifts the mean of its
output, E[W_q x] - E[W x] = (W_q - W) E[x] by linearity, and a mean shift passes through the rest of
the network as a bias. Each quantized Conv/Gemm gets that shift subtracted from its float bias, measured
on the calibration data, so the quantized layer's output mean matches the float one's there.

E[x] is kept per input position, not only per channel: a streaming mean over the batch axis of every
weighted layer's input (memory: one input-sized float64 array per such tensor, independent of how many
samples stream through). Applying the convolution itself (a one-node onnxruntime model with the weight
error as its weight) to that mean and averaging its output spatially then gives the exact mean shift of
the calibration set, borders (zero padding), strides and groups (depthwise) included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeres.artifacts.ort_session import cpu_session
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback
from edgeres.quantize.calibrate import collect_statistics
from edgeres.quantize.qdq import (
    QdqPlan,
    ScaleGrid,
    WeightQuant,
    quantize_weight,
    weight_scale_floor,
    written_input_scale,
)


def weighted_inputs(model: onnx.ModelProto, plan: QdqPlan) -> list[str]:
    """The activation read by each quantized Conv/Gemm, in graph order, without repeats."""
    nodes = {n.name: n for n in model.graph.node}
    return list(dict.fromkeys(nodes[w.node].input[0] for w in plan.weights))


def input_means(
    model: onnx.ModelProto,
    batches: Iterable[np.ndarray],
    tensors: Sequence[str],
    progress: ProgressCallback | None = None,
) -> dict[str, np.ndarray]:
    """Tensor name -> its mean over all calibration samples (batch axis removed), in one streaming pass.

    Only for when no calibration pass runs (a reused calibration cache); otherwise the calibration
    pass collects the same means (`collect_statistics(..., means_for=...)`).
    """
    stats = collect_statistics(model, batches, tensors, progress=progress, histograms=False, means_for=tensors)
    return {name: stream.mean for name, stream in stats.means.items()}


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def dequantized_weight(
    weight: np.ndarray,
    quant: WeightQuant,
    bias: np.ndarray | None,
    amax: float | None,
    grid: ScaleGrid = ScaleGrid.FP32,
) -> np.ndarray:
    """The float values the Q/DQ model's weight will hold on `grid` (edgeres.quantize.qdq, scale floor included)."""
    floor = weight_scale_floor(bias, weight.shape[quant.axis], written_input_scale(amax, grid), grid)
    values, scales = quantize_weight(weight, quant.axis, floor, grid)
    shape = [1] * weight.ndim
    shape[quant.axis] = -1
    return values.astype(np.float64) * scales.astype(np.float64).reshape(shape)


def layer_mean_shift(node: onnx.NodeProto, weight_error: np.ndarray, input_mean: np.ndarray) -> np.ndarray:
    """Per output channel: mean over positions of `node` (bias dropped) applied to `input_mean` with `weight_error`.

    Linear in the input, so this is the mean over the calibration set of (layer with W_q) - (layer with W).
    """
    if node.op_type == "Gemm" and any(a.name == "transA" and helper.get_attribute_value(a) for a in node.attribute):
        raise UserInputError(f"bias correction: Gemm '{node.name}' with transA=1 is not supported")
    x = input_mean[None].astype(np.float32)
    probe = helper.make_node(node.op_type, ["x", "w"], ["y"], name="probe")
    probe.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [probe],
        "mean_shift",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(x.shape))],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(weight_error.astype(np.float32), "w")],
    )
    opset = 13 if node.op_type == "Gemm" else 11
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    session = cpu_session(model)
    y = np.asarray(session.run(None, {"x": x})[0], dtype=np.float64)[0]
    return y.reshape(y.shape[0], -1).mean(axis=1) if y.ndim > 1 else y


def corrected_biases(
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    means: Mapping[str, np.ndarray],
    grid: ScaleGrid = ScaleGrid.FP32,
) -> dict[str, np.ndarray]:
    """Node name -> corrected float32 bias of each of the plan's quantized layers (see `correct_biases`),
    for weights on the scale `grid` the model will be written with.

    A layer's correction depends only on its own weights, its input range and its float input mean, never
    on which other layers are quantized: computed once, it serves every placement made from one calibration.
    """
    inits = _initializers(model)
    nodes = {n.name: n for n in model.graph.node}
    biases: dict[str, np.ndarray] = {}
    for quant in plan.weights:
        node = nodes[quant.node]
        if node.input[0] not in means:
            raise UserInputError(f"bias correction: no input mean for layer '{node.name}' (tensor '{node.input[0]}')")
        weight = numpy_helper.to_array(inits[quant.initializer]).astype(np.float64)
        channels = weight.shape[quant.axis]
        has_bias = len(node.input) > 2 and node.input[2] in inits
        bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64).reshape(-1) if has_bias else None
        if bias is not None and bias.size != channels:
            continue  # a broadcast Gemm bias: no per-channel term to correct
        error = dequantized_weight(weight, quant, bias, ranges.get(node.input[0]), grid) - weight
        shift = layer_mean_shift(node, error, means[node.input[0]])
        biases[quant.node] = ((np.zeros(channels) if bias is None else bias) - shift).astype(np.float32)
    return biases


def with_biases(
    model: onnx.ModelProto, biases: Mapping[str, np.ndarray], layers: Iterable[str] | None = None
) -> onnx.ModelProto:
    """A copy of `model` whose layers (all of `biases`, or those of `layers` among them) take the given biases.

    A layer without a bias gets one; a bias initializer shared with another node is left alone (a new one is made).
    """
    chosen = set(biases) if layers is None else set(layers) & set(biases)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = _initializers(out)
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    for node in graph.node:
        if node.name not in chosen:
            continue
        corrected = biases[node.name]
        if len(node.input) > 2 and node.input[2] in inits and readers[node.input[2]] == 1:
            inits[node.input[2]].CopyFrom(numpy_helper.from_array(corrected, node.input[2]))
            continue
        name = f"{node.input[1]}_corrected_bias"
        graph.initializer.append(numpy_helper.from_array(corrected, name))
        if len(node.input) > 2:
            node.input[2] = name
        else:
            node.input.append(name)
    return out


def correct_biases(
    model: onnx.ModelProto, plan: QdqPlan, ranges: Mapping[str, float], means: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """A copy of the float `model` whose quantized layers' biases absorb their weight-rounding mean shift.

    `ranges` are the calibrated activation amaxes (they set the weight-scale floor exactly as
    edgeres.quantize.qdq.insert_qdq will); `means` come from `input_means`. A layer without a bias gets one.
    """
    corrected = with_biases(model, corrected_biases(model, plan, ranges, means))
    onnx.checker.check_model(corrected)
    return corrected
