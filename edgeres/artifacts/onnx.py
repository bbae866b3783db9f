"""Reading ONNX files: one loader (one set of error messages) and one description of a graph's tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx.external_data_helper import load_external_data_for_model

from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError


def load_onnx(path: Path | str, weights: bool = True) -> onnx.ModelProto:
    """The ONNX model in `path`; `weights=False` leaves external weight files unread (structure only).

    Refused in one line naming the cause: no file, an empty file, bytes that are not ONNX, a graph with
    no nodes, or an external weight file that is not beside it."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: ONNX file not found")
    if path.stat().st_size == 0:
        raise UserInputError(f"{path}: 0 bytes: an empty file, not a model")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
        raise UserInputError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from exc
    if not model.graph.node:
        raise UserInputError(f"{path}: not an ONNX model (no graph nodes)")
    missing = sorted(set(name for name in external_files(model) if not (path.parent / name).is_file()))
    if missing:
        raise UserInputError(f"{path}: its external weight file {missing[0]!r} is not beside it")
    if weights and external_files(model):
        try:
            load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # a truncated or unreadable weight file
            raise UserInputError(f"{path}: its external weights cannot be read ({type(exc).__name__}: {exc})") from exc
    return model


def external_files(model: onnx.ModelProto) -> list[str]:
    """The files (relative to the model) its initializers keep their data in."""
    names = []
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            names += [entry.value for entry in tensor.external_data if entry.key == "location"]
    return names


def as_model(model: onnx.ModelProto | Path | str, weights: bool = True) -> onnx.ModelProto:
    """A model given as a proto or a path, as a proto (the same object when it already is one)."""
    return model if isinstance(model, onnx.ModelProto) else load_onnx(model, weights)


def model_opset(model: onnx.ModelProto) -> int:
    """The (first) default-domain opset the model declares; refused when it declares none."""
    versions = [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not versions:
        raise UserInputError("the model declares no default-domain opset")
    return versions[0]


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` that also outputs `names` (a fetched tensor changes onnxruntime's fusions around it)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output} | {i.name for i in copy.graph.input}
    wanted = [name for name in dict.fromkeys(names) if name not in present]
    copy.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in wanted)
    return copy


def dim_labels(value: onnx.ValueInfoProto) -> list[int | str]:
    """Each axis as the graph declares it: its size, or its symbolic name ("batch"), or 0 when unknown."""
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return TensorSpec(value.name, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)), shape)


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The graph inputs that are not initializers (what a caller must feed)."""
    weights = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in weights]


def graph_input(model: onnx.ModelProto, where: object) -> TensorSpec:
    """The one input of a classifier; any other count is a user error naming `where`."""
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise UserInputError(f"{where}: {len(inputs)} inputs; a classifier with one input is expected")
    return value_spec(inputs[0])


def graph_output(model: onnx.ModelProto, where: object) -> TensorSpec:
    """The first output (a classifier's logits or probabilities)."""
    if not model.graph.output:
        raise UserInputError(f"{where}: the graph has no output")
    return value_spec(model.graph.output[0])


def has_fp16_qdq_scales(model: onnx.ModelProto) -> bool:
    """Whether any Quantize/DequantizeLinear of the graph takes an FP16 scale initializer."""
    fp16 = {init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT16}
    return any(
        node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 1 and node.input[1] in fp16
        for node in model.graph.node
    )
