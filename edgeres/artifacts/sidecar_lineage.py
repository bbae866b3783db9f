"""TODO docstring (artifacts.sidecar_lineage)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeres.artifacts.sidecar import read_sidecar

if TYPE_CHECKING:
    pass


def onnx_input_contract(onnx_path: Path, depth: int = 3) -> dict[str, Any] | None:
    """The input contract (sidecar options["input"]) carried into the engine's sidecar.

    A quantized ONNX's sidecar names its source ONNX (inputs["onnx"]) instead, so that is followed.
    """
    sidecar = read_sidecar(onnx_path) or {}
    contract = (sidecar.get("options") or {}).get("input")
    if isinstance(contract, dict):
        return contract
    source = (sidecar.get("inputs") or {}).get("onnx")
    if depth > 0 and isinstance(source, str):
        candidate = Path(source) if Path(source).is_absolute() else onnx_path.parent / Path(source).name
        if not candidate.is_file():
            candidate = Path(source)
        if candidate.is_file() and candidate.resolve() != Path(onnx_path).resolve():
            return onnx_input_contract(candidate, depth - 1)
    return None

