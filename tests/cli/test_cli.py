"""The command line: exit codes, one-line errors, and the foundation commands end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from edgeres.cli.app import COMMANDS, GROUPS, app
from edgeres.cli.options import ARCH_DEFAULT, parse_arch
from edgeres.flow.options import BuildOptions
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model

ROOT = Path(__file__).resolve().parents[2]
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
    described = invoke("info", str(out), "--json")
    assert described.exit_code == 0, described.output
    info = json.loads(described.output)
    assert info["model"]["opset"]["ai.onnx"] == 17
    assert info["model"]["outputs"][0]["shape"] == ["batch", 5]
    assert info["sidecar"]["options"]["arch"] == "resnet18"
    summary = invoke("info", str(out))  # for a person: a few lines, as `polygraphy inspect model` prints
    assert summary.exit_code == 0, summary.output
    assert "opset ai.onnx 17" in summary.output and "output logits float32 [batch, 5]" in summary.output
    assert "made by edgeres export" in summary.output and "its sidecar describes this file" in summary.output
    assert "precision fp32" in summary.output and "Q/DQ" not in summary.output


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
    assert "with 51 classes" in result.output
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


def command_name(command) -> str:
    return command.__name__.replace("_", "-")


def help_of(*command: str) -> str:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_entry_point_prints_the_same_help():
    """`python -m edgeres`, the checkout's cli.py and the installed `edgeres` script are one application."""
    (script,) = entry_points(group="console_scripts", name="edgeres")
    assert script.value == "edgeres.cli.app:main"
    installed = Path(sys.executable).with_name("edgeres")
    if installed.is_file():
        console_script = help_of(str(installed))
    else:  # not installed as a script here: run the entry point itself
        console_script = help_of(sys.executable, "-c", f"from {script.module} import {script.attr}; {script.attr}()")
    module = help_of(sys.executable, "-m", "edgeres")
    assert module == help_of(sys.executable, "cli.py") == console_script
    assert "Usage: edgeres [OPTIONS] COMMAND" in module
    for name in [command_name(c) for c in COMMANDS] + [name for name, _, _ in GROUPS]:
        assert f" {name} " in module, name


@pytest.mark.parametrize(("group", "commands"), [(name, commands) for name, _, commands in GROUPS])
def test_each_group_help_lists_its_commands(group, commands):
    result = invoke(group, "--help")
    assert result.exit_code == 0, result.output
    assert f"{group} [OPTIONS] COMMAND" in result.output
    for command in commands:
        assert f" {command_name(command)} " in result.output, command_name(command)


def test_arch_default_is_the_library_default():
    assert parse_arch(ARCH_DEFAULT) is BuildOptions().arch is Arch.RESNET50


def test_user_text_is_printed_literally_not_as_markup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("info", "[bold]x[/bold].onnx")
    assert result.exit_code == 2
    assert result.output.strip() == "error: [bold]x[/bold].onnx: file not found"


def test_build_error_before_any_stage_is_exactly_one_line(tmp_path):
    result = invoke("build", "--onnx", str(tmp_path / "absent.onnx"), "--calib-format", "yuyv", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: --calib-format: frame format 'yuyv' is not FORMAT:WIDTHxHEIGHT (e.g. yuyv:1920x1080)"
    ]


def test_version_is_printed_and_nothing_runs() -> None:
    from edgeres import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"edgeres {__version__}"


def test_shell_completion_is_offered() -> None:
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="edgeres")
    assert result.exit_code == 0 and "_edgeres_completion" in result.output, result.output


def test_no_help_shows_a_type_for_on_off_flags() -> None:
    """`--fp16`, `--json`, `--help`: a flag takes no value, so its help shows none (typer would print <bool>)."""
    commands = [[command.__name__.replace("_", "-")] for command in COMMANDS]
    commands += [[group, command.__name__] for group, _, members in GROUPS for command in members]
    for args in [[], *commands]:
        result = CliRunner().invoke(app, [*args, "--help"], terminal_width=160)
        assert result.exit_code == 0, (args, result.output)
        assert "<bool>" not in result.output and "--help" in result.output, (args, result.output)
