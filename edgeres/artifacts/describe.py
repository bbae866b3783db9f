"""What `edgeres info` shows: an artifact's sidecar plus what can be read from the file itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from edgeres.artifacts.kinds import ONNX_SUFFIX
from edgeres.artifacts.onnx import dim_labels, graph_inputs, has_fp16_qdq_scales, load_onnx, value_spec
from edgeres.artifacts.sidecar import read_sidecar, verify_sidecar
from edgeres.errors import UserInputError


def _value(value: onnx.ValueInfoProto) -> dict[str, Any]:
    return {"name": value.name, "dtype": value_spec(value).dtype.name, "shape": dim_labels(value)}


def describe_onnx(path: Path) -> dict[str, Any]:
    proto = load_onnx(path, weights=False)
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {
        "format": "onnx",
        "bytes": path.stat().st_size,
        "opset": {imp.domain or "ai.onnx": imp.version for imp in proto.opset_import},
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "inputs": [_value(v) for v in graph_inputs(proto)],
        "outputs": [_value(v) for v in proto.graph.output],
        "nodes": len(proto.graph.node),
        "op_counts": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        "fp16_qdq_scales": has_fp16_qdq_scales(proto),
    }


def sidecar_mismatch(path: Path) -> str | None:
    """Why the sidecar beside `path` does not describe it (size, SHA-256), or None when it does."""
    try:
        verify_sidecar(path, full_hash=True)
    except UserInputError as exc:
        return str(exc)
    return None


def describe_artifact(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise UserInputError(f"{path}: 0 bytes: an empty file, not a model")
    description: dict[str, Any] = {"path": str(path)}
    if path.suffix == ONNX_SUFFIX:
        description["model"] = describe_onnx(path)
    else:
        description["model"] = {"format": path.suffix.lstrip(".") or "unknown", "bytes": path.stat().st_size}
    sidecar = read_sidecar(path)
    description["sidecar"] = sidecar.as_dict() if sidecar is not None else None
    if sidecar is not None:
        mismatch = sidecar_mismatch(path)
        description["sidecar_matches_file"] = mismatch is None
        description["sidecar_mismatch"] = mismatch
    if sidecar is None and path.suffix != ONNX_SUFFIX:
        raise UserInputError(f"{path}: no sidecar ({path.name}.json) and not an ONNX file: nothing to describe")
    return description
