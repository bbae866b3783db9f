"""TODO docstring (artifacts.precision)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import UserInputError

if TYPE_CHECKING:
    pass


class Precision(Enum):
    """What the ONNX carries; the engine follows it."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


def onnx_precision(onnx_path: Path) -> Precision:
    """Precision from the ONNX's sidecar, else from the graph (Q/DQ nodes -> INT8, FP16 tensors -> FP16)."""
    sidecar = read_sidecar(onnx_path)
    declared = (sidecar or {}).get("options", {}).get("precision")
    if declared is not None:
        try:
            return Precision(str(declared).lower())
        except ValueError:
            raise UserInputError(f"{onnx_path}: sidecar precision '{declared}' is not fp32, fp16 or int8") from None
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    if any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in proto.graph.node):
        return Precision.INT8
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer):
        return Precision.FP16
    return Precision.FP32

