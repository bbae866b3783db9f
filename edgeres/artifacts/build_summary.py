"""`build_summary.json`: the one writer and reader of a build folder's manifest.

The build writes it last (edgeres.artifacts.completion); deploy, `edgeres sensitivity` and the folder's
completion check and `edgeres info` read it back through `BuildSummary.read`. Precision, artifacts, hashes and
the gate's verdict are typed fields; the recipe stays JSON, read by its one decoder
(`edgeres.flow.options.BuildOptions.from_recipe`); the report sections (fidelity, calibration, sensitivity,
fallback...) are the JSON of the typed records that made them, and only `logits_sqnr` reads one back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.atomic import read_json_object, write_json_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.errors import UserInputError

SUMMARY_NAME = "build_summary.json"
JsonSection = Mapping[str, Any]


@dataclass(frozen=True)
class BuildSummary:
    """What one build made, from what, how it measured, and whether it passed its gate."""

    precision: Precision
    recipe: JsonSection  # the options that reproduce the calibration (edgeres.flow.options.BuildOptions)
    weights: str
    random_weights: bool | None
    input: JsonSection | None  # what the model takes (edgeres.frames.contract.InputSpec.to_json); None in old builds
    artifacts: Mapping[ArtifactRole, Path]
    gate_passed: bool | None
    # Report sections, in the order they appear in the file.
    sections: Mapping[str, Any] = field(default_factory=dict)
    complete: bool = False
    sha256: Mapping[str, str] = field(default_factory=dict)  # path (relative to the folder when inside) -> SHA-256

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision.value,
            "options": dict(self.recipe),
            "weights": self.weights,
            "random_weights": self.random_weights,
            "input": None if self.input is None else dict(self.input),
            **self.sections,
            "artifacts": {role.value: str(path) for role, path in self.artifacts.items()},
            "gate_passed": self.gate_passed,
            "complete": self.complete,
            "sha256": dict(self.sha256),
        }

    def logits_sqnr(self) -> dict[ArtifactRole, float]:
        """Each measured model's logits SQNR in dB (infinite where it matched FP32 exactly)."""
        fidelity = self.sections.get("fidelity")
        measured: dict[ArtifactRole, float] = {}
        for role in self.artifacts:
            report = fidelity.get(role.value) if isinstance(fidelity, Mapping) else None
            value = report.get("sqnr_db") if isinstance(report, Mapping) else None
            if isinstance(value, int | float) or value in ("inf", "-inf"):
                measured[role] = float(value)
        return measured

    def located(self, role: ArtifactRole, folder: Path) -> Path | None:
        """The file of `role` as recorded, else of the same name in `folder` (a build folder moved or copied
        since); None when the summary lists none or neither is there."""
        recorded = self.artifacts.get(role)
        if recorded is None:
            return None
        return next((path for path in (recorded, Path(folder) / recorded.name) if path.is_file()), None)

    def write(self, path: Path) -> Path:
        write_json_atomic(path, self.as_dict())
        return path

    @classmethod
    def read(cls, path: Path) -> BuildSummary:
        """The summary at `path`; one-line UserInputError when it is unreadable or not a summary."""
        return cls.from_dict(read_json_object(path, "build summary"), path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: Path) -> BuildSummary:
        artifacts, hashes = data.get("artifacts"), data.get("sha256", {})
        if not isinstance(artifacts, dict) or not artifacts:
            raise UserInputError(f"{where}: build summary lists no artifacts; rebuild")
        if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
            raise UserInputError(f"{where}: build summary's sha256 is not a map of file to hash; rebuild")
        try:
            roles = {ArtifactRole(role): Path(str(path)) for role, path in artifacts.items()}
        except ValueError as exc:
            raise UserInputError(f"{where}: build summary names an unknown artifact ({exc})") from None
        try:
            precision = Precision(data.get("precision"))
        except ValueError:
            raise UserInputError(f"{where}: build summary's precision {data.get('precision')!r} is unknown") from None
        typed = {"precision", "options", "weights", "random_weights", "input", "artifacts", "gate_passed"}
        sections = {k: v for k, v in data.items() if k not in typed | {"complete", "sha256"}}
        gate, random, recipe, contract = (data.get(k) for k in ("gate_passed", "random_weights", "options", "input"))
        return cls(
            precision=precision,
            recipe=recipe if isinstance(recipe, dict) else {},
            weights=str(data.get("weights")),
            random_weights=random if isinstance(random, bool) else None,
            input=contract if isinstance(contract, dict) else None,
            artifacts=roles,
            gate_passed=gate if isinstance(gate, bool) else None,
            sections=sections,
            complete=data.get("complete") is True,
            sha256=dict(hashes),
        )
