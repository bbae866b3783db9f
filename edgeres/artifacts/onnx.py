"""TODO docstring (artifacts.onnx)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeres.errors import UserInputError

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class OnnxInput:
    """The single network input as the ONNX declares it: name and per-sample shape (batch axis dropped)."""

    name: str
    sample_shape: tuple[int, ...]


def read_onnx_input(onnx_path: Path) -> OnnxInput:
    """Name and per-sample shape of the ONNX's one input; every axis but the batch must be fixed."""
    import onnx

    try:
        proto = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
        raise UserInputError(f"{onnx_path}: not a valid ONNX model ({type(exc).__name__})") from exc
    initializers = {init.name for init in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in initializers]
    if len(inputs) != 1:
        raise UserInputError(f"{onnx_path}: {len(inputs)} inputs; a classifier with one input is expected")
    dims = inputs[0].type.tensor_type.shape.dim
    sample = tuple(d.dim_value for d in dims[1:])
    if any(d <= 0 for d in sample):
        raise UserInputError(f"{onnx_path}: input '{inputs[0].name}' has a dynamic axis besides the batch")
    return OnnxInput(inputs[0].name, sample)

