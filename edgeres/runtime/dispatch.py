"""The runner an artifact needs, chosen by its kind."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeres.artifacts.kinds import ArtifactKind, artifact_kind
from edgeres.runtime.base import Runner
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.trt_runner import TensorRTRunner

if TYPE_CHECKING:
    pass


def open_runner(artifact: Path, allow_unverified: bool = False) -> Runner:
    """The runner for a file: ONNX Runtime for `.onnx`, TensorRT for `.engine`/`.plan` (which refuses an
    engine that was never verified, or failed, unless `allow_unverified`)."""
    if artifact_kind(artifact) is ArtifactKind.ONNX:
        return OnnxRuntimeRunner(artifact)
    return TensorRTRunner(artifact, allow_unverified=allow_unverified)
