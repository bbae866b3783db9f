"""examples/camera_app.py end to end on CPU: a YUYV clip of real photographs through a fused YUV model.

The model is EfficientNet-Lite0 with real ImageNet weights (small: 4.7 M parameters) behind the
edgeres YUV front-end, so the printed class names can be checked, not just the output format.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from edgeres.export.onnx_export import torch_to_onnx
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.frontend.graph import attach_frontend
from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "camera_app.py"
WIDTH, HEIGHT = 320, 240
# ImageNet-1k names accepted as top-1 for each photograph (the fixture's own test uses the same sets).
CLIP = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso"},
    "rocket": {"missile", "projectile"},
}


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("camera_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["camera_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fused_model(tmp_path_factory) -> Path:
    """EfficientNet-Lite0 -> ONNX -> YUYV 320x240 front-end attached, saved with its input contract."""
    contract = InputContract(YuvLayout.YUYV, WIDTH, HEIGHT)
    fused = attach_frontend(torch_to_onnx(load_efficientnet_lite0()), contract)
    folder = tmp_path_factory.mktemp("model")
    return save_with_sidecar(fused, folder / "lite0_yuyv_fp32.onnx", "fp32", input_contract=contract.to_dict())


@pytest.fixture(scope="module")
def clip(tmp_path_factory, real_images) -> Path:
    """One YUYV frame per photograph, 320x240, BT.601 limited range as USB cameras send."""
    rgb = np.stack([cv2.resize(real_images[name], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA) for name in CLIP])
    path = tmp_path_factory.mktemp("clip") / "photos_320x240.yuyv"
    write_yuv(path, rgb_to_yuv422(rgb, YuvLayout.YUYV), YuvLayout.YUYV)
    return path


def test_camera_app_names_the_photographs_in_a_yuyv_clip(fused_model: Path, clip: Path, capsys):
    assert load_example().main([str(fused_model), "--yuv", str(clip)]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^frame +(\d+) +([\d.]+) ms  (.+)$", out, flags=re.MULTILINE)
    assert [int(r[0]) for r in rows] == list(range(len(CLIP)))
    for (name, accepted), (_, latency, top5) in zip(CLIP.items(), rows, strict=True):
        classes = [item.rsplit(" ", 1)[0] for item in top5.split(", ")]
        assert len(classes) == 5
        assert classes[0] in accepted, f"{name}: {top5}"
        assert float(latency) > 0
    assert f"{len(CLIP)} frames" in out
    assert "frames/s" in out and "p95" in out
    assert "on OnnxRuntimeRunner" in out  # no TensorRT here: the ONNX Runtime fallback ran


def test_camera_app_picks_the_onnx_of_a_build_directory_and_stops_at_frames(fused_model: Path, clip: Path, capsys):
    assert load_example().main([str(fused_model.parent), "--yuv", str(clip), "--frames", "1", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^frame ", out, flags=re.MULTILINE)) == 1
    assert "1 frames" in out


def test_camera_app_refuses_an_rgb_model_with_one_line(tmp_path: Path, clip: Path, capsys):
    rgb_model = save_with_sidecar(tiny_classifier_proto(1000), tmp_path / "rgb_fp32.onnx", "fp32")
    assert load_example().main([str(rgb_model), "--yuv", str(clip)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--input yuyv" in err and err.count("\n") == 1


def test_camera_app_reports_a_clip_of_the_wrong_size(fused_model: Path, tmp_path: Path, capsys):
    wrong = tmp_path / "short.yuyv"
    wrong.write_bytes(b"\x80" * (WIDTH * HEIGHT * 2 + 7))
    assert load_example().main([str(fused_model), "--yuv", str(wrong)]) == 2
    assert str(wrong) in capsys.readouterr().err


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "cause"),
    [(b"", "not an ONNX model (empty file)"), (bytes(range(256)) * 8, "not an ONNX model")],
    ids=["empty", "random bytes"],
)
def test_camera_app_says_a_file_is_not_an_onnx_model(tmp_path: Path, clip: Path, capsys, content: bytes, cause: str):
    model = tmp_path / "model.onnx"
    model.write_bytes(content)
    assert load_example().main([str(model), "--yuv", str(clip)]) == 2
    assert cause in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("args", [["--frames", "-1"], ["--frames", "0"], ["--top", "0"], ["--frames", "x"]])
def test_camera_app_refuses_a_count_below_one(tmp_path: Path, clip: Path, capsys, args: list[str]):
    assert load_example().main([str(tmp_path), "--yuv", str(clip), *args]) == 2
    assert args[0] in _one_error_line(capsys.readouterr().err)


def test_camera_app_a_clip_that_is_a_folder_is_one_line(fused_model: Path, tmp_path: Path, capsys):
    assert load_example().main([str(fused_model), "--yuv", str(tmp_path)]) == 2
    assert str(tmp_path) in _one_error_line(capsys.readouterr().err)


def test_camera_app_a_missing_camera_is_one_line_and_no_opencv_warning(fused_model: Path, capfd):
    """OpenCV writes its own warnings straight to the stderr file descriptor: none may precede ours."""
    assert load_example().main([str(fused_model), "--camera", "/dev/video97"]) == 2
    err = capfd.readouterr().err
    assert "/dev/video97: no such camera device" in _one_error_line(err) and "WARN" not in err


@pytest.mark.parametrize("allowed", [False, True])
def test_camera_app_refuses_an_unverified_engine_unless_told(
    fused_model: Path, clip: Path, tmp_path: Path, capsys, allowed: bool
):
    from edgeres.artifacts.sidecar import read_sidecar
    from tests.fixtures.engines import engine_with_sidecar

    source = read_sidecar(fused_model)
    assert source is not None
    engine = engine_with_sidecar(tmp_path / "lite0.engine", {}, {"input": source.options["input"]}, verified=None)
    flag = ["--allow-unverified"] if allowed else []
    assert load_example().main([str(engine), "--yuv", str(clip), *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    # told, the app goes on to open the engine (and stops at TensorRT's absence, or at these bytes)
    assert ("never verified" in err[0]) is not allowed
