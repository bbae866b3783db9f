"""The command line: exit codes, one-line errors, and the foundation commands end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.model.resnet import Arch, build_model

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_summary_totals_match_resnet50():
    result = invoke("summary")
    assert result.exit_code == 0, result.output
    assert "25,557,032 (25.56 M)" in result.output
    assert "4.09 G" in result.output  # about 4.1 G multiply-accumulates at 224x224
    assert "2048 x 7 x 7" in result.output


def test_export_then_info(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    out = tmp_path / "r18.onnx"
    result = invoke("export", "--arch", "resnet18", "--num-classes", "5", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "parity vs PyTorch" in result.output and "meaningless" in result.output
    described = invoke("info", str(out))
    assert described.exit_code == 0, described.output
    info = json.loads(described.output)
    assert info["model"]["opset"]["ai.onnx"] == 17
    assert info["model"]["outputs"][0]["shape"] == ["batch", 5]
    assert info["sidecar"]["options"]["arch"] == "resnet18"


def test_export_with_checkpoint(tmp_path):
    ckpt = tmp_path / "product.pth"
    torch.save(build_model(Arch.RESNET18, 51).state_dict(), ckpt)
    out = tmp_path / "product.onnx"
    result = invoke("export", "--arch", "resnet18", "--weights", str(ckpt), "--num-classes", "51", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "meaningless" not in result.output
    assert json.loads((tmp_path / "product.onnx.json").read_text())["inputs"]["weights"] == str(ckpt)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "--weights", "missing.pth"), "missing.pth: checkpoint file not found"),
        (("export", "--arch", "resnet51"), "unknown --arch 'resnet51'"),
        (("export", "--opset", "9"), "opset 9 is not supported"),
        (("info", "nothing-here.onnx"), "nothing-here.onnx: file not found"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_class_mismatch_error_from_cli(tmp_path):
    ckpt = tmp_path / "product.pth"
    torch.save(build_model(Arch.RESNET18, 51).state_dict(), ckpt)
    result = invoke("export", "--arch", "resnet18", "--weights", str(ckpt), "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 2
    assert "--num-classes 51" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_info_on_non_onnx_garbage(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    result = invoke("info", str(bad))
    assert result.exit_code == 2 and "not a valid ONNX model" in result.output


def test_console_script_help_runs_without_heavy_imports():
    """`edgeres --help` must not import torch or onnxruntime (fast, works on a bare device)."""
    code = "import sys; from edgeres.cli.app import app; print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_bad_opset_is_rejected_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    result = invoke("export", "--opset", "5", "-o", str(tmp_path / "x.onnx"))
    assert result.exit_code == 2
    assert "opset 5 is not supported" in result.output
    assert "meaningless" not in result.output  # no model was built for a command that cannot run
