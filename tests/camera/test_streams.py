"""`edgeres camera` reading frames from GStreamer and ffmpeg as they arrive.

Every stream is compared with the same producer's frames written to a file and read from there: the frames
must give the same classes, frame by frame. The hostile cases are real too: a pipe cut mid-frame, a FIFO
nobody writes to, a reader that leaves, a signal, a clip of another layout than the model's.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.frames.yuv import frame_bytes
from tests.fixtures.camera_model import (
    EDGERES,
    HEIGHT,
    PHOTOGRAPHS,
    WIDTH,
    ffmpeg_from_rgb,
    ffmpeg_test_pattern,
    gst_from_rgb,
    gst_test_pattern,
    one_line,
    piped,
    produce,
)

FRAME = frame_bytes(WIDTH, HEIGHT)
CLASSES = re.compile(r"^frame +(\d+) +[\d.]+ ms  (.+)$", flags=re.MULTILINE)  # index, classes with probabilities
CLOSED = "interrupted: standard output was closed by its reader"
INTERRUPTED = "interrupted: no partial artifact was left behind"





@pytest.fixture
def model(fused_lite0_model: Path) -> Path:
    return fused_lite0_model


def classes_read_from_file(model: Path, clip: Path) -> list[tuple[str, str]]:
    """Frame index and classes, as `edgeres camera` prints them for the clip read from a file."""
    result = CliRunner().invoke(app, ["camera", str(model), "--yuv", str(clip)])
    assert result.exit_code == 0, result.output
    return CLASSES.findall(result.stdout)


# --- the same classes from a stream as from a file ----------------------------------------------------


@pytest.mark.parametrize(
    ("producer", "frames_path"),
    [("gst photographs", "-"), ("ffmpeg photographs", "/dev/stdin"), ("gst ball", "-"), ("ffmpeg testsrc", "-")],
)
def test_camera_on_a_pipe_gives_the_classes_of_the_same_frames_in_a_file(
    model: Path, photographs: Path, tmp_path: Path, producer: str, frames_path: str
):
    command = {
        "gst photographs": gst_from_rgb(photographs, "YUY2"),
        "ffmpeg photographs": ffmpeg_from_rgb(photographs, "yuyv422"),
        "gst ball": gst_test_pattern(5),
        "ffmpeg testsrc": ffmpeg_test_pattern(5),
    }[producer]
    expected = classes_read_from_file(model, produce(command, tmp_path / "frames.yuyv"))
    result = piped(command, ["camera", str(model), "--yuv", frames_path])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert CLASSES.findall(result.stdout) == expected and len(expected) in (3, 5)
    if "photographs" in producer:  # the tool's own RGB -> YUYV conversion, read right: the photographs are named
        for (name, accepted), (_, classes) in zip(PHOTOGRAPHS.items(), expected, strict=True):
            assert classes.split(", ")[0].rsplit(" ", 1)[0] in accepted, f"{name}: {classes}"


def test_camera_on_a_fifo_ffmpeg_writes_gives_the_classes_of_its_file(model: Path, tmp_path: Path, fifo: Path):
    expected = classes_read_from_file(model, produce(ffmpeg_test_pattern(4), tmp_path / "testsrc.yuyv"))
    camera = subprocess.Popen([*EDGERES, "camera", str(model), "--yuv", str(fifo)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    writer = subprocess.run(ffmpeg_test_pattern(4, output=str(fifo)), capture_output=True, timeout=120)
    out, err = camera.communicate(timeout=120)
    assert writer.returncode == 0 and camera.returncode == 0, err
    assert CLASSES.findall(out) == expected and len(expected) == 4 and err == ""


# --- hostile ------------------------------------------------------------------------------------------


def test_camera_on_a_pipe_cut_mid_frame_uses_the_complete_frames_and_says_so(model: Path):
    producer = ["sh", "-c", f"{shlex.join(gst_test_pattern(3))} | head -c {2 * FRAME + 1000}"]
    result = piped(producer, ["camera", str(model), "--yuv", "-"])
    assert result.returncode == 0
    assert [index for index, _ in CLASSES.findall(result.stdout)] == ["0", "1"]
    assert "2 frames, " in result.stdout
    assert one_line(result.stderr) == (
        f"warning: standard input: the stream ended 1000 bytes into a frame of {FRAME} bytes; those 1000 bytes "
        "were left unused, the 2 complete frame(s) before them were used"
    )


def test_camera_on_a_fifo_nobody_writes_to_gives_up_after_the_wait(model: Path, fifo: Path):
    started = time.monotonic()
    result = subprocess.run([*EDGERES, "camera", str(model), "--yuv", str(fifo), "--wait", "1"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and time.monotonic() - started < 60
    assert one_line(result.stderr) == (
        f"error: {fifo}: no frame data within 1 s (nothing writes to it, or the producer has not started)"
    )


def test_camera_whose_reader_closed_its_output_ends_with_one_line(model: Path, closed_reader: int):
    source = subprocess.Popen(gst_test_pattern(5), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert source.stdout is not None
    result = subprocess.run([*EDGERES, "camera", str(model), "--yuv", "-"], stdin=source.stdout,
                            stdout=closed_reader, stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    source.stdout.close()
    source.wait()
    assert result.returncode == 141
    assert one_line(result.stderr) == CLOSED


def test_camera_piped_into_a_reader_that_leaves_early_ends_with_one_line(model: Path):
    """`... | edgeres camera ... | head -n 2`: the reader leaves after two lines, with frames still to print."""
    source = subprocess.Popen(gst_test_pattern(30), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    camera = subprocess.Popen([*EDGERES, "camera", str(model), "--yuv", "-"], stdin=source.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert source.stdout is not None and camera.stdout is not None and camera.stderr is not None
    source.stdout.close()
    head = [camera.stdout.readline() for _ in range(2)]
    camera.stdout.close()
    err = camera.stderr.read()
    assert camera.wait(timeout=120) == 141 and source.wait() is not None
    assert head[0].startswith("lite0_yuyv_fp32.onnx on ") and head[1].startswith("frame    0 ")
    assert one_line(err) == CLOSED


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_camera_waiting_for_frames_ends_with_one_line_on_a_signal(model: Path, fifo: Path, signum: int):
    camera = subprocess.Popen([*EDGERES, "camera", str(model), "--yuv", str(fifo), "--wait", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert camera.stdout is not None
    assert camera.stdout.readline().startswith("lite0_yuyv_fp32.onnx on ")  # loaded: now waiting on the FIFO
    camera.send_signal(signum)
    _, err = camera.communicate(timeout=60)
    assert camera.returncode == 130
    assert one_line(err) == INTERRUPTED


def test_a_uyvy_stream_is_refused_by_name_for_a_yuyv_model(model: Path, photographs: Path):
    result = piped(gst_from_rgb(photographs, "UYVY"), ["camera", str(model), "--yuv", "-", "--format", "UYVY:320x240"])
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result.stderr) == (
        f"error: standard input: frames of layout uyvy, but {model} takes layout yuyv (its recorded input contract)"
    )
