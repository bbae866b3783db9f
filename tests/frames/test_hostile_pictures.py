"""Pictures whose bytes make OpenCV raise (OpenCV 5 raises where older versions returned None) are refused
or skipped by name, never reported as a bug; an image suffix OpenCV cannot write is refused before work."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.frames.images import default_calibration_dir, read_rgb
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto


def png_claiming(width: int, height: int) -> bytes:
    """A small, well-formed PNG whose header claims `width` x `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (2**31 - 1, 1), (1, 2**31 - 1)])
def test_a_picture_claiming_too_many_pixels_is_refused_by_name(tmp_path: Path, width: int, height: int) -> None:
    picture = tmp_path / "huge.png"
    picture.write_bytes(png_claiming(width, height))
    with pytest.raises(UserInputError, match=r"huge\.png: not a readable image"):
        read_rgb(picture)


def test_a_calibration_folder_with_such_a_picture_skips_and_counts_it(tmp_path: Path) -> None:
    calibration = tmp_path / "calib"
    shutil.copytree(default_calibration_dir(), calibration)
    (calibration / "huge.png").write_bytes(png_claiming(100_000, 100_000))
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "tiny.onnx", "fp32")
    args = ["build", "--onnx", str(source), "--calib", str(calibration), "--calib-size", "8", "--no-profile",
            "--min-sqnr", "0", "-o", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "out" / "build_summary.json").read_text()
    assert "huge.png: not a readable image" in summary


@pytest.mark.parametrize("suffix", [".xyz", ".onnx", ""])
def test_frames_decode_to_a_suffix_opencv_cannot_write_is_refused_before_reading(tmp_path: Path, suffix: str) -> None:
    clip = tmp_path / "clip.yuv"
    write_yuv(clip, rgb_to_yuv422(np.zeros((1, 48, 64, 3), np.uint8), YuvLayout.YUYV), YuvLayout.YUYV)
    output = tmp_path / f"frame{suffix}"
    result = CliRunner().invoke(app, ["frames", "decode", str(clip), "--format", "yuyv:64x48", "-o", str(output)])
    if suffix == "":  # no suffix: written as PNG
        assert result.exit_code == 0 and output.is_file(), result.output
        return
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and f"suffix '{suffix}'" in errors[0], result.output
    assert not output.exists()
