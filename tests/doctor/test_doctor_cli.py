"""`edgeres doctor` end to end on this machine: one line per check, device lines SKIP with reasons where
TensorRT is absent, --json for a bug report, and exit code 1 with the fix when a check fails."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.doctor.checklist import CPU_STEPS, DEVICE_STEPS, STEPS

runner = CliRunner()
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def line_of(output: str, name: str) -> str:
    """The report line of check `name` (status, name, detail)."""
    (line,) = [line for line in output.splitlines() if line[4:].strip().startswith(f"{name}  ")]
    return line


def test_every_check_has_a_line_and_a_healthy_machine_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    for step in CPU_STEPS:
        assert line_of(result.output, step.name).startswith("PASS  "), result.output
    assert "fix:" not in result.output and "Traceback" not in result.output
    if HAS_TENSORRT:
        return  # tests/gpu/test_doctor_gpu.py: the device lines where TensorRT and a GPU are
    tensorrt = line_of(result.output, "tensorrt")
    assert tensorrt.startswith("SKIP  ") and "TensorRT is not installed" in tensorrt
    for step in DEVICE_STEPS[1:]:
        line = line_of(result.output, step.name)
        assert line.startswith("SKIP  ") and line.endswith(", which was skipped"), line
    assert result.output.splitlines()[-1] == f"{len(CPU_STEPS)} passed, 0 failed, {len(DEVICE_STEPS)} skipped"


def test_help_names_the_json_option() -> None:
    result = runner.invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0 and "--json" in result.output


def test_json_has_every_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert [c["check"] for c in document["checks"]] == [step.name for step in STEPS]
    assert all(set(c) == {"check", "status", "detail", "fix"} for c in document["checks"])
    summary = document["summary"]
    assert summary["healthy"] is True and summary["failed"] == 0
    assert summary["passed"] + summary["skipped"] == len(STEPS)


def test_an_unusable_tmpdir_fails_with_the_fix_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TMPDIR naming a regular file: unusable even for root, which a read-only folder is not."""
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setenv("TMPDIR", str(not_a_folder))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    temp = line_of(result.output, "temp folder")
    assert temp.startswith("FAIL  ") and temp.endswith(f"TMPDIR={not_a_folder} is not a folder")
    assert lines[lines.index(temp) + 1].startswith("      fix: set TMPDIR to a writable folder")
    assert "1 failed" in lines[-1]
    as_json = json.loads(runner.invoke(app, ["doctor", "--json"]).output)
    (check,) = [c for c in as_json["checks"] if c["check"] == "temp folder"]
    assert check["status"] == "FAIL" and check["fix"].startswith("set TMPDIR")
    assert as_json["summary"]["healthy"] is False


def test_doctor_never_imports_torch(tmp_path: Path) -> None:
    """Devices may have no PyTorch: the doctor's whole run does without it."""
    code = (
        "import sys; from typer.testing import CliRunner; from edgeres.cli.app import app; "
        "result = CliRunner().invoke(app, ['doctor', '--json']); print(result.exit_code, 'torch' in sys.modules)"
    )
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["0", "False"], done.stderr


def test_a_broken_onnxruntime_is_a_fail_line_not_a_crash(tmp_path: Path) -> None:
    """An install whose onnxruntime does not import: the doctor starts, names it with the fix, exits 1."""
    code = (
        "import sys; sys.modules['onnxruntime'] = None; from edgeres.cli.app import main; "
        "sys.argv = ['edgeres', 'doctor']; main()"
    )
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    broken = line_of(done.stdout, "onnxruntime")
    assert broken.startswith("FAIL  ") and "onnxruntime does not import" in broken
    assert lines[lines.index(broken) + 1].startswith("      fix: pip install --force-reinstall 'onnxruntime")
    assert line_of(done.stdout, "onnxruntime session").endswith("needs onnxruntime, which failed")
    assert "Traceback" not in done.stderr
