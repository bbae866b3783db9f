"""`edgeres doctor` on a machine with TensorRT and a GPU: every device check passes, the tiny FP16 and INT8
engines included; NVML alone may SKIP (pynvml not installed, or a Jetson, which has no NVML).

Run on such a machine:  .venv/bin/python -m pytest tests/gpu/test_doctor_gpu.py -v -s
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.doctor.check import Status
from edgeres.doctor.checklist import DEVICE_STEPS, run_doctor

MAY_SKIP = {"nvml": ("pynvml is not installed", "this Jetson has no NVML")}


def test_every_device_check_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tempfile caches its choice: the engines go here too
    report = run_doctor()
    for check in report.checks:
        print(f"{check.status.value}  {check.name}: {check.detail}")
    for step in DEVICE_STEPS:
        check = report.named(step.name)
        if check.status is Status.SKIP and check.detail.startswith(MAY_SKIP.get(step.name, ())):
            continue
        assert check.status is Status.PASS, f"{check.name}: {check.detail} (fix: {check.fix})"
    assert report.healthy, report.as_dict()
    assert list(tmp_path.iterdir()) == []  # the engines' scratch folder is gone


def test_the_command_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "int8 engine" in result.output and "FAIL" not in result.output
