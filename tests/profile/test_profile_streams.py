"""`edgeres profile --from-frames` on frames GStreamer and ffmpeg write into a pipe or a FIFO, as they arrive.

The model records a camera contract (EfficientNet-Lite0 behind a YUYV 320x240 front-end), so the frames'
format comes from it, and frames it would misread are refused by name.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeres.frames.contract import FrameFormat
from edgeres.frames.yuv import YuvLayout
from edgeres.profile.dispatch import profile_artifacts
from edgeres.profile.options import FrameClip, ProfileOptions
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.timing import RunLength
from tests.fixtures.camera_model import (
    HEIGHT,
    WIDTH,
    ffmpeg_test_pattern,
    gst_from_rgb,
    gst_test_pattern,
    one_line,
    piped,
    produce,
)


@pytest.fixture
def model(fused_lite0_model: Path) -> Path:
    return fused_lite0_model


def top1_of_first_frame(model: Path, clip: Path) -> int:
    frame = np.fromfile(clip, np.uint8, count=2 * WIDTH * HEIGHT).reshape(1, HEIGHT, 2 * WIDTH)
    with OnnxRuntimeRunner(model) as runner:
        return int(runner.infer(frame).argmax())


def test_profile_from_a_gstreamer_pipe_times_its_frames_end_to_end(model: Path, photographs: Path, tmp_path: Path):
    """No --format: the model's recorded input says what the frames are."""
    expected = top1_of_first_frame(model, produce(gst_from_rgb(photographs, "YUY2"), tmp_path / "photos.yuyv"))
    report = tmp_path / "profile.json"
    command = ["profile", str(model), "--from-frames", "-", "--iterations", "2", "--warmup", "1", "--no-layers",
               "--json", str(report)]  # fmt: skip
    result = piped(gst_from_rgb(photographs, "YUY2"), command)
    assert result.returncode == 0, result.stderr
    document = json.loads(report.read_text())
    (profiled,) = document["artifacts"]
    assert profiled["end_to_end"]["frames"] == 2 and profiled["end_to_end"]["clip"] == "-"
    assert profiled["end_to_end"]["top1_first_frame"] == expected
    assert document["options"]["clip"]["layout"] == "yuyv" and document["options"]["clip"]["width"] == WIDTH


def test_profile_from_a_pipe_that_ends_first_times_what_came_and_says_so(model: Path, tmp_path: Path):
    report = tmp_path / "profile.json"
    # --cv-warn: no warning of unsteady latency either, on a busy machine
    command = ["profile", str(model), "--from-frames", "-", "--iterations", "10", "--warmup", "1", "--no-layers",
               "--json", str(report), "--cv-warn", "1000"]  # fmt: skip
    result = piped(ffmpeg_test_pattern(4), command)
    assert result.returncode == 0, result.stderr
    assert one_line(result.stderr) == (
        "warning: lite0_yuyv_fp32.onnx: end to end timed 3 of 10 frame(s): standard input ended"
    )
    assert json.loads(report.read_text())["artifacts"][0]["end_to_end"]["frames"] == 3


def test_models_profiled_from_one_fifo_take_its_frames_one_after_the_other(model: Path, tmp_path: Path):
    """Five frames, one warm-up and two timed frames each: the first model takes frames 0-2, the second 3-4,
    a third finds none left and is profiled without its end-to-end run, saying why."""
    fifo = tmp_path / "frames.fifo"
    os.mkfifo(fifo)
    clip = FrameClip(fifo, FrameFormat(YuvLayout.YUYV, WIDTH, HEIGHT), wait_s=60)
    options = ProfileOptions(run_length=RunLength(iterations=2), warmup=1, layers=False, cv_warn=1000, clip=clip)
    writer = subprocess.Popen(["sh", "-c", f'exec "$@" > {fifo}', "sh", *gst_test_pattern(5)])
    try:
        first, second, third = profile_artifacts([model, model, model], options)
    finally:
        writer.wait(timeout=60)
    assert first.end_to_end is not None and first.end_to_end.frames == 2 and first.warnings == ()
    assert second.end_to_end is not None and second.end_to_end.frames == 1
    assert second.warnings == ("lite0_yuyv_fp32.onnx: end to end timed 1 of 2 frame(s): " + f"{fifo} ended",)
    assert third.end_to_end is None
    assert third.warnings == (
        f"lite0_yuyv_fp32.onnx: not timed end to end: {fifo} ended after 5 frame(s) in all, none left to time for it",
    )


@pytest.mark.parametrize(
    ("format_option", "differs"),
    [("uyvy:320x240", "layout uyvy"), ("YUY2:640x480", "size 640x480")],
)
def test_profile_refuses_frames_the_model_would_misread_by_name(
    model: Path, photographs: Path, format_option: str, differs: str
):
    """A UYVY frame fits a YUYV model's tensor byte for byte: only the recorded contract tells them apart."""
    command = ["profile", str(model), "--from-frames", "-", "--format", format_option, "--iterations", "1"]
    result = piped(gst_from_rgb(photographs, "UYVY"), command)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith(f"error: standard input: frames of {differs}, but {model} takes ")
    assert line.endswith("(its recorded input contract)")


def test_profile_refuses_a_colour_coding_the_model_was_not_built_for(model: Path, photographs: Path):
    command = ["profile", str(model), "--from-frames", "-", "--colorspace", "bt709", "--iterations", "1"]
    result = piped(gst_from_rgb(photographs, "YUY2"), command)
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        f"error: standard input: frames of colorspace bt709, but {model} takes colorspace bt601 "
        "(its recorded input contract)"
    )
