"""Which runtime runs a build's INT8 model on a CPU: the build decides once, every consumer reads it back.

Where OpenVINO is installed, a build measures the TensorRT Q/DQ model on it as it measures the onnxruntime twin
(fidelity against FP32 and against the reference arithmetic, the gate, batch-1 latency); the faster of the two
whose fidelity passed is recorded in the build summary's `cpu_runtime` section. The camera command, profile and
deploy read it here, and say which runtime ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.errors import UserInputError
from edgeres.runtime.kinds import RuntimeKind

if TYPE_CHECKING:  # the fidelity module imports onnxruntime, which `edgeres --help` (deploy's import) must not
    from edgeres.quantize.fidelity import FidelityReport

CPU_RUNTIME_SECTION = "cpu_runtime"
OPENVINO_SECTION = "openvino"


@dataclass(frozen=True)
class CpuRuntimeChoice:
    """The runtime (ONNXRUNTIME or OPENVINO) and the build folder's model file it runs, and why."""

    runtime: RuntimeKind
    model: str  # a file name in the build folder
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"runtime": self.runtime.value, "model": self.model, "reason": self.reason}

    @classmethod
    def from_json(cls, value: object, where: str) -> CpuRuntimeChoice:
        fields = Fields.of(value, where)
        return cls(fields.choice("runtime", RuntimeKind), fields.require("model", str), fields.require("reason", str))

    def path_in(self, folder: Path) -> Path:
        return Path(folder) / self.model


def recorded_cpu_runtime(summary: BuildSummary, where: str) -> CpuRuntimeChoice | None:
    """The choice a build recorded; None for a build that made none (FP16, or before OpenVINO was measured)."""
    raw = summary.sections.get(CPU_RUNTIME_SECTION)
    return None if raw is None else CpuRuntimeChoice.from_json(raw, f"{where}: {CPU_RUNTIME_SECTION}")


def folder_cpu_runtime(folder: Path) -> CpuRuntimeChoice | None:
    """The choice recorded in the build folder `folder` (None: no summary there, or none recorded)."""
    path = Path(folder) / SUMMARY_NAME
    if not path.is_file():
        return None
    return recorded_cpu_runtime(BuildSummary.read(path), str(path))


@dataclass(frozen=True)
class OpenVinoRecord:
    """What a build measured on OpenVINO: the file (its TensorRT Q/DQ model), the release, its report against
    FP32 and the failures (none: verified)."""

    model: str  # a file name in the build folder
    version: str
    fidelity: FidelityReport
    failures: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.failures


def recorded_openvino(summary: BuildSummary, where: str) -> OpenVinoRecord | None:
    """The build's `openvino` section read typed; None where OpenVINO never ran the model in the build."""
    raw = summary.sections.get(OPENVINO_SECTION)
    if raw is None:
        return None
    fields = Fields.of(raw, f"{where}: {OPENVINO_SECTION}")
    measured = summary.artifacts.get(fields.choice("model", ArtifactRole))
    if measured is None:
        raise UserInputError(f"{fields.where}.model names a model the build does not list")
    failures = fields.items("failures", str) or ()
    if fields.require("verified", bool) == bool(failures):
        raise UserInputError(f"{fields.where}: verified and failures disagree")
    report = fields.section("fidelity")
    if report is None:
        raise UserInputError(f"{fields.where}: no fidelity report")
    from edgeres.quantize.fidelity import FidelityReport

    fidelity = FidelityReport.from_json(report.data, f"{fields.where}.fidelity")
    return OpenVinoRecord(measured.name, fields.require("version", str), fidelity, failures)

