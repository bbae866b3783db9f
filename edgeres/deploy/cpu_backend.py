"""Which Triton backend serves a build's model on CPU instances: OpenVINO where the build verified it, else onnxruntime.

An INT8 build where OpenVINO is installed measures its TensorRT Q/DQ model on it (the summary's `openvino`
section: against FP32 with the gate, against the reference arithmetic; `verified`) and records the faster
verified CPU runtime under `cpu_runtime` (edgeres.flow.cpu_runtime, edgeres.runtime.cpu_choice). AUTO follows
`cpu_runtime`: OpenVINO serves the very file the build chose it for, the U8S8 twin (or a float model) runs on
onnxruntime otherwise, as before OpenVINO was measured. Asking for OpenVINO outright serves the Q/DQ model on
it when the build verified that file on OpenVINO (it may only have been slower there); where the build never
ran it on OpenVINO, or OpenVINO failed its fidelity, it is refused unless the user accepts it unverified.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.precision import Precision
from edgeres.deploy.model import select_artifact
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputKind
from edgeres.runtime.cpu_choice import (
    OPENVINO_SECTION,
    CpuRuntimeChoice,
    OpenVinoRecord,
    recorded_cpu_runtime,
    recorded_openvino,
)
from edgeres.runtime.kinds import RuntimeKind


class CpuBackend(str, enum.Enum):
    """AUTO: what the build recorded (OpenVINO where it chose it, else onnxruntime); the others outright."""

    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


@dataclass(frozen=True)
class BuildCpuRecord:
    """A build folder's CPU records: the runtime it chose for its INT8 model, and its OpenVINO measurement."""

    choice: CpuRuntimeChoice | None = None  # None: a build before OpenVINO was measured, or not INT8
    openvino: OpenVinoRecord | None = None  # None: OpenVINO never ran the model in the build

    @property
    def chose_openvino(self) -> bool:
        return self.choice is not None and self.choice.runtime is RuntimeKind.OPENVINO

    def openvino_runs(self, model: Path) -> bool:
        """The build chose OpenVINO as the CPU runtime of this very file."""
        return self.chose_openvino and self.choice is not None and self.choice.model == model.name

    def verified_on_openvino(self, model: Path) -> bool:
        """The build chose OpenVINO for this file, or verified it there (and found it slower)."""
        measured = self.openvino
        passed = measured is not None and measured.verified and measured.model == model.name
        return passed or self.openvino_runs(model)


def read_cpu_record(folder: Path) -> BuildCpuRecord:
    """The CPU records of the build in `folder` (empty where there is no summary, or it records neither)."""
    path = Path(folder) / SUMMARY_NAME
    if not path.is_file():
        return BuildCpuRecord()
    summary = BuildSummary.read(path)
    return BuildCpuRecord(recorded_cpu_runtime(summary, str(path)), recorded_openvino(summary, str(path)))


@dataclass(frozen=True)
class CpuBackendChoice:
    """The runtime CPU instances run a model file on, and whether its build verified the file on it."""

    runtime: RuntimeKind  # ONNXRUNTIME or OPENVINO
    record: BuildCpuRecord
    verified: bool  # OpenVINO: the build verified this very file on it; onnxruntime: always

    def refusal(self, model: Path) -> str:
        """Why serving `model` on OpenVINO is not what its build verified, in one line."""
        measured = self.record.openvino
        if measured is None:
            found = f"its build never ran it on OpenVINO (its {SUMMARY_NAME} records no {OPENVINO_SECTION} measure)"
        elif measured.model != model.name:
            found = f"its build measured {measured.model} on OpenVINO, not this file"
        else:
            found = f"its build measured it on OpenVINO and it FAILED ({measured.failures[0]})"
        return (
            f"{model}: {found}; serve the build's choice (--cpu-backend auto), or accept OpenVINO unverified "
            "(--allow-unverified)"
        )

    def why(self) -> str:
        """What the build said of OpenVINO for this model, in one sentence (for the config and edgeres.json)."""
        choice = self.record.choice
        if not self.verified:
            return "Its build never verified it on OpenVINO: served anyway (allow_unverified)."
        if self.record.chose_openvino and choice is not None:
            return f"The build chose it: {choice.reason}."
        reason = "" if choice is None else f" ({choice.reason})"
        return f"The build verified it on OpenVINO but chose {choice.model if choice else 'onnxruntime'}{reason}."


def cpu_backend_for(model: Path, asked: CpuBackend) -> CpuBackendChoice:
    """The runtime CPU instances run `model` on: `asked`, or for AUTO OpenVINO exactly where its build chose
    OpenVINO for this file (a folder without the record deploys as before: onnxruntime)."""
    model = Path(model)
    record = read_cpu_record(model.parent)
    if asked is CpuBackend.AUTO:
        runtime = RuntimeKind.OPENVINO if record.openvino_runs(model) else RuntimeKind.ONNXRUNTIME
    else:
        runtime = RuntimeKind(asked.value)
    verified = runtime is RuntimeKind.ONNXRUNTIME or record.verified_on_openvino(model)
    return CpuBackendChoice(runtime, record, verified)


def cpu_artifact(
    location: Path,
    asked: CpuBackend,
    precision: Precision | None = None,
    input_kind: InputKind | None = None,
    allow_failed_gate: bool = False,
) -> Path:
    """The model file CPU instances serve from `location` (a build folder, or one file: itself).

    OpenVINO runs the TensorRT Q/DQ model as it is, so it is picked as for GPU instances; onnxruntime gets the
    twin made for its CPU provider. AUTO takes the model OpenVINO would serve when the folder's build chose
    OpenVINO for exactly that file, else the twin.
    """
    location = Path(location)
    if location.is_file():
        return location
    if asked is CpuBackend.ONNXRUNTIME:
        return select_artifact(location, precision, input_kind, allow_failed_gate, cpu=True)
    if asked is CpuBackend.OPENVINO:
        return select_artifact(location, precision, input_kind, allow_failed_gate, cpu=False)
    if location.is_dir() and read_cpu_record(location).chose_openvino:
        qdq = select_artifact(location, precision, input_kind, allow_failed_gate, cpu=False)
        if read_cpu_record(location).openvino_runs(qdq):
            return qdq
    return select_artifact(location, precision, input_kind, allow_failed_gate, cpu=True)


def require_verified(model: Path, choice: CpuBackendChoice, allow_unverified: bool) -> None:
    """Refuse OpenVINO for a model its build did not verify on it, unless `allow_unverified`."""
    if not choice.verified and not allow_unverified:
        raise UserInputError(choice.refusal(model))
