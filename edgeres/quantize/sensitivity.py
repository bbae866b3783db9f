"""Which layers INT8 hurts: the end-to-end effect of each layer's quantization on held-out logits.

Local per-layer SQNR (edgeres.quantize.fidelity) is a poor guide to what to keep in float: an error early
in the network may be harmless and a small one late may not. So each quantized layer is judged by the
logits of whole models, on the held-out samples:

- float alone: every layer INT8 except this one (what keeping it in float would gain);
- INT8 alone: only this layer INT8 (what its own quantization costs, free of the others');

and the whole model's error is split into weight rounding (weights-only INT8) and activation
quantization (activations-only INT8), since the remedies differ: a better calibration algorithm for
activations, bias correction or a float layer for weights.

Every variant is made from one calibration (the ranges and the per-layer bias corrections are computed
once: a layer's correction does not depend on the others) and measured as the onnxruntime CPU twin,
the fast integer model (edgeres.quantize.cpu_twin), against FP32 logits computed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.fields import json_number
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback
from edgeres.quantize.bias_correction import with_biases
from edgeres.quantize.cpu_twin import WeightType, insert_qdq_cpu
from edgeres.quantize.fidelity import FidelityReport, HeldOutEvaluation
from edgeres.quantize.qdq import WEIGHTED_OPS, QdqPlan, matches_layer, module_path, plan_qdq
from edgeres.quantize.tensorrt_qdq import HighPrecision, tensorrt_qdq_model


@dataclass(frozen=True)
class NetworkLayer:
    """A quantized Conv/Gemm of the network: its node, the name `keep_float` takes, and its cost."""

    node: str
    name: str
    op: str
    macs: int  # multiply-accumulates per sample
    position: int  # order along the network, from 0


def layer_macs(model: onnx.ModelProto) -> dict[str, int]:
    """Node name -> multiply-accumulates per sample of each Conv and Gemm (shapes by ONNX shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    macs: dict[str, int] = {}
    for node in model.graph.node:
        weight = weights.get(node.input[1]) if len(node.input) > 1 else None
        if weight is None or node.op_type not in ("Conv", "Gemm"):
            continue
        if node.op_type == "Gemm":
            macs[node.name] = int(np.prod(weight))
            continue
        out = shapes.get(node.output[0], [])
        if len(out) < 2 or any(d <= 0 for d in out[1:]):
            raise UserInputError(f"layer '{node.name}': output shape unknown, cannot count its multiply-accumulates")
        macs[node.name] = int(np.prod(out[1:]) * np.prod(weight[1:]))
    return macs


def network_layers(model: onnx.ModelProto, plan: QdqPlan) -> list[NetworkLayer]:
    """The plan's quantized layers in graph order, named as `keep_float` takes them: the torch module
    path where it names exactly that weighted node, else the node name."""
    macs = layer_macs(model)
    quantized = {w.node for w in plan.weights}
    weighted = [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS]
    layers: list[NetworkLayer] = []
    for node in (n for n in model.graph.node if n.name in quantized):
        path = module_path(node.name)
        unique = bool(path) and [n for n in weighted if matches_layer(n, path)] == [node.name]
        layers.append(
            NetworkLayer(node.name, path if unique else node.name, node.op_type, macs.get(node.name, 0), len(layers))
        )
    return layers


class QuantizedVariants:
    """INT8 placements of one float model from one calibration, as onnxruntime CPU twins.

    `plan` is the full placement (the user's float layers already left out); `biases` the corrected bias
    of every layer of the plan (edgeres.quantize.bias_correction.corrected_biases), or None without bias
    correction. A variant keeps more layers in float; each quantized layer gets its corrected bias.
    `tensorrt` makes the TensorRT Q/DQ model of a variant, in `high_precision`, with `tensorrt_biases`
    (corrected on its scale grid; None: `biases`). `weight_scales`, where quantization-aware training fixed them,
    are the per-channel weight scales of every variant.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        plan: QdqPlan,
        ranges: Mapping[str, float],
        biases: Mapping[str, np.ndarray] | None,
        weights: WeightType,
        high_precision: HighPrecision = HighPrecision.FP32,
        tensorrt_biases: Mapping[str, np.ndarray] | None = None,
        weight_scales: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.model, self.plan, self.ranges, self.weights = model, plan, ranges, weights
        self.weight_scales = weight_scales  # fixed by quantization-aware training, kept in every variant
        self.biases = dict(biases or {})
        self.tensorrt_biases = dict(tensorrt_biases) if tensorrt_biases is not None else self.biases
        self.high_precision = high_precision
        self.layers = tuple(w.node for w in plan.weights)

    def plan_keeping(self, float_layers: Iterable[str]) -> QdqPlan:
        """The placement with `float_layers` (node names) out of INT8 besides the plan's own."""
        return plan_qdq(self.model, tuple(dict.fromkeys(self.plan.kept_float + tuple(float_layers))))

    def _twin(self, plan: QdqPlan) -> onnx.ModelProto:
        quantized = {w.node for w in plan.weights}
        model = with_biases(self.model, self.biases, quantized) if self.biases and quantized else self.model
        return insert_qdq_cpu(model, plan, self.ranges, self.weights, self.weight_scales)

    def tensorrt(self, float_layers: Iterable[str] = ()) -> onnx.ModelProto:
        """The TensorRT Q/DQ model with `float_layers` out of INT8, as the build writes it."""
        plan = self.plan_keeping(float_layers)
        quantized = {w.node for w in plan.weights}
        biases = self.tensorrt_biases
        model = with_biases(self.model, biases, quantized) if biases and quantized else self.model
        return tensorrt_qdq_model(model, plan, self.ranges, self.high_precision, weight_scales=self.weight_scales)

    def keeping(self, float_layers: Iterable[str] = ()) -> onnx.ModelProto:
        """Every layer INT8 except `float_layers`."""
        return self._twin(self.plan_keeping(float_layers))

    def only(self, layer: str) -> onnx.ModelProto:
        """Only `layer` INT8 (with the residual skip its Add fusion quantizes)."""
        return self._twin(self.plan_keeping(n for n in self.layers if n != layer))

    def weights_only(self) -> onnx.ModelProto:
        """Every weight INT8, every activation float: the weight-rounding share of the error."""
        plan = replace(self.plan, inputs=(), residual_adds=(), cpu_extra=(), cpu_moves=())
        return self._twin(plan)

    def activations_only(self) -> onnx.ModelProto:
        """Every activation INT8, every weight float: the activation-quantization share of the error."""
        return insert_qdq_cpu(self.model, replace(self.plan, weights=()), self.ranges, self.weights)


@dataclass(frozen=True)
class LayerSensitivity:
    layer: NetworkLayer
    float_alone: FidelityReport  # every other layer INT8
    int8_alone: FidelityReport  # only this layer INT8


@dataclass(frozen=True)
class SensitivityReport:
    samples: int
    int8: FidelityReport  # every layer INT8
    weights_only: FidelityReport
    activations_only: FidelityReport
    layers: tuple[LayerSensitivity, ...]  # in network order

    def ranked(self) -> list[LayerSensitivity]:
        """Layers by what keeping each alone in float gains, most first."""
        return sorted(self.layers, key=lambda s: (-s.float_alone.sqnr_db, -s.float_alone.top1_agreement))

    def as_dict(self) -> dict[str, Any]:
        def layer(s: LayerSensitivity) -> dict[str, Any]:
            gain = s.float_alone.sqnr_db - self.int8.sqnr_db
            return asdict(s.layer) | {
                "float_alone": s.float_alone.measures(),
                "int8_alone": s.int8_alone.measures(),
                "float_alone_gain_db": json_number(gain),
            }

        return {
            "samples": self.samples,
            "measured_on": "onnxruntime CPU twin (integer kernels) against FP32 logits",
            "int8": self.int8.measures(),
            "weights_only": self.weights_only.measures(),
            "activations_only": self.activations_only.measures(),
            "layers": [layer(s) for s in self.layers],
            "ranking": [s.layer.name for s in self.ranked()],
        }


def analyse_sensitivity(
    variants: QuantizedVariants,
    evaluation: HeldOutEvaluation,
    layers: Sequence[NetworkLayer],
    progress: ProgressCallback | None = None,
) -> SensitivityReport:
    """Measure every variant of the module docstring: 3 whole-model ones, then 2 per layer."""

    def measured(model: onnx.ModelProto) -> FidelityReport:
        result = evaluation.measure(model)
        if progress is not None:
            progress(1)
        return result

    whole = measured(variants.keeping())
    weights_only, activations_only = measured(variants.weights_only()), measured(variants.activations_only())
    per_layer = tuple(
        LayerSensitivity(layer, measured(variants.keeping([layer.node])), measured(variants.only(layer.node)))
        for layer in layers
    )
    return SensitivityReport(evaluation.samples, whole, weights_only, activations_only, per_layer)


def variant_count(layers: Sequence[NetworkLayer]) -> int:
    """Models `analyse_sensitivity` measures (for a progress bar)."""
    return 3 + 2 * len(layers)
