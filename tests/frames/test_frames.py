"""Frame formats, BT.601/709 conversion in both ranges, raw .yuv files and the `edgeres frames` CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.frames.images import cover_resize
from edgeres.frames.yuv import (
    ColorRange,
    ColorSpace,
    YuvLayout,
    check_frames,
    frame_shape,
    join_planes,
    open_yuv,
    parse_size,
    rgb_to_yuv422,
    split_planes,
    write_yuv,
    yuv422_to_rgb,
)
from tests.conftest import REAL_IMAGE_NAMES, real_image

# Y, Cb, Cr code values computed by hand from Kr/Kb and the range scales, rounded to nearest
# (they are the published 100% colour-bar values: BT.601 limited red = 81, 90, 240; JFIF red = 76, 85, 255).
COLOUR_BARS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
}
EXPECTED_YCBCR = {
    (ColorSpace.BT601, ColorRange.LIMITED): {
        "white": (235, 128, 128), "black": (16, 128, 128), "grey": (126, 128, 128),
        "red": (81, 90, 240), "green": (145, 54, 34), "blue": (41, 240, 110),
    },
    (ColorSpace.BT709, ColorRange.LIMITED): {
        "white": (235, 128, 128), "black": (16, 128, 128), "grey": (126, 128, 128),
        "red": (63, 102, 240), "green": (173, 42, 26), "blue": (32, 240, 118),
    },
    (ColorSpace.BT601, ColorRange.FULL): {
        "white": (255, 128, 128), "black": (0, 128, 128), "grey": (128, 128, 128),
        "red": (76, 85, 255), "green": (150, 44, 21), "blue": (29, 255, 107),
    },
    (ColorSpace.BT709, ColorRange.FULL): {
        "white": (255, 128, 128), "black": (0, 128, 128), "grey": (128, 128, 128),
        "red": (54, 99, 255), "green": (182, 30, 12), "blue": (18, 255, 116),
    },
}  # fmt: skip
CONVERSIONS = list(EXPECTED_YCBCR)


@pytest.mark.parametrize("layout", list(YuvLayout))
@pytest.mark.parametrize(("colorspace", "color_range"), CONVERSIONS)
def test_colour_bars_encode_to_known_codes_and_decode_back(layout, colorspace, color_range):
    names = list(COLOUR_BARS)
    rgb = np.repeat(np.array([[COLOUR_BARS[n] for n in names]], np.uint8), 2, axis=1)  # [1, 12, 3]: pairs
    frame = rgb_to_yuv422(rgb, layout, colorspace, color_range)
    y, u, v = split_planes(frame, layout)
    expected = np.array([EXPECTED_YCBCR[colorspace, color_range][n] for n in names])
    np.testing.assert_array_equal(y[0, 0::2], expected[:, 0])
    np.testing.assert_array_equal(y[0, 1::2], expected[:, 0])
    np.testing.assert_array_equal(u[0], expected[:, 1])
    np.testing.assert_array_equal(v[0], expected[:, 2])
    # Decoding the hand-computed codes gives the colours back within 8-bit quantisation (<= 2 levels).
    decoded = yuv422_to_rgb(join_planes(y, u, v, layout), layout, colorspace, color_range)
    assert np.abs(decoded.astype(int) - rgb).max() <= 2


def test_byte_order_of_each_layout():
    """A 4x1 frame of a red pair then a blue pair (BT.601 limited), byte by byte."""
    rgb = np.array([[[255, 0, 0]] * 2 + [[0, 0, 255]] * 2], np.uint8)
    (yr, ur, vr), (yb, ub, vb) = EXPECTED_YCBCR[ColorSpace.BT601, ColorRange.LIMITED]["red"], (41, 240, 110)
    expected = {
        YuvLayout.YUYV: [[yr, ur, yr, vr, yb, ub, yb, vb]],
        YuvLayout.UYVY: [[ur, yr, vr, yr, ub, yb, vb, yb]],
        YuvLayout.I422: [[yr, yr, yb, yb], [ur, ub, vr, vb]],
        YuvLayout.NV16: [[yr, yr, yb, yb], [ur, vr, ub, vb]],
    }
    for layout, rows in expected.items():
        np.testing.assert_array_equal(rgb_to_yuv422(rgb, layout), np.array(rows, np.uint8), err_msg=layout.value)


def _in_range_planes(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, ...]:
    y = rng.integers(16, 236, (height, width), dtype=np.uint8)
    u, v = (rng.integers(16, 241, (height, width // 2), dtype=np.uint8) for _ in range(2))
    return y, u, v


@pytest.mark.parametrize(
    ("layout", "code"), [(YuvLayout.YUYV, cv2.COLOR_YUV2RGB_YUYV), (YuvLayout.UYVY, cv2.COLOR_YUV2RGB_UYVY)]
)
def test_matches_opencv_for_bt601_limited(layout, code):
    """OpenCV's YUV 4:2:2 conversion is BT.601 limited range in fixed point, repeating chroma per pair.
    It also clamps Y below 16 first, so the conventions match on in-range codes: there, within 1 level."""
    frame = join_planes(*_in_range_planes(np.random.default_rng(3), 48, 96), layout)
    ours = yuv422_to_rgb(frame, layout)
    theirs = cv2.cvtColor(frame.reshape(48, 96, 2), code)
    assert np.abs(ours.astype(int) - theirs).max() <= 1


@pytest.mark.parametrize(("colorspace", "color_range"), CONVERSIONS)
def test_round_trip_bounds(colorspace, color_range):
    """RGB -> 4:2:2 -> RGB. Where both pixels of each pair share a colour nothing is subsampled away and the
    only loss is 8-bit rounding: <= 2 levels in limited range (codes are ~1.16 RGB levels apart and B gets
    1.16 x 0.5 + 2.02 x 0.5 of rounding), <= 1 in full range. Real photographs lose fine chroma, bounded by
    PSNR >= 35 dB (measured 37-50 dB on the bundled samples)."""
    rng = np.random.default_rng(4)
    pairs = np.repeat(rng.integers(0, 256, (32, 24, 3), dtype=np.uint8), 2, axis=1)
    back = yuv422_to_rgb(rgb_to_yuv422(pairs, YuvLayout.NV16, colorspace, color_range), YuvLayout.NV16, colorspace,
                         color_range)  # fmt: skip
    assert np.abs(back.astype(int) - pairs).max() <= (2 if color_range is ColorRange.LIMITED else 1)
    for name in REAL_IMAGE_NAMES:
        image = real_image(name)
        image = image[:, : image.shape[1] // 2 * 2]
        back = yuv422_to_rgb(rgb_to_yuv422(image, YuvLayout.YUYV, colorspace, color_range), YuvLayout.YUYV,
                             colorspace, color_range)  # fmt: skip
        mse = np.mean((back.astype(np.float64) - image) ** 2)
        assert 10 * np.log10(255**2 / mse) >= 35.0, name


def test_batches_convert_like_single_frames():
    rng = np.random.default_rng(5)
    batch = rng.integers(0, 256, (3, *frame_shape(YuvLayout.I422, 10, 6)), dtype=np.uint8)
    whole = yuv422_to_rgb(batch, YuvLayout.I422, ColorSpace.BT709, ColorRange.FULL)
    for index, frame in enumerate(batch):
        np.testing.assert_array_equal(whole[index], yuv422_to_rgb(frame, YuvLayout.I422, ColorSpace.BT709,
                                                                   ColorRange.FULL))  # fmt: skip


def test_bad_frames_are_refused_with_a_clear_message():
    with pytest.raises(UserInputError, match="width 1281 is odd"):
        parse_size("1281x720")
    with pytest.raises(UserInputError, match="not WIDTHxHEIGHT"):
        parse_size("1280*720")
    with pytest.raises(UserInputError, match="must be a uint8 array, got float32"):
        yuv422_to_rgb(np.zeros((4, 16), np.float32), YuvLayout.YUYV)
    with pytest.raises(UserInputError, match="not whole pixel pairs"):
        yuv422_to_rgb(np.zeros((4, 18), np.uint8), YuvLayout.YUYV)
    with pytest.raises(UserInputError, match="is 8x4, expected 16x4"):
        check_frames(np.zeros((4, 16), np.uint8), YuvLayout.UYVY, 16, 4)
    with pytest.raises(UserInputError, match="odd"):
        rgb_to_yuv422(np.zeros((2, 3, 3), np.uint8), YuvLayout.YUYV)


def test_raw_file_is_validated_and_memory_mapped(tmp_path: Path):
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 256, (3, *frame_shape(YuvLayout.NV16, 8, 4)), dtype=np.uint8)
    clip = tmp_path / "clip.yuv"
    assert write_yuv(clip, frames, YuvLayout.NV16) == 3
    opened = open_yuv(clip, YuvLayout.NV16, 8, 4)
    assert (opened.count, opened.frame_bytes) == (3, 64)
    assert isinstance(opened.frames(), np.memmap)
    np.testing.assert_array_equal(opened.frame(1), frames[1])
    np.testing.assert_array_equal(opened.frame(-1), frames[2])
    with pytest.raises(UserInputError, match="index 3 out of range"):
        opened.frame(3)
    with pytest.raises(UserInputError, match=r"192 bytes is not a whole number of nv16 10x4 frames \(80 bytes each\)"):
        open_yuv(clip, YuvLayout.NV16, 10, 4)  # wrong size
    short = tmp_path / "short.yuv"
    short.write_bytes(clip.read_bytes()[:-1])
    with pytest.raises(UserInputError, match="file size 191 bytes"):
        open_yuv(short, YuvLayout.NV16, 8, 4)
    empty = tmp_path / "empty.yuv"
    empty.write_bytes(b"")
    with pytest.raises(UserInputError, match="file size 0 bytes"):
        open_yuv(empty, YuvLayout.NV16, 8, 4)
    with pytest.raises(UserInputError, match="not found"):
        open_yuv(tmp_path / "missing.yuv", YuvLayout.NV16, 8, 4)


def test_cli_encode_info_decode(tmp_path: Path):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), cv2.cvtColor(real_image("coffee"), cv2.COLOR_RGB2BGR))
    clip, preview = tmp_path / "clip.yuv", tmp_path / "frame.png"
    runner = CliRunner()
    result = runner.invoke(app, ["frames", "encode", str(image), str(image), "-o", str(clip), "--format",
                                 "uyvy:320x200"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert clip.stat().st_size == 2 * 320 * 200 * 2
    result = runner.invoke(app, ["frames", "info", str(clip), "--format", "uyvy:320x200"])
    assert result.exit_code == 0 and "2 uyvy frame(s)" in result.output and "192,000" in result.output
    result = runner.invoke(app, ["frames", "decode", str(clip), "--format", "uyvy:320x200", "-i", "1",
                                 "-o", str(preview)])  # fmt: skip
    assert result.exit_code == 0, result.output
    decoded = cv2.cvtColor(cv2.imread(str(preview)), cv2.COLOR_BGR2RGB)
    covered = cover_resize(real_image("coffee"), 320, 200)  # as build encodes photographs: no distortion
    stretched = cv2.resize(real_image("coffee"), (320, 200), interpolation=cv2.INTER_AREA)
    assert np.mean(np.abs(decoded.astype(int) - covered)) < 3.0 < np.mean(np.abs(decoded.astype(int) - stretched))
    result = runner.invoke(app, ["frames", "encode", str(image), "-o", str(tmp_path / "s.yuv"), "--format",
                                 "uyvy:320x200", "--fit", "stretch"])  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = open_yuv(tmp_path / "s.yuv", YuvLayout.UYVY, 320, 200).frame(0)
    assert np.mean(np.abs(yuv422_to_rgb(frame, YuvLayout.UYVY).astype(int) - stretched)) < 3.0
    result = runner.invoke(app, ["frames", "info", str(clip), "--format", "uyvy:330x200"])
    assert result.exit_code == 2 and "not a whole number" in result.output
    result = runner.invoke(app, ["frames", "info", str(clip), "--format", "yuv420:320x200"])
    assert result.exit_code == 2 and "unknown frame format" in result.output
