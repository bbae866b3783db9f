"""`edgeres frames`: make raw YUV 4:2:2 clips from images, preview a frame as an image, inspect a clip."""

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
from edgeres.frames.yuv import (
    DEFAULT_COLORSPACE,
    DEFAULT_RANGE,
    YuvLayout,
    check_conversion_fits,
    open_yuv,
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


@reports_errors
def decode(
    clip: Annotated[Path, typer.Argument(help="Raw .yuv file.")],
    frame_format: FrameFormatOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="Image to write (.png, .jpg, .bmp...).")] = Path(
        "frame.png"
    ),
    index: Annotated[int, typer.Option("--index", "-i", help="Frame number (negative counts from the end).")] = 0,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
) -> None:
    """Convert one frame of a raw clip to an RGB image, for a look at what the camera sent.

    Example:\n
      edgeres frames decode clip.yuv --format yuyv:1920x1080 --index 0 -o frame.png
    """
    frames = parse_frame_format(frame_format, "--format")
    space, rng = parse_colorspace(colorspace), parse_range(color_range)
    check_output_file(output)
    clip_file = open_yuv(clip, frames.layout, frames.width, frames.height)
    rgb = yuv422_to_rgb(clip_file.frame(index), frames.layout, space, rng)
    ok, encoded = cv2.imencode(output.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserInputError(f"{output}: cannot write an image with suffix '{output.suffix}' (use .png or .jpg)")
    write_bytes_atomic(output, encoded.tobytes())
    wrote(f"{output}: frame {index} of {clip_file.count} ({clip_file.width}x{clip_file.height})")


@reports_errors
def info(
    clip: Annotated[Path, typer.Argument(help="Raw .yuv file.")],
    frame_format: FrameFormatOption,
) -> None:
    """Check a raw clip against its format and size; show frames and bytes per frame vs RGB and float32.

    Example:\n
      edgeres frames info clip.yuv --format yuyv:1920x1080
    """
    frames = parse_frame_format(frame_format, "--format")
    layout = frames.layout
    clip_file = open_yuv(clip, layout, frames.width, frames.height)
    pixels = clip_file.width * clip_file.height
    title = f"{clip}: {clip_file.count} {layout.value} frame(s), {clip_file.width}x{clip_file.height}"
    table = Table(title=Text(title))
    for column in ("per frame", "bytes", "vs YUV 4:2:2"):
        table.add_column(column, justify="left" if column == "per frame" else "right")
    for name, size_bytes in (
        (f"YUV 4:2:2 ({layout.value})", clip_file.frame_bytes),
        ("RGB uint8", 3 * pixels),
        ("RGB float32", 12 * pixels),
    ):
        table.add_row(name, f"{size_bytes:,}", f"{size_bytes / clip_file.frame_bytes:.2f}x")
    console.print(table)
