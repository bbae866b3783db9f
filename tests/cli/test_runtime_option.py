"""The --runtime option of profile, camera and verify: offered in their help, which needs neither torch nor OpenVINO."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app


@pytest.mark.parametrize("command", ["profile", "camera", "verify"])
def test_the_command_offers_every_runtime(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--runtime" in result.output
    assert "auto|onnxruntime|openvino|tensorrt" in result.output


def test_help_imports_neither_torch_nor_openvino() -> None:
    """The commands that take --runtime import OpenVINO only when a model runs on it."""
    code = (
        "import sys; from edgeres.cli.app import app\n"
        "for command in ('profile', 'camera', 'verify'):\n"
        "    try:\n"
        "        app([command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('torch' in sys.modules, 'openvino' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.split() == ["False", "False"]
