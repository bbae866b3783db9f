"""Raw frames from pipes and FIFOs, the capture tools' format names, and `edgeres frames` reading from `-`.

The frames come from GStreamer and ffmpeg themselves (tests/fixtures/camera_model.py): their byte layout is
what is checked, not a layout written here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.stream import PartialFrameWarning, YuvStream, open_frames
from edgeres.frames.yuv import LAYOUT_ALIASES, YuvFile, YuvLayout, frame_bytes, parse_layout, yuv422_to_rgb
from tests.fixtures.camera_model import (
    EDGERES,
    FFMPEG,
    GST,
    HEIGHT,
    WIDTH,
    ffmpeg_from_rgb,
    ffmpeg_test_pattern,
    gst_from_rgb,
    gst_test_pattern,
    one_line,
    photographs_rgb,
    piped,
    produce,
    require,
)

FRAME = frame_bytes(WIDTH, HEIGHT)
NOTHING_WRITES = "no frame data within {wait} s (nothing writes to it, or the producer has not started)"
# Each tool's name for a 4:2:2 layout (ffmpeg 5.1 cannot write nv16: its -pix_fmts lists it without the O flag).
GSTREAMER_NAMES = {"YUY2": YuvLayout.YUYV, "UYVY": YuvLayout.UYVY, "Y42B": YuvLayout.I422, "NV16": YuvLayout.NV16}
FFMPEG_NAMES = {"yuyv422": YuvLayout.YUYV, "uyvy422": YuvLayout.UYVY, "yuv422p": YuvLayout.I422}
# The other layout of the same array shape: what a wrong reading of the bytes would be.
SAME_SHAPE = {YuvLayout.YUYV: YuvLayout.UYVY, YuvLayout.UYVY: YuvLayout.YUYV,
              YuvLayout.I422: YuvLayout.NV16, YuvLayout.NV16: YuvLayout.I422}  # fmt: skip




def feed(fifo: Path, shell_command: str) -> subprocess.Popen[bytes]:
    """Start a producer writing into `fifo` (whose reader is already open, so this open does not block)."""
    with open(fifo, "wb") as sink:
        return subprocess.Popen(["sh", "-c", shell_command], stdout=sink)


# --- the tools' names ---------------------------------------------------------------------------------


def gstreamer_video_formats() -> set[str]:
    """The raw video formats GStreamer's videoconvert takes and gives."""
    out = subprocess.run([require("gst-inspect-1.0"), "videoconvert"], capture_output=True, text=True).stdout
    return set(re.findall(r"\(string\)([A-Z0-9_]+)", out))


def ffmpeg_written_formats() -> set[str]:
    """The pixel formats `ffmpeg -pix_fmts` lists as ones it can write (flag O)."""
    out = subprocess.run([require(FFMPEG), "-hide_banner", "-pix_fmts"], capture_output=True, text=True).stdout
    return set(re.findall(r"^[I.]O\S* (\S+)", out, re.MULTILINE))


def test_every_ffmpeg_name_is_one_ffmpeg_writes_and_parses_to_its_layout():
    written = ffmpeg_written_formats()
    for name, layout in FFMPEG_NAMES.items():
        assert name in written, name
        assert parse_layout(name) is layout
    assert {name for name in LAYOUT_ALIASES if name in written} == set(FFMPEG_NAMES)


def test_every_gstreamer_name_is_a_videoconvert_format_and_parses_to_its_layout():
    formats = gstreamer_video_formats()
    for name, layout in GSTREAMER_NAMES.items():
        assert name in formats, name
        assert parse_layout(name) is layout and parse_layout(name.lower()) is layout


def test_an_unknown_format_lists_the_layouts_and_the_tools_names():
    with pytest.raises(UserInputError) as caught:
        FrameFormat.parse("yuv420p:64x48")
    message = str(caught.value)
    assert "unknown frame format 'yuv420p'" in message and "yuyv|uyvy|i422|nv16" in message
    assert all(alias in message for alias in LAYOUT_ALIASES)


def _tool_frames(tool: str, name: str, photographs: Path) -> list[str]:
    return gst_from_rgb(photographs, name) if tool == GST else ffmpeg_from_rgb(photographs, name)


@pytest.mark.parametrize(
    ("tool", "name"), [(GST, n) for n in GSTREAMER_NAMES] + [(FFMPEG, n) for n in FFMPEG_NAMES], ids=lambda v: v
)
def test_a_tools_frames_read_by_its_name_are_the_photographs(tool: str, name: str, photographs: Path, real_images):
    """Photographs converted by the tool, read with the layout its name parses to, come back within a couple of
    code values (chroma subsampling); read as the other layout of the same shape they do not."""
    out = subprocess.run(_tool_frames(tool, name, photographs), capture_output=True, check=True).stdout
    frames_format = FrameFormat.parse(f"{name}:{WIDTH}x{HEIGHT}")
    frames = np.frombuffer(out, np.uint8).reshape(-1, *frames_format.frame_shape)
    original = photographs_rgb(real_images).astype(np.int16)
    assert len(frames) == len(original)
    error = np.abs(yuv422_to_rgb(frames, frames_format.layout) - original).mean()
    misread = np.abs(yuv422_to_rgb(frames, SAME_SHAPE[frames_format.layout]) - original).mean()
    assert error < 3 and misread > 20, (error, misread)


# --- streams ------------------------------------------------------------------------------------------


def test_a_fifo_gives_the_frames_a_file_of_the_same_producer_gives(tmp_path: Path, fifo: Path):
    """GStreamer's 153,600-byte frames arrive in pipe-sized pieces; they are put back together, in order."""
    command = gst_test_pattern(6)
    reference = open_frames(produce(command, tmp_path / "ball.yuyv"), YuvLayout.YUYV, WIDTH, HEIGHT)
    with reference as clip, open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT) as stream:
        assert isinstance(clip, YuvFile) and isinstance(stream, YuvStream)
        producer = feed(fifo, shlex.join(command))
        arrived = list(stream)
        expected = list(clip)
    assert producer.wait() == 0
    assert stream.count == len(arrived) == 6 and stream.leftover == 0
    assert all(np.array_equal(a, b) for a, b in zip(arrived, expected, strict=True))
    assert len({a.tobytes() for a in arrived}) > 1  # the ball moves: the frames differ, so order is checked too


def test_a_pipe_that_stops_mid_frame_gives_its_complete_frames_and_one_warning(tmp_path: Path, fifo: Path):
    left = 1000
    command = f"{shlex.join(gst_test_pattern(3))} | head -c {2 * FRAME + left}"
    with open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT) as stream:
        producer = feed(fifo, command)
        with pytest.warns(PartialFrameWarning) as caught:
            arrived = list(stream)
    producer.wait()
    assert len(arrived) == 2 and isinstance(stream, YuvStream) and stream.leftover == left
    (warning,) = caught
    assert f"ended {left} bytes into a frame of {FRAME} bytes" in str(warning.message)
    assert "the 2 complete frame(s) before them were used" in str(warning.message)


def test_a_fifo_nobody_writes_to_is_given_up_after_the_wait(fifo: Path):
    with open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT, wait_s=0.5) as stream:
        assert isinstance(stream, YuvStream)
        started = time.monotonic()
        with pytest.raises(UserInputError) as caught:
            stream.read()
    assert 0.5 <= time.monotonic() - started < 5
    assert (
        str(caught.value)
        == f"{fifo}: no frame data within 0.5 s (nothing writes to it, or the producer has not started)"
    )


def test_a_producer_that_stalls_after_a_frame_is_given_up_naming_the_frames(tmp_path: Path, fifo: Path):
    one_frame = produce(gst_test_pattern(1), tmp_path / "one.yuyv")
    with open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT, wait_s=0.5) as stream:
        assert isinstance(stream, YuvStream)
        producer = feed(fifo, f"cat {shlex.quote(str(one_frame))}; exec sleep 60")  # then silent, still open
        try:
            assert stream.read() is not None
            with pytest.raises(UserInputError, match=r"no frame data for 0.5 s after 1 frame\(s\)$"):
                stream.read()
        finally:
            producer.kill()
            producer.wait()


def test_a_terminal_is_refused(tmp_path: Path):
    controller, terminal = os.openpty()
    try:
        with pytest.raises(UserInputError, match="is a terminal, not frames: pipe the raw frames into it"):
            open_frames(Path(os.ttyname(terminal)), YuvLayout.YUYV, WIDTH, HEIGHT).__enter__()
    finally:
        os.close(controller)
        os.close(terminal)


@pytest.mark.parametrize(("index", "expected"), [(1, 1), (-1, 4), (-5, 0)])
def test_a_frame_of_a_stream_by_index(tmp_path: Path, fifo: Path, index: int, expected: int):
    clip = produce(gst_test_pattern(5), tmp_path / "five.yuyv")
    with open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT) as stream:
        producer = feed(fifo, f"cat {shlex.quote(str(clip))}")
        frame = stream.frame(index)
    producer.wait()  # ends once the reader has gone, if not before
    with open_frames(clip, YuvLayout.YUYV, WIDTH, HEIGHT) as whole:
        assert np.array_equal(frame, whole.frame(expected))


@pytest.mark.parametrize("index", [5, -6])
def test_a_frame_beyond_the_stream_is_out_of_range(tmp_path: Path, fifo: Path, index: int):
    clip = produce(gst_test_pattern(5), tmp_path / "five.yuyv")
    with open_frames(fifo, YuvLayout.YUYV, WIDTH, HEIGHT) as stream:
        producer = feed(fifo, f"cat {shlex.quote(str(clip))}")
        with pytest.raises(UserInputError, match=rf"frame index {index} out of range \(the stream had 5 frames\)"):
            stream.frame(index)
    assert producer.wait() == 0


# --- `edgeres frames` from standard input -------------------------------------------------------------


def test_frames_info_counts_a_gstreamer_stream_on_standard_input():
    result = piped(gst_test_pattern(7), ["frames", "info", "-", "--format", f"YUY2:{WIDTH}x{HEIGHT}"])
    assert result.returncode == 0, result.stderr
    assert f"standard input: 7 yuyv frame(s), {WIDTH}x{HEIGHT}" in result.stdout and result.stderr == ""


def test_frames_decode_of_an_ffmpeg_stream_is_the_files_frame(tmp_path: Path):
    clip = produce(ffmpeg_test_pattern(4), tmp_path / "testsrc.yuyv")
    from_pipe, from_file = tmp_path / "pipe.png", tmp_path / "file.png"
    size = f"{WIDTH}x{HEIGHT}"
    result = piped(ffmpeg_test_pattern(4), ["frames", "decode", "-", "--format", f"yuyv422:{size}", "-i", "-1",
                                                "-o", str(from_pipe)])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"wrote {from_pipe}: frame -1 of standard input (4 frame(s) read), {size}"
    subprocess.run([*EDGERES, "frames", "decode", str(clip), "--format", f"yuyv:{size}", "-i", "3", "-o",
                    str(from_file)], check=True, capture_output=True)  # fmt: skip
    assert np.array_equal(cv2.imread(str(from_pipe)), cv2.imread(str(from_file)))


def test_frames_info_of_an_empty_stream_is_one_line():
    result = subprocess.run([*EDGERES, "frames", "info", "-", "--format", "yuyv:64x48"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    assert one_line(result.stderr) == "error: standard input: the stream ended before its first complete frame"


def test_frames_info_of_a_fifo_nobody_writes_to_is_one_line_after_the_wait(fifo: Path):
    result = subprocess.run([*EDGERES, "frames", "info", str(fifo), "--format", "yuyv:64x48", "--wait", "1"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert (
        one_line(result.stderr)
        == f"error: {fifo}: no frame data within 1 s (nothing writes to it, or the producer has not started)"
    )


def test_frames_decode_into_a_closed_reader_ends_with_one_line(tmp_path: Path, closed_reader: int):
    source = subprocess.Popen(gst_test_pattern(2), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    command = ["frames", "decode", "-", "--format", f"yuy2:{WIDTH}x{HEIGHT}", "-o", str(tmp_path / "f.png")]
    result = subprocess.run([*EDGERES, *command], stdin=source.stdout, stdout=closed_reader, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert source.stdout is not None
    source.stdout.close()
    source.wait()
    assert result.returncode == 141
    assert one_line(result.stderr) == "interrupted: standard output was closed by its reader"
    assert (tmp_path / "f.png").is_file()  # the work was done; only its report had no reader
