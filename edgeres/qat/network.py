"""The FP32 ONNX as a trainable PyTorch module with fake quantization exactly where edgeres's Q/DQ plan puts it.

Quantization-aware training here trains the graph that will be exported, not a PyTorch model that resembles it:
the module evaluates the FP32 ONNX node by node (BatchNorm already folded into the convolutions by the export,
so there is nothing left to fold afterwards), the Conv/Gemm weights and biases as parameters, and applies one
fake quantization at every (node, input) the plan quantizes (edgeres.quantize.qdq.plan_qdq): activations per
tensor on [-128, 127] at the calibrated range, weights per output channel on [-127, 127] at stored scales. The
scales are fixed (as NVIDIA Model Optimizer's and Ultralytics' QAT keep them): training moves the weights, and
the export writes the same scales (edgeres.quantize.qdq.insert_qdq's weight_scales), so the Q/DQ model computes
what was trained. PyTorch's fake-quantize functions pass gradients straight through inside the range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn
from torch.nn import functional

from edgeres.errors import UserInputError
from edgeres.quantize.grid import INT8_MAX
from edgeres.quantize.qdq import (
    QdqPlan,
    ScaleGrid,
    name_nodes,
    quantize_weight,
    weight_scale_floor,
    written_input_scale,
)

ACTIVATION_RANGE = (-128, 127)  # QuantizeLinear saturates int8 there; amax maps to 127
WEIGHT_RANGE = (-INT8_MAX, INT8_MAX)


class _FakeQuantize(torch.autograd.Function):
    """round(x / scale) clamped to [low, high], times scale, as QuantizeLinear + DequantizeLinear compute it:
    a division (not PyTorch's fake-quantize multiplication by the reciprocal, which rounds some ties the other
    way) and round half to even; the gradient passes straight through inside the range."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: torch.Tensor, low: int, high: int) -> torch.Tensor:
        codes = torch.round(x / scale)
        ctx.save_for_backward((codes >= low) & (codes <= high))
        return torch.clamp(codes, low, high) * scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None, None


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, low: int, high: int) -> torch.Tensor:
    return _FakeQuantize.apply(x, scale, low, high)


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(attrs: Mapping[str, Any], key: str, default: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in attrs.get(key, default))


def _pads(node: onnx.NodeProto, attrs: Mapping[str, Any], dims: int) -> tuple[int, ...]:
    pads = _ints(attrs, "pads", [0] * 2 * dims)
    if pads[:dims] != pads[dims:]:
        raise UserInputError(f"{node.name}: asymmetric padding is not supported by quantization-aware training")
    return pads[:dims]


def _conv(node: onnx.NodeProto, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    attrs = _attributes(node)
    return functional.conv2d(x, w, b, _ints(attrs, "strides", (1, 1)), _pads(node, attrs, w.dim() - 2),
                             _ints(attrs, "dilations", (1, 1)), int(attrs.get("group", 1)))  # fmt: skip


def _max_pool(node: onnx.NodeProto, x: torch.Tensor) -> torch.Tensor:
    attrs = _attributes(node)
    kernel = _ints(attrs, "kernel_shape", ())
    return functional.max_pool2d(x, kernel, _ints(attrs, "strides", kernel), _pads(node, attrs, len(kernel)),
                                 ceil_mode=bool(attrs.get("ceil_mode", 0)))  # fmt: skip


def _gemm(node: onnx.NodeProto, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    attrs = _attributes(node)
    a = a.t() if attrs.get("transA", 0) else a
    b = b.t() if attrs.get("transB", 0) else b
    out = float(attrs.get("alpha", 1.0)) * (a @ b)
    return out if c is None else out + float(attrs.get("beta", 1.0)) * c


def _flatten(node: onnx.NodeProto, x: torch.Tensor) -> torch.Tensor:
    axis = int(_attributes(node).get("axis", 1))
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _clip(node: onnx.NodeProto, inputs: list[torch.Tensor | None]) -> torch.Tensor:
    """Clip-11 and later: bounds as optional inputs (ReLU6 is Clip(x, 0, 6))."""
    low, high = _optional(inputs, 1), _optional(inputs, 2)
    return torch.clamp(_given(inputs, 0), None if low is None else float(low), None if high is None else float(high))


def _given(inputs: list[torch.Tensor | None], index: int) -> torch.Tensor:
    value = inputs[index]
    assert value is not None
    return value


def _optional(inputs: list[torch.Tensor | None], index: int) -> torch.Tensor | None:
    return inputs[index] if len(inputs) > index else None


Operator = Callable[[onnx.NodeProto, list[torch.Tensor | None]], torch.Tensor]
OPERATORS: dict[str, Operator] = {
    "Conv": lambda n, i: _conv(n, _given(i, 0), _given(i, 1), _optional(i, 2)),
    "Gemm": lambda n, i: _gemm(n, _given(i, 0), _given(i, 1), _optional(i, 2)),
    "Relu": lambda n, i: functional.relu(_given(i, 0)),
    "MaxPool": lambda n, i: _max_pool(n, _given(i, 0)),
    "GlobalAveragePool": lambda n, i: _given(i, 0).mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda n, i: _flatten(n, _given(i, 0)),
    "Add": lambda n, i: _given(i, 0) + _given(i, 1),
    "Sub": lambda n, i: _given(i, 0) - _given(i, 1),
    "Mul": lambda n, i: _given(i, 0) * _given(i, 1),
    "Div": lambda n, i: _given(i, 0) / _given(i, 1),
    "Clip": lambda n, i: _clip(n, i),
    "Identity": lambda n, i: _given(i, 0),
}


def _written(amax: float, grid: ScaleGrid) -> float:
    scale = written_input_scale(amax, grid)
    assert scale is not None
    return scale


@dataclass(frozen=True)
class FakeQuant:
    """Where one fake quantization sits: the input `index` of node `node`, at `scale`."""

    node: str
    index: int
    tensor: str
    scale: float


class QatNetwork(nn.Module):
    """The FP32 ONNX `model`, trainable, fake-quantized as `plan` places Q/DQ at `ranges` (see the module doc)."""

    def __init__(
        self, model: onnx.ModelProto, plan: QdqPlan, ranges: Mapping[str, float], grid: ScaleGrid = ScaleGrid.FP32
    ) -> None:
        super().__init__()
        self.grid = grid  # the scales' grid: TensorRT's FP16 remainder writes float16 scales, so they train as such
        graph = onnx.ModelProto()
        graph.CopyFrom(model)
        name_nodes(graph)
        frontend = set(plan.frontend_nodes)  # float, not trained: its output is this network's input
        constant_nodes = {
            n.output[0]: numpy_helper.to_array(n.attribute[0].t)
            for n in graph.graph.node
            if n.op_type == "Constant" and n.attribute[0].name == "value"
        }
        self.nodes = [n for n in graph.graph.node if n.name not in frontend and n.output[0] not in constant_nodes]
        unsupported = sorted({n.op_type for n in self.nodes} - set(OPERATORS))
        if unsupported:
            raise UserInputError(
                f"quantization-aware training evaluates {', '.join(sorted(OPERATORS))}; the model also has "
                f"{', '.join(unsupported)}"
            )
        if len(graph.graph.input) != 1:
            raise UserInputError("quantization-aware training needs a model with one input")
        self.model_input = graph.graph.input[0].name
        made = {out for n in graph.graph.node if n.name in frontend for out in n.output}
        starts = sorted({name for n in self.nodes for name in n.input if name in made})
        if len(starts) > 1:
            raise UserInputError(f"the camera front-end hands the network {len(starts)} tensors; one was expected")
        self.input_name = starts[0] if starts else self.model_input
        self.output_name = graph.graph.output[0].name
        initializers = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
        trained = {q.initializer for q in plan.weights}
        trained |= {n.input[2] for n in self.nodes if n.name in {q.node for q in plan.weights} and len(n.input) > 2}
        self.parameter_names = {name: f"p{k}" for k, name in enumerate(sorted(trained))}
        self.params = nn.ParameterDict(
            {key: nn.Parameter(torch.from_numpy(np.array(initializers[name], np.float32)))
             for name, key in self.parameter_names.items()}
        )  # fmt: skip
        self.constants = {
            name: torch.from_numpy(np.array(value))
            for name, value in (initializers | constant_nodes).items()
            if name not in self.parameter_names
        }
        self.quantized = {(q.node, q.index): FakeQuant(q.node, q.index, q.tensor, _written(ranges[q.tensor], grid))
                          for q in plan.inputs}  # fmt: skip
        self.weight_axes = {q.initializer: q.axis for q in plan.weights}
        self.weight_nodes = {q.node: q.initializer for q in plan.weights}
        self.weight_scales = self._initial_weight_scales(plan, initializers)
        self.quantize = True

    def _initial_weight_scales(self, plan: QdqPlan, initializers: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-channel scales as PTQ writes them (range / 127, raised where the bias needs it): fixed from here."""
        scales = {}
        for quant in plan.weights:
            node = next(n for n in self.nodes if n.name == quant.node)
            weight = initializers[quant.initializer]
            fq = self.quantized.get((quant.node, 0))
            bias = initializers.get(node.input[2]) if len(node.input) > 2 else None
            floor = weight_scale_floor(bias, weight.shape[quant.axis], None if fq is None else fq.scale, self.grid)
            scales[quant.initializer] = quantize_weight(weight, quant.axis, floor, self.grid)[1]
        return scales

    def trained_values(self) -> dict[str, np.ndarray]:
        """The trained weights and biases by initializer name."""
        return {name: self.params[key].detach().cpu().numpy().copy() for name, key in self.parameter_names.items()}

    def _value(self, name: str, values: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        if not name:
            return None
        if name in self.parameter_names:
            return self.params[self.parameter_names[name]]
        if name in self.constants:
            return self.constants[name]
        return values[name]

    def _weight(self, name: str) -> torch.Tensor:
        weight = self.params[self.parameter_names[name]]
        if not self.quantize:
            return weight
        shape = [1] * weight.dim()
        shape[self.weight_axes[name]] = -1
        scales = torch.from_numpy(self.weight_scales[name].astype(np.float32)).reshape(shape)
        return fake_quantize(weight, scales, *WEIGHT_RANGE)

    def node_output(self, node: onnx.NodeProto, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One node's output from the tensors in `values` (its weight and its quantized inputs fake-quantized)."""
        inputs: list[torch.Tensor | None] = []
        for index, name in enumerate(node.input):
            if index == 1 and node.name in self.weight_nodes:
                inputs.append(self._weight(name))
                continue
            value = self._value(name, values)
            fake = self.quantized.get((node.name, index))
            if fake is not None and self.quantize and value is not None:
                value = fake_quantize(value, torch.tensor(fake.scale, dtype=torch.float32), *ACTIVATION_RANGE)
            inputs.append(value)
        return OPERATORS[node.op_type](node, inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self.input_name: x}
        for node in self.nodes:
            values[node.output[0]] = self.node_output(node, values)
        return values[self.output_name]


def with_values(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of `model` whose initializers named in `values` hold those arrays."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.name in values:
            init.CopyFrom(numpy_helper.from_array(values[init.name].astype(np.float32), init.name))
    return out
