"""Atomic artifact writes and the sidecar JSON that records how each artifact was made."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from edgeres import __version__
from edgeres.artifacts.atomic import sha256_file, write_json_atomic

SIDECAR_SUFFIX = ".json"


SIDECAR_SCHEMA = 1


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


def write_sidecar(
    artifact: Path,
    stage: str,
    inputs: dict[str, str | None],
    options: dict[str, Any],
    results: dict[str, Any] | None = None,
    versions: tuple[str, ...] = ("torch", "onnx", "onnxruntime", "numpy"),
) -> dict[str, Any]:
    """Write `<artifact>.json`: what made the artifact, from which inputs, with which versions."""
    payload: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "stage": stage,
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "bytes": artifact.stat().st_size,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "inputs": inputs,
        "options": options,
        "versions": package_versions(*versions),
        "results": results or {},
    }
    write_json_atomic(sidecar_path(artifact), payload)
    return payload


def read_sidecar(artifact: Path) -> dict[str, Any] | None:
    """The sidecar of `artifact`, or None if it has none."""
    path = sidecar_path(artifact)
    if not path.exists():
        return None
    from edgeres.errors import UserInputError

    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: sidecar is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(loaded, dict):
        raise UserInputError(f"{path}: sidecar is not a JSON object")
    return loaded


def verify_sidecar(artifact: Path, full_hash: bool = True) -> dict[str, Any] | None:
    """The sidecar of `artifact` (None if it has none), refused unless it describes this very file.

    Compares the recorded size, then (with `full_hash`) the SHA-256: a stale or copied sidecar
    would otherwise vouch for another file. The size check alone costs nothing; hashing reads the
    whole file (about 0.3 s per 100 MB), worth it before deserializing an engine.
    """
    sidecar = read_sidecar(artifact)
    if sidecar is None:
        return None
    from edgeres.errors import UserInputError

    path = sidecar_path(artifact)
    recorded_bytes, recorded_hash = sidecar.get("bytes"), sidecar.get("sha256")
    if not isinstance(recorded_bytes, int) or not isinstance(recorded_hash, str):
        raise UserInputError(f"{path}: sidecar records no bytes/sha256 for {Path(artifact).name}; rebuild")
    size = Path(artifact).stat().st_size
    if size != recorded_bytes:
        raise UserInputError(
            f"{path}: sidecar describes another file ({recorded_bytes} bytes, {artifact} has {size}); rebuild"
        )
    if full_hash and sha256_file(artifact) != recorded_hash:
        raise UserInputError(f"{path}: sidecar describes another file (SHA-256 differs from {artifact}); rebuild")
    return sidecar

