"""`edgeres camera` and examples/camera_app.py end to end on CPU: a YUYV clip of real photographs through a
fused YUV model.

The model is EfficientNet-Lite0 with real ImageNet weights (small: 4.7 M parameters) behind the edgeres
YUV front-end, so the printed class names can be checked, not just the output format. Frames from pipes,
FIFOs and the capture tools are tests/camera/test_streams.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from edgeres.cli.app import app
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from tests.fixtures.camera_model import PHOTOGRAPHS, fused_lite0, photographs_rgb
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "camera_app.py"
FRAME_LINE = re.compile(r"^frame +(\d+) +([\d.]+) ms  (.+)$", flags=re.MULTILINE)


@pytest.fixture(scope="module")
def fused_model(tmp_path_factory) -> Path:
    return fused_lite0(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory, real_images) -> Path:
    """One YUYV frame per photograph, 320x240, BT.601 limited range as USB cameras send."""
    path = tmp_path_factory.mktemp("clip") / "photos_320x240.yuyv"
    write_yuv(path, rgb_to_yuv422(photographs_rgb(real_images), YuvLayout.YUYV), YuvLayout.YUYV)
    return path


def camera(*args: object) -> Result:
    return CliRunner().invoke(app, ["camera", *map(str, args)])


def one_error_line(output: str) -> str:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_camera_names_the_photographs_in_a_yuyv_clip(fused_model: Path, clip: Path):
    result = camera(fused_model, "--yuv", clip)
    assert result.exit_code == 0, result.output
    out = result.stdout
    rows = FRAME_LINE.findall(out)
    assert [int(r[0]) for r in rows] == list(range(len(PHOTOGRAPHS)))
    for (name, accepted), (_, latency, top5) in zip(PHOTOGRAPHS.items(), rows, strict=True):
        classes = [item.rsplit(" ", 1)[0] for item in top5.split(", ")]
        assert len(classes) == 5
        assert classes[0] in accepted, f"{name}: {top5}"
        assert float(latency) > 0
    assert f"{len(PHOTOGRAPHS)} frames" in out
    assert "frames/s" in out and "p95" in out
    assert "on OnnxRuntimeRunner" in out  # no TensorRT here: the ONNX Runtime fallback ran


def test_camera_picks_the_onnx_of_a_build_directory_and_stops_at_frames(fused_model: Path, clip: Path):
    result = camera(fused_model.parent, "--yuv", clip, "--frames", "1", "--top", "3")
    assert result.exit_code == 0, result.output
    rows = FRAME_LINE.findall(result.stdout)
    assert len(rows) == 1 and len(rows[0][2].split(", ")) == 3
    assert "1 frames" in result.stdout


def test_camera_refuses_an_rgb_model_with_one_line(tmp_path: Path, clip: Path):
    rgb_model = save_with_sidecar(tiny_classifier_proto(1000), tmp_path / "rgb_fp32.onnx", "fp32")
    result = camera(rgb_model, "--yuv", clip)
    assert result.exit_code == 2
    assert "--input yuyv" in one_error_line(result.output)


def test_camera_reports_a_clip_of_the_wrong_size(fused_model: Path, tmp_path: Path):
    wrong = tmp_path / "short.yuyv"
    wrong.write_bytes(b"\x80" * (320 * 240 * 2 + 7))
    result = camera(fused_model, "--yuv", wrong)
    assert result.exit_code == 2
    assert str(wrong) in one_error_line(result.output)


@pytest.mark.parametrize(
    ("content", "cause"),
    [(b"", "not an ONNX model (empty file)"), (bytes(range(256)) * 8, "not an ONNX model")],
    ids=["empty", "random bytes"],
)
def test_camera_says_a_file_is_not_an_onnx_model(tmp_path: Path, clip: Path, content: bytes, cause: str):
    model = tmp_path / "model.onnx"
    model.write_bytes(content)
    result = camera(model, "--yuv", clip)
    assert result.exit_code == 2
    assert cause in one_error_line(result.output)


@pytest.mark.parametrize("args", [["--frames", "-1"], ["--frames", "0"], ["--top", "0"], ["--frames", "x"]])
def test_camera_refuses_a_count_below_one(fused_model: Path, clip: Path, args: list[str]):
    result = camera(fused_model, "--yuv", clip, *args)
    assert result.exit_code == 2
    assert args[0] in one_error_line(result.output)


@pytest.mark.parametrize("sources", [[], ["--yuv", "{clip}", "--camera", "/dev/video0"]], ids=["neither", "both"])
def test_camera_takes_frames_from_exactly_one_source(fused_model: Path, clip: Path, sources: list[str]):
    result = camera(fused_model, *(s.format(clip=clip) for s in sources))
    assert result.exit_code == 2
    assert "--yuv FILE|- or --camera DEVICE" in one_error_line(result.output)


def test_camera_a_clip_that_is_a_folder_is_one_line(fused_model: Path, tmp_path: Path):
    result = camera(fused_model, "--yuv", tmp_path)
    assert result.exit_code == 2
    assert str(tmp_path) in one_error_line(result.output)


def test_camera_a_missing_camera_is_one_line_and_no_opencv_warning(fused_model: Path, capfd):
    """OpenCV writes its own warnings straight to the stderr file descriptor: none may precede ours."""
    result = camera(fused_model, "--camera", "/dev/video97")
    assert result.exit_code == 2
    assert "/dev/video97: no such camera device" in one_error_line(result.output)
    assert "WARN" not in capfd.readouterr().err


def test_camera_refuses_a_clip_said_to_be_another_layout_by_name(fused_model: Path, clip: Path):
    result = camera(fused_model, "--yuv", clip, "--format", "UYVY:320x240")
    assert result.exit_code == 2
    assert one_error_line(result.output) == (
        f"error: {clip}: frames of layout uyvy, but {fused_model} takes layout yuyv (its recorded input contract)"
    )
    assert camera(fused_model, "--yuv", clip, "--format", "yuy2:320x240", "--frames", "1").exit_code == 0


@pytest.mark.parametrize("allowed", [False, True])
def test_camera_refuses_an_unverified_engine_unless_told(fused_model: Path, clip: Path, tmp_path: Path, allowed: bool):
    from edgeres.artifacts.sidecar import read_sidecar
    from tests.fixtures.engines import engine_with_sidecar

    source = read_sidecar(fused_model)
    assert source is not None
    engine = engine_with_sidecar(tmp_path / "lite0.engine", {}, {"input": source.options["input"]}, verified=None)
    flag = ["--allow-unverified"] if allowed else []
    result = camera(engine, "--yuv", clip, *flag)
    assert result.exit_code == 2
    line = one_error_line(result.output)
    # told, the command goes on to open the engine (and stops at TensorRT's absence, or at these bytes)
    assert ("never verified" in line) is not allowed


def test_the_embedding_example_names_the_photographs(fused_model: Path, clip: Path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(fused_model), str(clip)], capture_output=True, text=True, check=True
    )
    rows = re.findall(r"^frame (\d+): (.+) \d+%$", result.stdout, flags=re.MULTILINE)
    assert [int(index) for index, _ in rows] == list(range(len(PHOTOGRAPHS)))
    for (name, accepted), (_, top1) in zip(PHOTOGRAPHS.items(), rows, strict=True):
        assert top1 in accepted, f"{name}: {top1}"


def test_the_embedding_example_names_classes_as_the_model_records_them(fused_model: Path, clip: Path, tmp_path: Path):
    """A fine-tuned model carries its class names (finetune's classes.txt): the example prints those, not ImageNet's."""
    import json
    import shutil

    model = tmp_path / fused_model.name
    shutil.copy(fused_model, model)
    sidecar = json.loads(Path(f"{fused_model}.json").read_text())
    sidecar["options"]["class_names"] = [f"product {k}" for k in range(sidecar["options"]["num_classes"])]
    Path(f"{model}.json").write_text(json.dumps(sidecar))
    result = subprocess.run([sys.executable, str(EXAMPLE), str(model), str(clip)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^frame (\d+): (.+) \d+%$", result.stdout, flags=re.MULTILINE)
    assert len(rows) == len(PHOTOGRAPHS) and all(re.fullmatch(r"product \d+", top1) for _, top1 in rows), rows
