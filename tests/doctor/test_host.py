"""The CPU checks of the install: edgeres, onnxruntime (a real session), the temp folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edgeres import __version__
from edgeres.doctor.check import Status
from edgeres.doctor.host import (
    ONNXRUNTIME_INSTALL,
    check_edgeres,
    check_onnxruntime,
    check_onnxruntime_session,
    check_temp_folder,
)


def test_edgeres_names_its_version_and_python() -> None:
    outcome = check_edgeres()
    assert outcome.status is Status.PASS
    assert f"edgeres {__version__}" in outcome.detail and sys.executable in outcome.detail


def test_onnxruntime_names_its_version_and_the_cpu_provider() -> None:
    import onnxruntime

    outcome = check_onnxruntime()
    assert outcome.status is Status.PASS
    assert f"onnxruntime {onnxruntime.__version__}" in outcome.detail and "CPUExecutionProvider" in outcome.detail


def test_an_onnxruntime_that_does_not_import_fails_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # None in sys.modules makes the import fail
    outcome = check_onnxruntime()
    assert outcome.status is Status.FAIL
    assert outcome.detail.startswith("onnxruntime does not import") and outcome.fix == ONNXRUNTIME_INSTALL


def test_the_tiny_model_runs_in_an_onnxruntime_session() -> None:
    outcome = check_onnxruntime_session()
    assert outcome.status is Status.PASS, outcome
    assert "4x10 logits, all finite" in outcome.detail


def test_a_writable_temp_folder_passes_with_its_free_space(tmp_path: Path) -> None:
    outcome = check_temp_folder(tmp_path, min_free_bytes=1)
    assert outcome.status is Status.PASS and outcome.detail.startswith(f"{tmp_path}: writable, ")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "absent", "does not exist"),
        (lambda p: (p / "a-file").write_bytes(b"x") and p / "a-file", "is not a folder"),
    ],
    ids=["missing", "regular-file"],
)
def test_an_unusable_temp_folder_fails_with_the_fix(tmp_path: Path, make, says: str) -> None:
    outcome = check_temp_folder(make(tmp_path))
    assert outcome.status is Status.FAIL and says in outcome.detail
    assert outcome.fix is not None and "TMPDIR" in outcome.fix


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_temp_folder_fails(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        outcome = check_temp_folder(tmp_path, min_free_bytes=1)
    finally:
        tmp_path.chmod(0o755)
    assert outcome.status is Status.FAIL and "cannot create a file" in outcome.detail


def test_too_little_free_space_fails(tmp_path: Path) -> None:
    outcome = check_temp_folder(tmp_path, min_free_bytes=1 << 60)  # an exbibyte: no disk has it free
    assert outcome.status is Status.FAIL and "free, under the" in outcome.detail
    assert outcome.fix is not None and "TMPDIR" in outcome.fix


def test_tmpdir_is_the_folder_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "absent"))
    outcome = check_temp_folder()
    assert outcome.status is Status.FAIL and outcome.detail == f"TMPDIR={tmp_path / 'absent'} does not exist"
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert check_temp_folder(min_free_bytes=1).detail.startswith(f"TMPDIR={tmp_path}: writable")
