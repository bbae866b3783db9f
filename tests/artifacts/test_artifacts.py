"""verify_sidecar: a sidecar vouches only for the file it was written for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeres.artifacts.sidecar import sidecar_path, verify_sidecar, write_sidecar
from edgeres.errors import UserInputError


def test_matching_sidecar_is_returned_and_absent_one_is_none(tmp_path: Path) -> None:
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"model bytes")
    assert verify_sidecar(artifact) is None
    written = write_sidecar(artifact, "export", {}, {"precision": "fp32"})
    assert verify_sidecar(artifact) == written
    assert verify_sidecar(artifact, full_hash=False) == written


def test_sidecar_of_another_file_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "model.engine"
    artifact.write_bytes(b"first engine")
    write_sidecar(artifact, "engine", {}, {})
    artifact.write_bytes(b"other engine")  # same size, other bytes
    assert verify_sidecar(artifact, full_hash=False) is not None  # the size alone cannot tell
    with pytest.raises(UserInputError, match=r"model\.engine\.json: sidecar describes another file \(SHA-256"):
        verify_sidecar(artifact)
    artifact.write_bytes(b"a longer engine")
    with pytest.raises(UserInputError, match=r"\(12 bytes, .*model\.engine has 15\); rebuild"):
        verify_sidecar(artifact, full_hash=False)


def test_sidecar_without_size_or_hash_is_refused(tmp_path: Path) -> None:
    artifact = tmp_path / "model.engine"
    artifact.write_bytes(b"engine")
    sidecar_path(artifact).write_text(json.dumps({"stage": "engine", "options": {}}))
    with pytest.raises(UserInputError, match="records no bytes/sha256"):
        verify_sidecar(artifact)
