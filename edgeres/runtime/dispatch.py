"""The runner an artifact needs, chosen by its kind and the runtime asked for."""

from __future__ import annotations

from pathlib import Path

from edgeres.artifacts.kinds import ArtifactKind, artifact_kind
from edgeres.errors import UserInputError
from edgeres.runtime.base import Runner
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import OpenVinoRunner
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.trt_runner import TensorRTRunner

# The runtimes that take each kind of file; the first is what AUTO picks.
_RUNTIMES = {
    ArtifactKind.ONNX: (RuntimeKind.ONNXRUNTIME, RuntimeKind.OPENVINO),
    ArtifactKind.TENSORRT: (RuntimeKind.TENSORRT,),
}
_KIND_NAMES = {ArtifactKind.ONNX: "an ONNX model", ArtifactKind.TENSORRT: "a TensorRT engine"}


def runtime_for(artifact: Path, runtime: RuntimeKind = RuntimeKind.AUTO) -> RuntimeKind:
    """The runtime that runs `artifact`: AUTO's pick for its kind of file, or `runtime` where it takes that kind
    (OpenVINO and onnxruntime run ONNX files, TensorRT runs engines); one-line refusal otherwise."""
    kind = artifact_kind(artifact)
    accepted = _RUNTIMES[kind]
    chosen = accepted[0] if runtime is RuntimeKind.AUTO else runtime
    if chosen not in accepted:
        names = " or ".join(r.value for r in accepted)
        raise UserInputError(f"{artifact}: {chosen.value} does not run {_KIND_NAMES[kind]}; {names} does")
    return chosen


def open_runner(artifact: Path, allow_unverified: bool = False, runtime: RuntimeKind = RuntimeKind.AUTO) -> Runner:
    """The runner for a file on `runtime_for(artifact, runtime)`; TensorRT refuses an engine that was never
    verified, or failed, unless `allow_unverified`."""
    chosen = runtime_for(artifact, runtime)
    if chosen is RuntimeKind.OPENVINO:
        return OpenVinoRunner(artifact)
    if chosen is RuntimeKind.ONNXRUNTIME:
        return OnnxRuntimeRunner(artifact)
    return TensorRTRunner(artifact, allow_unverified=allow_unverified)
