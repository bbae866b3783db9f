"""Which back-end profiles which artifact, and the profile of several artifacts side by side.

The only module that imports the back-ends: one `ArtifactProfiler` per runtime, chosen by the file's kind and
the runtime asked for, then (two or more ONNX models) the interleaved comparison pass on the same runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgeres.errors import UserInputError
from edgeres.profile.artifact_profiler import ArtifactProfiler
from edgeres.profile.compare import add_interleaved
from edgeres.profile.end_to_end import ClipFrames, open_clip
from edgeres.profile.onnx_profiler import OnnxRuntimeProfiler
from edgeres.profile.openvino_profiler import OpenVinoProfiler
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile
from edgeres.profile.trt_profiler import TensorRTProfiler
from edgeres.runtime.base import Runner
from edgeres.runtime.dispatch import runtime_for
from edgeres.runtime.kinds import RuntimeKind

# One profiler per runtime (edgeres.runtime.dispatch decides which runtime runs which file).
PROFILERS: dict[RuntimeKind, type[ArtifactProfiler[Any]]] = {
    profiler.runtime: profiler for profiler in (OnnxRuntimeProfiler, OpenVinoProfiler, TensorRTProfiler)
}


def profiler_for(path: Path, runtime: RuntimeKind) -> type[ArtifactProfiler[Any]]:
    """The profiler of the runtime that runs this file (AUTO: by its kind); a runtime that does not run this
    kind of file is refused, naming those that do."""
    return PROFILERS[runtime_for(path, runtime)]


def profile_artifact(path: Path, options: ProfileOptions, clip_frames: ClipFrames | None = None) -> ArtifactProfile:
    """Profile one artifact on `options.runtime` (on `clip_frames`, an opened clip, when given)."""
    return profiler_for(Path(path), options.runtime)(Path(path), options, clip_frames).profile()


def profile_artifacts(
    paths: Sequence[Path], options: ProfileOptions, runtimes: Sequence[RuntimeKind] | None = None
) -> tuple[ArtifactProfile, ...]:
    """Check every path, its runtime (`runtimes`, one per path, else `options.runtime`), and the clip against each
    model's input, first (a typo in the last one should not cost a long run), then profile each; a clip is opened
    once, so a stream's frames go to one model after another.

    With two or more ONNX artifacts, an interleaved pass follows for a drift-resistant comparison."""
    if not paths:
        raise UserInputError("no artifact to profile")
    chosen = list(runtimes) if runtimes is not None else [options.runtime] * len(paths)
    for path, runtime in zip(paths, chosen, strict=True):
        profiler_for(Path(path), runtime)
        if options.clip is not None:
            options.clip.refuse_misread(Path(path))
    labels = distinct_labels([Path(p) for p in paths])
    labelled = zip(paths, chosen, labels, strict=True)
    with nullcontext(None) if options.clip is None else open_clip(options.clip) as clip_frames:
        profiles = tuple(
            replace(profile_artifact(Path(path), replace(options, runtime=runtime), clip_frames), label=label)
            for path, runtime, label in labelled
        )

    def new_runner(profile: ArtifactProfile) -> Runner:
        return profiler_for(Path(profile.path), profile.runtime)(Path(profile.path), options).runner()

    return add_interleaved(profiles, options, new_runner)


def distinct_labels(paths: Sequence[Path]) -> list[str]:
    """Each path by its fewest trailing components that tell it from the others: `mse/model_int8_qdq.onnx`
    and `max/model_int8_qdq.onnx`, but `model_fp32.onnx` where the name alone is unique."""
    parts = [Path(os.path.abspath(p)).parts for p in paths]
    labels = []
    for own in parts:
        count = next((n for n in range(1, len(own) + 1) if sum(o[-n:] == own[-n:] for o in parts) == 1), len(own))
        labels.append("/".join(own[-count:]).replace("//", "/"))
    return labels
