"""What `edgeres build` asks of the TensorRT builder: the batch profile and the builder settings.

Kept apart from the builder so the engine's record (edgeres.engine.record) can hold them without importing
the builder that writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeres.engine.target import HardwareCompatibility
from edgeres.errors import UserInputError

MAX_OPTIMIZATION_LEVEL = 5  # TensorRT builder optimisation levels are 0..5 (default 3)


@dataclass(frozen=True)
class BatchProfile:
    """The batch sizes one optimisation profile covers: min <= opt <= max."""

    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise UserInputError(f"batch profile {self}: need 1 <= min <= opt <= max")

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """`"8"` -> 8:8:8, `"1:8:32"` -> min 1, opt 8, max 32."""
        parts = text.strip().split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise UserInputError(f"batch profile '{text}': expected N or MIN:OPT:MAX with whole numbers") from None
        if len(values) == 1:
            return cls(values[0], values[0], values[0])
        if len(values) != 3:
            raise UserInputError(f"batch profile '{text}': expected N or MIN:OPT:MAX, got {len(values)} fields")
        return cls(*values)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"

    def shapes(self, sample_shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Full min/opt/max input shapes for one sample's shape (without the batch axis)."""
        sample = tuple(int(d) for d in sample_shape)
        return (self.min, *sample), (self.opt, *sample), (self.max, *sample)


@dataclass(frozen=True)
class EngineOptions:
    """Everything `edgeres build` passes to the TensorRT builder; validated on construction."""

    batch: BatchProfile = field(default_factory=BatchProfile)
    workspace_mib: int | None = None
    optimization_level: int | None = None
    timing_cache: Path | None = None
    dla_core: int | None = None
    version_compatible: bool = False
    hardware_compatibility: HardwareCompatibility = HardwareCompatibility.NONE
    calibration_cache: Path | None = None

    def __post_init__(self) -> None:
        if self.workspace_mib is not None and self.workspace_mib < 1:
            raise UserInputError(f"builder workspace {self.workspace_mib} MiB: must be at least 1")
        level = self.optimization_level
        if level is not None and not 0 <= level <= MAX_OPTIMIZATION_LEVEL:
            raise UserInputError(f"builder optimisation level {level}: TensorRT takes 0..{MAX_OPTIMIZATION_LEVEL}")
        if self.dla_core is not None and self.dla_core < 0:
            raise UserInputError(f"DLA core {self.dla_core}: DLA cores are numbered from 0")
        if self.dla_core is not None and self.hardware_compatibility is not HardwareCompatibility.NONE:
            raise UserInputError("a DLA engine cannot be hardware-compatible: DLA engines are tied to one SoC")
        if self.calibration_cache is not None and not Path(self.calibration_cache).is_file():
            raise UserInputError(f"{self.calibration_cache}: calibration cache not found")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the sidecar."""
        out = asdict(self)
        out["batch"] = asdict(self.batch)
        out["hardware_compatibility"] = self.hardware_compatibility.value
        out["timing_cache"] = str(self.timing_cache) if self.timing_cache else None
        out["calibration_cache"] = str(self.calibration_cache) if self.calibration_cache else None
        return out
