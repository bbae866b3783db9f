"""TODO docstring (artifacts.kinds)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from edgeres.errors import UserInputError


class ArtifactKind(Enum):
    ONNX = "onnx"
    TENSORRT = "tensorrt"


ENGINE_SUFFIXES = (".engine", ".plan")


_ONNX_SUFFIX = ".onnx"


def artifact_kind(path: Path) -> ArtifactKind:
    """ONNX or TensorRT engine, by suffix; a missing file or another type is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == _ONNX_SUFFIX:
        return ArtifactKind.ONNX
    if suffix in ENGINE_SUFFIXES:
        return ArtifactKind.TENSORRT
    raise UserInputError(f"{path}: cannot profile a '{suffix or 'no suffix'}' file (expected .onnx, .engine or .plan)")

