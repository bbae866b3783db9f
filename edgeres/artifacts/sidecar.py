"""The sidecar JSON beside every artifact (`model.onnx` -> `model.onnx.json`): what made it, from which
inputs, with which options and versions.

`Sidecar` is the envelope every stage shares (stage, hashes, the inputs/options/results sections); what a
stage puts in those sections is its own typed record, which reads them through `Sidecar.fields` and writes
them through `write_sidecar`: `edgeres.export.record.ExportRecord`, `edgeres.artifacts.quantize_record.
QuantizeRecord`, `edgeres.engine.record.EngineRecord`, `edgeres.deploy.record.DeepStreamRecord`.
"""

from __future__ import annotations

import enum
import json
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeres import __version__
from edgeres.artifacts.atomic import sha256_file, write_json_atomic
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.errors import UserInputError

SIDECAR_SUFFIX = ".json"
SIDECAR_SCHEMA = 1
DEFAULT_VERSIONS = ("torch", "onnx", "onnxruntime", "numpy")


def sidecar_path(artifact: Path) -> Path:
    """`model.onnx` -> `model.onnx.json`, so the pair sorts together."""
    return artifact.with_name(artifact.name + SIDECAR_SUFFIX)


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of the named distributions (None when absent)."""
    versions: dict[str, str | None] = {"edgeres": __version__, "python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class Stage(str, enum.Enum):
    """The stage that wrote a sidecar (its "stage"): which record type its sections hold."""

    EXPORT = "export"
    QUANTIZE = "quantize"
    ENGINE = "engine"
    HELDOUT = "heldout"  # the held-out samples a build writes for verification (edgeres.runtime.heldout)
    DEPLOY_DEEPSTREAM = "deploy-deepstream"
    DEPLOY_TRITON = "deploy-triton"  # Triton's edgeres.json (not a sidecar, the same provenance)


class Section(str, enum.Enum):
    """The three sections of a sidecar a stage fills."""

    INPUTS = "inputs"  # the files it was made from, and their hashes
    OPTIONS = "options"  # how it was made, and what it is
    RESULTS = "results"  # what was measured while making it


@dataclass(frozen=True)
class Sidecar:
    """A sidecar as read back. Sections missing from the file read as empty, values as None."""

    path: Path  # the sidecar file itself
    data: Mapping[str, Any]

    @property
    def stage(self) -> str | None:
        stage = self.data.get("stage")
        return stage if isinstance(stage, str) else None

    def fields(self, section: Section) -> Fields:
        """One section, read with types checked (a value of another type is refused naming this file)."""
        return Fields.of(self.data.get(section.value), f"{self.path}: {section.value}")

    def require_stage(self, stage: Stage) -> None:
        """Refuse, in one line, a sidecar another stage wrote (its sections hold another record)."""
        if self.stage != stage.value:
            raise UserInputError(f"{self.path}: a sidecar of stage {self.stage!r}, not {stage.value!r}")

    @property
    def inputs(self) -> dict[str, Any]:
        """The raw section; typed readers use `fields(Section.INPUTS)`."""
        return dict(self.fields(Section.INPUTS).data)

    @property
    def options(self) -> dict[str, Any]:
        """The raw section; typed readers use `fields(Section.OPTIONS)`."""
        return dict(self.fields(Section.OPTIONS).data)

    @property
    def results(self) -> dict[str, Any]:
        """The raw section; typed readers use `fields(Section.RESULTS)`."""
        return dict(self.fields(Section.RESULTS).data)

    @property
    def recorded_bytes(self) -> int | None:
        value = self.data.get("bytes")
        return value if isinstance(value, int) else None

    @property
    def recorded_sha256(self) -> str | None:
        value = self.data.get("sha256")
        return value if isinstance(value, str) else None

    @property
    def precision(self) -> str | None:
        """options["precision"], which every stage that writes a model records the same way."""
        return self.fields(Section.OPTIONS).get("precision", str)

    @property
    def role(self) -> ArtifactRole | None:
        """What the artifact is for in a build, when the sidecar says (options["role"])."""
        value = self.fields(Section.OPTIONS).get("role", str)
        try:
            return None if value is None else ArtifactRole(value)
        except ValueError:
            raise UserInputError(f"{self.path}: unknown artifact role {value!r}") from None

    @property
    def source_onnx(self) -> str | None:
        """The ONNX this artifact was made from, as recorded (inputs["onnx"]); every stage that makes one
        file from another names it there, so lineage can follow any sidecar."""
        value = self.fields(Section.INPUTS).get("onnx", str)
        return value or None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.data)


def write_sidecar(
    artifact: Path,
    stage: str | Stage,
    inputs: dict[str, str | None],
    options: dict[str, Any],
    results: dict[str, Any] | None = None,
    versions: tuple[str, ...] = DEFAULT_VERSIONS,
) -> Sidecar:
    """Write `<artifact>.json`: what made the artifact, from which inputs, with which versions."""
    payload: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "stage": stage.value if isinstance(stage, Stage) else stage,
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "bytes": artifact.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "options": options,
        "versions": package_versions(*versions),
        "results": results or {},
    }
    path = sidecar_path(artifact)
    write_json_atomic(path, payload)
    return Sidecar(path, payload)


def read_sidecar(artifact: Path) -> Sidecar | None:
    """The sidecar of `artifact`, or None if it has none."""
    path = sidecar_path(Path(artifact))
    if not path.exists():
        return None
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: sidecar is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: sidecar cannot be read ({exc})") from exc
    if not isinstance(loaded, dict):
        raise UserInputError(f"{path}: sidecar is not a JSON object")
    return Sidecar(path, loaded)


def verify_sidecar(artifact: Path, full_hash: bool = True) -> Sidecar | None:
    """The sidecar of `artifact` (None if it has none), refused unless it describes this very file.

    Compares the recorded size, then (with `full_hash`) the SHA-256: a stale or copied sidecar
    would otherwise vouch for another file. The size check alone costs nothing; hashing reads the
    whole file, worth it before deserializing an engine.
    """
    sidecar = read_sidecar(artifact)
    if sidecar is None:
        return None
    recorded_bytes, recorded_hash = sidecar.recorded_bytes, sidecar.recorded_sha256
    if recorded_bytes is None or recorded_hash is None:
        raise UserInputError(f"{sidecar.path}: sidecar records no bytes/sha256 for {Path(artifact).name}; rebuild")
    size = Path(artifact).stat().st_size
    if size != recorded_bytes:
        raise UserInputError(
            f"{sidecar.path}: sidecar describes another file ({recorded_bytes} bytes, {artifact} has {size}); rebuild"
        )
    if full_hash and sha256_file(artifact) != recorded_hash:
        raise UserInputError(
            f"{sidecar.path}: sidecar describes another file (SHA-256 differs from {artifact}); rebuild"
        )
    return sidecar


def require_sidecar(artifact: Path, what: str, needs: str) -> Sidecar:
    """The sidecar of `artifact`, which must be there and describe this very file (size and SHA-256); one
    line naming the file otherwise: `what` names the artifact, `needs` says what the sidecar is for."""
    artifact = Path(artifact)
    if not artifact.is_file():
        raise UserInputError(f"{artifact}: {what} not found")
    sidecar = verify_sidecar(artifact, full_hash=True)
    if sidecar is None:
        raise UserInputError(f"{artifact}: no sidecar ({artifact.name}{SIDECAR_SUFFIX}); {needs}")
    return sidecar
