"""Which runtime runs a build's INT8 model on a CPU: the build decides once, every consumer reads it back.

Where OpenVINO is installed, a build measures the TensorRT Q/DQ model on it as it measures the onnxruntime twin
(fidelity against FP32 and against the reference arithmetic, the gate, batch-1 latency); the faster of the two
whose fidelity passed is recorded in the build summary's `cpu_runtime` section. The camera command, profile and
deploy read it here, and say which runtime ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.fields import Fields
from edgeres.runtime.kinds import RuntimeKind

CPU_RUNTIME_SECTION = "cpu_runtime"


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
