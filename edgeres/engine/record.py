"""What the engine stage records beside a serialized engine: the ONNX (and calibration cache) it was built
from, the TensorRT version and GPU it is bound to, its optimisation profile and builder settings.

An engine cannot be opened without TensorRT and a GPU, so this record is what the runner checks before
deserializing it and what deploy checks a Triton plan against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.fields import Fields
from edgeres.artifacts.precision import Precision, recorded_precision
from edgeres.artifacts.sidecar import Section, Sidecar, Stage, read_sidecar, write_sidecar
from edgeres.engine.options import BatchProfile, EngineOptions
from edgeres.engine.target import EngineTarget, HardwareCompatibility
from edgeres.engine.verification_record import VerificationOutcome
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputSpec

ENGINE_VERSIONS = ("tensorrt", "onnx", "numpy")  # the packages whose versions an engine's sidecar records


@dataclass(frozen=True)
class EngineProfile:
    """The one optimisation profile: the input tensor and its min/opt/max shapes (batch first)."""

    tensor: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def batch_range(self) -> tuple[int, int]:
        return self.min[0], self.max[0]

    def to_json(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_json(cls, fields: Fields) -> EngineProfile:
        shapes = []
        for key in ("min", "opt", "max"):
            shape = fields.items(key, int)
            if not shape or min(shape) < 1:
                raise fields.refusal(key, fields.data.get(key), "a shape of positive whole numbers, batch first")
            shapes.append(shape)
        return cls(fields.require("tensor", str), *shapes)


def _recorded_options(options: Fields) -> EngineOptions:
    """The builder settings as recorded; the calibration cache is named in the record's inputs instead,
    since it need not exist where the engine is read."""
    batch = options.section("batch")
    hardware = HardwareCompatibility.NONE
    if options.get("hardware_compatibility", str) is not None:
        hardware = options.choice("hardware_compatibility", HardwareCompatibility)
    timing_cache = options.get("timing_cache", str)
    sizes = tuple(batch.require(k, int) for k in ("min", "opt", "max")) if batch is not None else None
    workspace_mib, level_value = options.get("workspace_mib", int), options.get("optimization_level", int)
    dla_core, compatible = options.get("dla_core", int), options.get("version_compatible", bool)
    try:
        return EngineOptions(
            batch=BatchProfile(*sizes) if sizes is not None else BatchProfile(),
            workspace_mib=workspace_mib,
            optimization_level=level_value,
            timing_cache=Path(timing_cache) if timing_cache else None,
            dla_core=dla_core,
            version_compatible=bool(compatible),
            hardware_compatibility=hardware,
        )
    except UserInputError as exc:  # settings the builder would have refused
        raise UserInputError(f"{options.where}: {exc}") from None


@dataclass(frozen=True)
class EngineRecord:
    """One engine: built from which ONNX, at which precision, for which TensorRT and GPU, how.

    Fields a sidecar does not record read as None (an engine given with a hand-written sidecar); the
    readers that need one refuse its absence themselves.
    """

    onnx: str | None  # inputs.onnx: the ONNX it was built from
    onnx_sha256: str | None
    precision: Precision | None
    profile: EngineProfile | None
    target: EngineTarget | None
    options: EngineOptions = field(default_factory=EngineOptions)  # options.calibration_cache: see `calibration_cache`
    calibration_cache: str | None = None  # inputs.calibration_cache, as given to the builder
    calibration_cache_sha256: str | None = None
    strongly_typed: bool | None = None
    input: InputSpec | None = None  # what the ONNX takes, copied from its sidecar (or its source's)
    build_seconds: float | None = None
    verification: VerificationOutcome | None = None  # None: never verified (see edgeres.runtime.verification)

    def write(self, engine: Path) -> Sidecar:
        """The sidecar of `engine` (already written)."""
        inputs: dict[str, str | None] = {
            "onnx": self.onnx,
            "onnx_sha256": self.onnx_sha256,
            "calibration_cache": self.calibration_cache,
            "calibration_cache_sha256": self.calibration_cache_sha256,
        }
        options: dict[str, Any] = {
            "precision": None if self.precision is None else self.precision.value,
            "strongly_typed": self.strongly_typed,
            "input": None if self.input is None else self.input.to_json(),
            "profile": None if self.profile is None else self.profile.to_json(),
            "target": None if self.target is None else self.target.to_json(),
            **self.options.as_dict(),
            "calibration_cache": self.calibration_cache,
        }
        results: dict[str, Any] = {
            "build_seconds": None if self.build_seconds is None else round(self.build_seconds, 2),
            "verification": None if self.verification is None else self.verification.to_json(),
        }
        return write_sidecar(engine, Stage.ENGINE, inputs, options, results, ENGINE_VERSIONS)

    @classmethod
    def of(cls, sidecar: Sidecar) -> EngineRecord:
        """The record an engine sidecar holds; one-line UserInputError naming the file on a malformed value."""
        sidecar.require_stage(Stage.ENGINE)
        inputs, options = sidecar.fields(Section.INPUTS), sidecar.fields(Section.OPTIONS)
        profile, target = options.section("profile"), options.section("target")
        results = sidecar.fields(Section.RESULTS)
        verification = results.section("verification")
        return cls(
            onnx=inputs.get("onnx", str),
            onnx_sha256=inputs.get("onnx_sha256", str),
            precision=recorded_precision(sidecar),
            profile=None if profile is None else EngineProfile.from_json(profile),
            target=None if target is None else EngineTarget.from_json(target),
            options=_recorded_options(options),
            calibration_cache=inputs.get("calibration_cache", str),
            calibration_cache_sha256=inputs.get("calibration_cache_sha256", str),
            strongly_typed=options.get("strongly_typed", bool),
            input=InputSpec.from_options(options),
            build_seconds=results.get("build_seconds", float),
            verification=None if verification is None else VerificationOutcome.from_json(verification),
        )


def read_engine_record(engine: Path) -> EngineRecord | None:
    """The record beside `engine`, None when it has no sidecar (one another stage wrote is refused)."""
    sidecar = read_sidecar(Path(engine))
    return None if sidecar is None else EngineRecord.of(sidecar)
