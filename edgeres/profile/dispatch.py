"""Which back-end profiles which artifact, and the profile of several artifacts side by side.

The only module that imports the back-ends: one `ArtifactProfiler` per artifact kind, then (two or
more ONNX models) the interleaved comparison pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeres.artifacts.kinds import ArtifactKind, artifact_kind
from edgeres.errors import UserInputError
from edgeres.profile.artifact_profiler import ArtifactProfiler
from edgeres.profile.compare import add_interleaved
from edgeres.profile.onnx_profiler import OnnxRuntimeProfiler
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile
from edgeres.profile.trt_profiler import TensorRTProfiler

PROFILERS: dict[ArtifactKind, type[ArtifactProfiler[Any]]] = {
    ArtifactKind.ONNX: OnnxRuntimeProfiler,
    ArtifactKind.TENSORRT: TensorRTProfiler,
}


def profile_artifact(path: Path, options: ProfileOptions) -> ArtifactProfile:
    """Profile one artifact with the back-end its type calls for."""
    return PROFILERS[artifact_kind(path)](Path(path), options).profile()


def profile_artifacts(paths: Sequence[Path], options: ProfileOptions) -> tuple[ArtifactProfile, ...]:
    """Check every path first (a typo in the last one should not cost a long run), then profile each.

    With two or more ONNX artifacts, an interleaved pass follows for a drift-resistant comparison."""
    if not paths:
        raise UserInputError("no artifact to profile")
    for path in paths:
        artifact_kind(path)
    return add_interleaved(tuple(profile_artifact(Path(p), options) for p in paths), options)
