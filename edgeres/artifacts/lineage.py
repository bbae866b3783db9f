"""Where an artifact came from: the chain of sidecars from an artifact back to the ONNX it was made from.

A quantized ONNX's sidecar names its FP32 source (inputs["onnx"]), an engine's names the ONNX it was
built from. There is one rule for finding that file: beside the artifact first (a build folder is
moved or copied as a whole), then at the recorded path; never the artifact itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edgeres.artifacts.sidecar import Sidecar, read_sidecar

T = TypeVar("T")

MAX_LINEAGE = 4  # artifact, its source, that one's source...: deeper chains are not made by edgeres


def source_onnx(artifact: Path, sidecar: Sidecar) -> Path | None:
    """The ONNX `artifact` was made from, if its sidecar names one and that file is here."""
    recorded = sidecar.source_onnx
    if recorded is None:
        return None
    artifact = Path(artifact).resolve()
    for candidate in (artifact.parent / Path(recorded).name, Path(recorded)):
        if candidate.is_file() and candidate.resolve() != artifact:
            return candidate
    return None


def lineage(artifact: Path) -> list[tuple[Path, Sidecar]]:
    """(file, sidecar) of `artifact`, then of its source, and so on, as far as the files are here."""
    chain: list[tuple[Path, Sidecar]] = []
    current: Path | None = Path(artifact)
    seen: set[Path] = set()
    while current is not None and len(chain) < MAX_LINEAGE and current.resolve() not in seen:
        seen.add(current.resolve())
        sidecar = read_sidecar(current)
        if sidecar is None:
            break
        chain.append((current, sidecar))
        current = source_onnx(current, sidecar)
    return chain


def nearest(artifact: Path, read: Callable[[Sidecar], T | None]) -> T | None:
    """The first record `read` finds, in the artifact's sidecar or else the nearest source's.

    A quantized ONNX records no input or class count of its own: those are its source's. `read` is a
    record type's reader (`InputSpec.of`, `ModelSpec.of`), None where a sidecar does not hold that record.
    """
    return next((found for _, sidecar in lineage(artifact) if (found := read(sidecar)) is not None), None)
