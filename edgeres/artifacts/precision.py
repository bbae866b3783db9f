"""What precision an ONNX carries (FP32, FP16 or INT8 Q/DQ): the engine, deploy and profile all follow it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import onnx

from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.sidecar import Sidecar, read_sidecar
from edgeres.errors import UserInputError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class Precision(Enum):
    """What the ONNX carries; the engine follows it."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


def recorded_precision(sidecar: Sidecar) -> Precision | None:
    """The precision a sidecar records, or None; a value that is no Precision is refused."""
    declared = sidecar.precision
    if declared is None:
        return None
    try:
        return Precision(declared.lower())
    except ValueError:
        choices = ", ".join(p.value for p in Precision)
        raise UserInputError(f"{sidecar.path}: sidecar precision '{declared}' is not one of {choices}") from None


def graph_precision(model: onnx.ModelProto) -> Precision:
    """Q/DQ nodes -> INT8, FP16 initializers -> FP16, else FP32."""
    if any(node.op_type in QDQ_OPS for node in model.graph.node):
        return Precision.INT8
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        return Precision.FP16
    return Precision.FP32


def onnx_precision(onnx_path: Path) -> Precision:
    """Precision from the ONNX's sidecar, else from the graph."""
    sidecar = read_sidecar(onnx_path)
    recorded = recorded_precision(sidecar) if sidecar is not None else None
    return recorded or graph_precision(load_onnx(onnx_path, weights=False))
