"""Option groups: `build --help` shows them, `edgeres engine` stands alone, and a BuildOptions rendered as
arguments parses back to itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from edgeres.artifacts.precision import Precision
from edgeres.cli.app import app
from edgeres.cli.args.engine import ENGINE, EngineArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.build import build_arguments
from edgeres.engine.options import BatchProfile, EngineOptions
from edgeres.engine.target import HardwareCompatibility
from edgeres.flow.int8_analysis import Int8Analysis
from edgeres.flow.options import BuildOptions
from edgeres.frames.contract import FrameFormat, InputContract, ResizeMode
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout
from edgeres.model.arch import Arch
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.tensorrt_qdq import HighPrecision

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
PANELS = {
    "Camera input": ("--input", "--colorspace", "--range", "--resize"),
    "Calibration": ("--calib ", "--calib-format", "--calib-algo", "--calib-size", "--calib-batch", "--calib-seed",
                    "--percentile", "--keep-float", "--bias-correction", "--high-precision", "--recalibrate",
                    "--trt-table-version"),
    "Fidelity": ("--eval", "--min-sqnr", "--min-agreement", "--min-accuracy", "--auto-fallback", "--sensitivity"),
    "TensorRT engine": ("--batch", "--workspace", "--opt-level", "--timing-cache", "--dla", "--version-compatible",
                        "--hardware-compat"),
}  # fmt: skip


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "160", "NO_COLOR": "1"})


def panel(help_text: str, title: str) -> str:
    start = help_text.index(f"─ {title} ─")
    return help_text[start : help_text.index("╰", start)]


def test_build_help_shows_each_group_in_its_panel():
    result = invoke("build", "--help")
    assert result.exit_code == 0, result.output
    for title, flags in PANELS.items():
        text = panel(result.output, title)
        assert all(flag in text for flag in flags), (title, text)
    assert "--engine-only" not in result.output


def test_sensitivity_shares_the_input_and_calibration_groups():
    result = invoke("sensitivity", "--help")
    assert result.exit_code == 0, result.output
    for title in ("Camera input", "Calibration"):
        assert all(flag in panel(result.output, title) for flag in PANELS[title])


def test_engine_help_shows_the_engine_group():
    result = invoke("engine", "--help")
    assert result.exit_code == 0, result.output
    assert "model" in result.output and all(flag in panel(result.output, "TensorRT engine") for flag in
                                            PANELS["TensorRT engine"])  # fmt: skip


def test_engine_without_a_model_is_one_line_exit_2(tmp_path: Path):
    result = invoke("engine", "-o", tmp_path)
    assert result.exit_code == 2 and result.output.strip().splitlines() == ["error: Missing argument 'model'."]


@pytest.mark.skipif(HAS_TENSORRT, reason="checks the refusal on a machine without TensorRT")
def test_engine_without_tensorrt_is_one_line_exit_2(tmp_path: Path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read before TensorRT is found")
    result = invoke("engine", model, "-o", tmp_path / "out", "--batch", "1:4:8")
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: TensorRT is not installed")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def every_option_changed(tmp_path: Path) -> BuildOptions:
    (tmp_path / "calib dir").mkdir()
    (tmp_path / "val.csv").write_text("path,label\n")
    return BuildOptions(
        precision=Precision.INT8, arch=Arch.RESNET18, weights=tmp_path / "w.pth", num_classes=51,
        calib=tmp_path / "calib dir", eval_csv=tmp_path / "val.csv", calib_algo=CalibAlgo.PERCENTILE,
        calib_size=100, batch_size=4, seed=7, percentile=99.9, keep_float=("conv1", "layer1.0"),
        sensitivity=True, auto_fallback=True, max_fallback=3, bias_correction=False,
        high_precision=HighPrecision.FP32, gate=FidelityGate(25.5, 0.99, 0.5),
        raw=FrameFormat(YuvLayout.UYVY, 640, 480),
        contract=InputContract(YuvLayout.YUYV, 1280, 720, ColorSpace.BT709, ColorRange.FULL, ResizeMode.LETTERBOX),
        recalibrate=True, trt_table_version="10.3.0",
        engine=EngineOptions(BatchProfile(1, 8, 32), 2048, 4, tmp_path / "t.cache", None, True,
                             HardwareCompatibility.AMPERE_PLUS),
        profile_iterations=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: BuildOptions(),
        lambda tmp: BuildOptions(precision=Precision.FP16, engine=EngineOptions(dla_core=0)),
        every_option_changed,
    ],
    ids=["defaults", "fp16-dla", "every-option"],
)
def test_rendered_build_arguments_parse_back_to_the_same_options(make, tmp_path: Path, monkeypatch):
    options, parsed = make(tmp_path), []

    def fake_build(got: BuildOptions, outdir: Path, progress: object, command: list[str] | None) -> SimpleNamespace:
        parsed.append((got, outdir))
        assert command == ["edgeres", "build", *build_arguments(got, outdir)]  # what the report shows
        return SimpleNamespace(artifacts={}, notes=(), fidelity={}, profile=(), engine_note="", analysis=Int8Analysis(),
                               report=None)  # fmt: skip

    monkeypatch.setattr("edgeres.flow.orchestrator.build", fake_build)
    result = invoke("build", *build_arguments(options, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert parsed == [(options, tmp_path / "out")]


def test_a_value_no_option_gives_is_refused_when_rendered():
    with pytest.raises(ValueError, match="no option"):
        build_arguments(BuildOptions(build_engine=False), Path("out"))


def test_rendered_engine_options_parse_back_through_edgeres_engine(tmp_path: Path, monkeypatch):
    options, parsed = every_option_changed(tmp_path).engine, []

    def fake_engine(model: Path, output: Path, got: EngineOptions) -> Path:
        parsed.append(got)
        return output

    monkeypatch.setattr("edgeres.engine.from_onnx.engine_from_onnx", fake_engine)
    monkeypatch.setattr("edgeres.runtime.verification.verify_new_engine", lambda engine, heldout: None)
    result = invoke("engine", tmp_path / "m.onnx", "-o", tmp_path / "e.engine", *ENGINE.render(options))
    assert result.exit_code == 0, result.output
    assert parsed == [options]


def test_a_group_flag_named_like_a_command_parameter_is_refused():
    def command(batch: Annotated[str, typer.Option("--images")] = "", *, engine: EngineArgs) -> None: ...

    with pytest.raises(TypeError, match="declared twice"):
        takes_groups(command)
