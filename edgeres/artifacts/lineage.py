"""Where an artifact came from: the chain of sidecars from an artifact back to the ONNX it was made from.

A quantized ONNX's sidecar names its FP32 source (inputs["onnx"]), an engine's names the ONNX it was
built from. There is one rule for finding that file: beside the artifact first (a build folder is
moved or copied as a whole), then at the recorded path; never the artifact itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeres.artifacts.sidecar import Sidecar, read_sidecar

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


def lineage_input_spec(artifact: Path) -> dict[str, Any] | None:
    """What the model takes (options["input"]), from the artifact's sidecar or the nearest source's."""
    return next((s.input_spec for _, s in lineage(artifact) if s.input_spec is not None), None)


def lineage_options(artifact: Path) -> dict[str, Any]:
    """The artifact's options over its sources' (class count and tensors come from export)."""
    merged: dict[str, Any] = {}
    for _, sidecar in reversed(lineage(artifact)):
        merged.update(sidecar.options)
    return merged
