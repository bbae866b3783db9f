"""TODO docstring (runtime.dispatch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeres.errors import UserInputError
from edgeres.runtime.base import Runner
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.trt_runner import TensorRTRunner

if TYPE_CHECKING:

    pass


def open_runner(artifact: Path) -> Runner:
    """The runner for a file: ONNX Runtime for `.onnx`, TensorRT for `.engine`/`.plan`."""
    suffix = Path(artifact).suffix.lower()
    if suffix == ".onnx":
        return OnnxRuntimeRunner(artifact)
    if suffix in (".engine", ".plan"):
        return TensorRTRunner(artifact)
    raise UserInputError(f"{artifact}: unknown artifact type '{suffix}' (expected .onnx, .engine or .plan)")

