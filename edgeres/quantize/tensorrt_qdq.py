"""The TensorRT Q/DQ model with its non-quantized remainder in FP16 or FP32.

A strongly typed TensorRT network runs every tensor in the type the ONNX gives it, so in the FP32 model
(`insert_qdq`, byte for byte) everything not quantized to INT8 runs in FP32: the camera front-end at full
frame size, layers kept float, residual Adds, pooling, the classifier. NVIDIA Model Optimizer's ONNX
quantizer writes that remainder in FP16 by default (`high_precision_dtype='fp16'`); `HighPrecision.FP16`
does the same:

- every float tensor, weight, bias and Q/DQ scale is FP16, except the graph I/O boundary: a float32
  input (the RGB model's) is cast to FP16 right where it enters, the float32 logits are a cast of the
  FP16 ones; a UINT8 camera frame is cast straight to FP16 by the front-end's first node;
- Q/DQ scales are FP16 initializers, so each DequantizeLinear outputs FP16. The ONNX operators take an
  FP16 scale only from opset 19 (QuantizeLinear-19/DequantizeLinear-19: "x_scale ... T2: float, float16,
  bfloat16"; "the output type is the same as x_scale", https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html);
  opset 13, which the default export opset 17 uses, allows float only. A model below opset 19 is
  therefore converted to opset 19 first (onnx.version_converter);
- the scales are on the FP16 grid of edgeres.quantize.qdq (`ScaleGrid.FP16`): rounded up to a float16
  value, weight codes computed against that value, weight scales floored so that input scale x weight
  scale is never zero in FP16 (onnxruntime divides a bias by that product; Model Optimizer's clamp of tiny
  weight scales to 6e-8 makes it 0 for the channels batch-norm folding left with near-zero weights);
- a calibrated range beyond FP16's largest value (65504) is refused by name: that tensor cannot be FP16.

NVIDIA's documentation on the two boundary types: TensorRT's DataType reference
(https://docs.nvidia.com/deeplearning/tensorrt/api/python_api/infer/FoundationalTypes/DataType.html,
UINT8: "Use the IdentityLayer to convert uint8 network-level inputs to {float32, float16} prior to use
with other TensorRT layers ... uint8 conversions are only supported for {float32, float16}"), so the
front-end's Cast may go to FP16 directly; and TensorRT's Dequantize operator
(https://docs.nvidia.com/deeplearning/tensorrt/operators/docs/Dequantize.html: scale of type T3,
output of type T3, "T3: float16, bfloat16, float32"), so an FP16 scale gives an FP16 dequantized tensor.

The camera front-end (nodes named edgeres.frontend.graph.NODE_PREFIX...) runs in FP16 too when
`FRONTEND_PRECISION` is FP16: its box sums exceed 2048 (the largest integer FP16 holds exactly), but its output is
quantized to INT8 at once, and tests/quantize/test_tensorrt_qdq.py bounds its FP16 error in units of
that INT8 step on generated frames. Otherwise its nodes stay FP32 and its output is cast to FP16.

TensorRT before 10 takes float32 scales only (its 8.6 Dequantize operator: "T2: float32",
https://docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-861/operators/docs/Dequantize.html), so
the FP16 model is for TensorRT 10 and later.

On onnxruntime CPU the FP16 model computes what its nodes say with basic optimisations (no Q/DQ fusions)
only if the level-1 optimizer WeightBiasQuantization is disabled: it turns each float Conv/Gemm bias into
int32 codes of (input scale x weight scale) and rounds those codes to FP16 before the int32 cast, so any
code above 65504 (nearly every bias) becomes infinite. onnxruntime runs DequantizeLinear, QuantizeLinear
and Clip in FP16 on x86 and casts the inputs of Conv, Gemm, Add and pooling to float32 (float compute
on FP16-stored tensors, as TensorRT's FP16 kernels with float accumulation).

The onnxruntime CPU twin (edgeres.quantize.cpu_twin) is not affected: it stays FP32 with its own grids.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, version_converter

from edgeres.artifacts.onnx import model_opset
from edgeres.errors import UserInputError
from edgeres.quantize.fp16 import convert_to_fp16
from edgeres.quantize.qdq import FP16_MAX, QdqPlan, ScaleGrid, insert_qdq

FP16_SCALE_OPSET = 19  # first opset whose QuantizeLinear/DequantizeLinear take an FP16 scale


class HighPrecision(str, enum.Enum):
    """The type of everything the TensorRT Q/DQ model does not quantize to INT8."""

    FP16 = "fp16"
    FP32 = "fp32"


# The scale grid of each remainder type: FP16 Q/DQ scales must be float16 values.
HIGH_PRECISION_GRID = {HighPrecision.FP16: ScaleGrid.FP16, HighPrecision.FP32: ScaleGrid.FP32}

FRONTEND_PRECISION = HighPrecision.FP16  # of the front-end in the FP16 model: see the module docstring


def at_least_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """`model` itself when its opset is `opset` or later; otherwise a converted copy.

    A model may import the default domain twice (onnx.compose.merge_models writes "" and "ai.onnx"
    entries when it joins the front-end); the copy imports it once, else one entry keeps the old opset.
    """
    if model_opset(model) >= opset:
        return model
    source = onnx.ModelProto()
    source.CopyFrom(model)
    default = [o for o in source.opset_import if o.domain in ("", "ai.onnx")]
    others = [o for o in source.opset_import if o.domain not in ("", "ai.onnx")]
    del source.opset_import[:]
    source.opset_import.extend([helper.make_opsetid("", max(o.version for o in default)), *others])
    try:
        return version_converter.convert_version(source, opset)
    except Exception as exc:  # the converter raises bare RuntimeErrors/ValueErrors naming the op
        raise UserInputError(f"cannot convert the model to opset {opset} for FP16 Q/DQ scales: {exc}") from None


def _check_fp16_ranges(plan: QdqPlan, ranges: Mapping[str, float]) -> None:
    wide = [t for t in plan.activations + plan.cpu_extra if t in ranges and ranges[t] > FP16_MAX]
    if wide:
        raise UserInputError(
            f"tensor '{wide[0]}' reaches {ranges[wide[0]]:g}, beyond FP16's largest value {FP16_MAX:g}: "
            "it cannot run in FP16"
        )


def tensorrt_qdq_model(
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    high_precision: HighPrecision = HighPrecision.FP16,
    frontend: HighPrecision = FRONTEND_PRECISION,
    weight_scales: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The TensorRT Q/DQ model of the (bias-corrected) FP32 `model`: FP32 is exactly `insert_qdq`;
    FP16 is described in the module docstring, its front-end (if any) in `frontend`. `weight_scales`: stored
    per-channel scales (quantization-aware training), on the FP16 grid rounded up like computed ones."""
    if high_precision is HighPrecision.FP32:
        return insert_qdq(model, plan, ranges, weight_scales=weight_scales)
    _check_fp16_ranges(plan, ranges)
    qdq = insert_qdq(at_least_opset(model, FP16_SCALE_OPSET), plan, ranges, grid=ScaleGrid.FP16,
                     weight_scales=weight_scales)  # fmt: skip
    keep = plan.frontend_nodes if frontend is HighPrecision.FP32 else ()
    return convert_to_fp16(qdq, keep, keep_io_float=True, op_block_list=[])
