"""TODO docstring (profile.dispatch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeres.artifacts.kinds import ArtifactKind, artifact_kind
from edgeres.artifacts.precision import onnx_precision, recorded_precision
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import UserInputError
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile


def artifact_precision(path: Path) -> str | None:
    """fp32/fp16/int8 of an artifact, by engine.onnx_precision: the sidecar's, else (ONNX) read from the graph.

    A TensorRT engine without a recorded precision is not parsed as ONNX: None (unknown).
    """
    sidecar = read_sidecar(path)
    recorded = recorded_precision(sidecar) if sidecar is not None else None
    if recorded is None and artifact_kind(path) is ArtifactKind.TENSORRT:
        return None
    return (recorded or onnx_precision(path)).value


def profile_artifact(path: Path, options: ProfileOptions) -> ArtifactProfile:
    """Profile one artifact with the backend its type calls for."""
    kind = artifact_kind(path)
    if kind is ArtifactKind.ONNX:
        from edgeres.profile.onnx_profiler import profile_onnx

        return profile_onnx(Path(path), options)
    from edgeres.profile.trt_profiler import profile_engine

    return profile_engine(Path(path), options)


def profile_artifacts(paths: Sequence[Path], options: ProfileOptions) -> tuple[ArtifactProfile, ...]:
    """Check every path first (a typo in the last one should not cost a long run), then profile each.

    With two or more ONNX artifacts, an interleaved pass follows for a drift-resistant comparison."""
    from edgeres.profile.compare import add_interleaved

    if not paths:
        raise UserInputError("no artifact to profile")
    for path in paths:
        artifact_kind(path)
    return add_interleaved(tuple(profile_artifact(Path(p), options) for p in paths), options)

