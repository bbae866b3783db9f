"""What a serialized TensorRT engine is bound to (TensorRT version, GPU, compatibility level), how
that is recorded in the engine's sidecar, and the refusal of an engine this process cannot run.

Nothing here needs TensorRT except `running_target`/`require_tensorrt`, which import it lazily.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from edgeres.artifacts.fields import Fields
from edgeres.engine.cuda import current_device
from edgeres.errors import BackendUnavailableError, UserInputError

if TYPE_CHECKING:
    from edgeres.engine.record import EngineRecord


class HardwareCompatibility(Enum):
    """TensorRT's HardwareCompatibilityLevel: which GPUs besides the build GPU may run the engine."""

    NONE = "none"
    AMPERE_PLUS = "ampere-plus"
    SAME_COMPUTE_CAPABILITY = "same-compute-capability"


@dataclass(frozen=True)
class EngineTarget:
    """What a serialized engine is bound to: the TensorRT version and the GPU it was built on."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str

    def to_json(self) -> dict[str, str]:
        """The engine sidecar's options["target"]; `from_json` reads it back."""
        return asdict(self)

    @classmethod
    def from_json(cls, fields: Fields) -> EngineTarget:
        names = ("tensorrt_version", "gpu_name", "compute_capability")
        missing = [name for name in names if fields.get(name, str) is None]
        if missing:
            raise UserInputError(f"{fields.where} lacks {missing[0]}; rebuild the engine")
        return cls(*(fields.require(name, str) for name in names))


class EngineMismatchError(UserInputError):
    """The engine was built for another TensorRT version or GPU than the one running it."""


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def _capability(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def check_engine_target(engine: Path, record: EngineRecord, running: EngineTarget) -> None:
    """Refuse, with a message naming both sides, an engine this TensorRT and GPU cannot run.

    Plain engines need the exact TensorRT version and the same compute capability; a
    version-compatible engine needs the same major version, no older than the builder; hardware
    compatibility AMPERE_PLUS needs compute capability >= 8.0. Same capability but another GPU
    name only warns: it runs, possibly with tactics tuned for the other GPU.
    """
    built = record.target
    if built is None:
        raise UserInputError(f"{engine}: sidecar has no options.target (TensorRT version, GPU); rebuild the engine")
    rebuild = f"rebuild it here with `edgeres engine MODEL.onnx -o {engine.name}`"
    if record.options.version_compatible:
        built_v = tuple(int(p) for p in built.tensorrt_version.split(".")[:3] if p.isdigit())
        running_v = tuple(int(p) for p in running.tensorrt_version.split(".")[:3] if p.isdigit())
        if _major(built.tensorrt_version) != _major(running.tensorrt_version) or running_v < built_v:
            raise EngineMismatchError(
                f"{engine}: version-compatible engine built with TensorRT {built.tensorrt_version} needs "
                f"TensorRT {_major(built.tensorrt_version)}.x at or above it, this is {running.tensorrt_version}; "
                f"{rebuild}"
            )
    elif built.tensorrt_version != running.tensorrt_version:
        raise EngineMismatchError(
            f"{engine}: built with TensorRT {built.tensorrt_version}, this is TensorRT {running.tensorrt_version} "
            f"(engines are not portable across versions); {rebuild}"
        )
    if record.options.hardware_compatibility is HardwareCompatibility.AMPERE_PLUS:
        if _capability(running.compute_capability) < (8, 0):
            raise EngineMismatchError(
                f"{engine}: hardware-compatible (Ampere+) engine, but {running.gpu_name} has compute capability "
                f"{running.compute_capability} (< 8.0); {rebuild}"
            )
        return
    if built.compute_capability != running.compute_capability:
        raise EngineMismatchError(
            f"{engine}: built for {built.gpu_name} (compute capability {built.compute_capability}), this GPU is "
            f"{running.gpu_name} ({running.compute_capability}); engines are not portable across GPUs; {rebuild}"
        )
    if built.gpu_name != running.gpu_name:
        warnings.warn(
            f"{engine}: built on {built.gpu_name}, running on {running.gpu_name} (same compute capability "
            f"{running.compute_capability}); it runs, but rebuilding here may be faster",
            stacklevel=2,
        )


def require_tensorrt() -> None:
    """Raise BackendUnavailableError, saying how to get it, unless `tensorrt` imports."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            "TensorRT is not installed: JetPack ships it; on x86 install the gpu extra from NVIDIA's index "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def running_target() -> EngineTarget:
    """The TensorRT version and GPU of this process."""
    require_tensorrt()
    import tensorrt as trt

    device = current_device()
    return EngineTarget(trt.__version__, device.name, device.compute_capability)

