"""`edgeres frames`: make raw YUV 4:2:2 clips from images, preview a frame as an image, inspect a clip.

`decode` and `info` read a file, or frames as they arrive on standard input (`-`) or a FIFO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from edgeres.artifacts.atomic import write_bytes_atomic
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.options import (
    FRAME_FORMAT_HELP,
    ColorspaceOption,
    FrameFormatOption,
    RangeOption,
    parse_colorspace,
    parse_frame_format,
    parse_range,
)
from edgeres.cli.paths import check_output_file
from edgeres.cli.reporting import console, reports_errors, wrote
from edgeres.errors import UserInputError
from edgeres.frames.images import Fit, fit_picture, read_rgb
from edgeres.frames.stream import DEFAULT_WAIT_S, YuvStream, open_frames
from edgeres.frames.yuv import (
    DEFAULT_COLORSPACE,
    DEFAULT_RANGE,
    YuvFile,
    YuvLayout,
    check_conversion_fits,
    rgb_to_yuv422,
    write_yuv,
    yuv422_to_rgb,
)

EncodeFormatOption = Annotated[
    str,
    typer.Option(
        "--format",
        help=f"The frames to write: {FRAME_FORMAT_HELP}. A bare FORMAT takes the first image's size (width made even).",
    ),
]


@reports_errors
def encode(
    images: Annotated[list[Path], typer.Argument(help="Image files; each becomes one frame, in order.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Raw .yuv file to write (frames back to back).")],
    frame_format: EncodeFormatOption = YuvLayout.YUYV.value,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
    fit: Annotated[
        str,
        typer.Option(
            "--fit",
            help=f"{choice_values(Fit)}: a picture of another shape is cropped to cover the frame (as build "
            "encodes calibration photographs) or stretched to it.",
        ),
    ] = Fit.COVER.value,
) -> None:
    """Encode images as raw YUV 4:2:2 frames (chroma = mean of each pixel pair).

    Examples:\n
      edgeres frames encode photo.jpg -o clip.yuv --format yuyv:1920x1080\n
      edgeres frames encode a.jpg b.jpg -o clip.yuv --format uyvy
    """
    space, rng, shape = parse_colorspace(colorspace), parse_range(color_range), parse_choice(Fit, fit, "--fit")
    check_output_file(output)
    pictures = [read_rgb(path) for path in images]
    height, width = pictures[0].shape[:2]
    frames = parse_frame_format(frame_format, "--format", default_size=(max(2, width - width % 2), height))
    width, height, layout = frames.width, frames.height, frames.layout
    check_conversion_fits(width, height, len(pictures))  # before the pictures are resized to that size
    resized = [fit_picture(p, width, height, shape) for p in pictures]
    count = write_yuv(output, rgb_to_yuv422(np.stack(resized), layout, space, rng), layout)
    wrote(
        f"{output}: {count} {layout.value} frame(s) {width}x{height}, "
        f"{space.value} {rng.value} range, {output.stat().st_size:,} bytes"
    )


ClipArgument = Annotated[
    Path,
    typer.Argument(help="Raw frames back to back: a .yuv file, or - (standard input) or a FIFO, read as they arrive."),
]
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds a pipe or FIFO may send nothing (before its first frame or between two) before giving up.",
    ),
]


@reports_errors
def decode(
    clip: ClipArgument,
    frame_format: FrameFormatOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="Image to write (.png, .jpg, .bmp...).")] = Path(
        "frame.png"
    ),
    index: Annotated[int, typer.Option("--index", "-i", help="Frame number (negative counts from the end).")] = 0,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
    wait: WaitOption = DEFAULT_WAIT_S,
) -> None:
    """Convert one frame of a raw clip to an RGB image, for a look at what the camera sent.

    Examples:\n
      edgeres frames decode clip.yuv --format yuyv:1920x1080 --index 0 -o frame.png\n
      ffmpeg -f v4l2 -i /dev/video0 -pix_fmt yuyv422 -f rawvideo - | edgeres frames decode - --format yuyv422:640x480
    """
    frames = parse_frame_format(frame_format, "--format")
    space, rng = parse_colorspace(colorspace), parse_range(color_range)
    check_output_file(output)
    suffix = output.suffix or ".png"
    if not cv2.haveImageWriter(f"image{suffix}"):  # before any frame is read (OpenCV 5 raises on encode)
        raise UserInputError(f"{output}: cannot write an image with suffix '{output.suffix}' (use .png or .jpg)")
    with open_frames(clip, frames.layout, frames.width, frames.height, wait) as source:
        frame = source.frame(index)
    rgb = yuv422_to_rgb(frame, frames.layout, space, rng)
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserInputError(f"{output}: cannot write an image with suffix '{output.suffix}' (use .png or .jpg)")
    write_bytes_atomic(output, encoded.tobytes())
    of = str(source.count) if isinstance(source, YuvFile) else f"{source.name} ({source.count} frame(s) read)"
    wrote(f"{output}: frame {index} of {of}, {frames.width}x{frames.height}")


@reports_errors
def info(clip: ClipArgument, frame_format: FrameFormatOption, wait: WaitOption = DEFAULT_WAIT_S) -> None:
    """Check a raw clip against its format and size; show frames and bytes per frame vs RGB and float32.

    From a pipe the frames are counted as they arrive, until it ends.

    Example:\n
      edgeres frames info clip.yuv --format yuyv:1920x1080
    """
    frames = parse_frame_format(frame_format, "--format")
    layout = frames.layout
    with open_frames(clip, layout, frames.width, frames.height, wait) as source:
        if isinstance(source, YuvStream):
            for _ in source:
                pass
            if source.count == 0:
                raise UserInputError(f"{source.name}: the stream ended before its first complete frame")
    pixels = frames.width * frames.height
    title = f"{source.name}: {source.count} {layout.value} frame(s), {frames.width}x{frames.height}"
    table = Table(title=Text(title))
    for column in ("per frame", "bytes", "vs YUV 4:2:2"):
        table.add_column(column, justify="left" if column == "per frame" else "right")
    for name, size_bytes in (
        (f"YUV 4:2:2 ({layout.value})", source.frame_bytes),
        ("RGB uint8", 3 * pixels),
        ("RGB float32", 12 * pixels),
    ):
        table.add_row(name, f"{size_bytes:,}", f"{size_bytes / source.frame_bytes:.2f}x")
    console.print(table)
