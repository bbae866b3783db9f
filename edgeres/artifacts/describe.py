"""What `edgeres info` shows: an artifact's sidecar plus what can be read from the file itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import UserInputError


def _onnx_value_info(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"name": value.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name, "shape": dims}


def describe_onnx(path: Path) -> dict[str, Any]:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX bytes
        raise UserInputError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from exc
    initializer_names = {init.name for init in proto.graph.initializer}
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {
        "format": "onnx",
        "bytes": path.stat().st_size,
        "opset": {imp.domain or "ai.onnx": imp.version for imp in proto.opset_import},
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "inputs": [_onnx_value_info(v) for v in proto.graph.input if v.name not in initializer_names],
        "outputs": [_onnx_value_info(v) for v in proto.graph.output],
        "nodes": len(proto.graph.node),
        "op_counts": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
    }


def describe_artifact(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    description: dict[str, Any] = {"path": str(path)}
    if path.suffix == ".onnx":
        description["model"] = describe_onnx(path)
    else:
        description["model"] = {"format": path.suffix.lstrip(".") or "unknown", "bytes": path.stat().st_size}
    description["sidecar"] = read_sidecar(path)
    if description["sidecar"] is None and path.suffix != ".onnx":
        raise UserInputError(f"{path}: no sidecar ({path.name}.json) and not an ONNX file: nothing to describe")
    return description

