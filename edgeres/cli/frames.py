"""`edgeres frames`: make raw YUV 4:2:2 clips from images, preview a frame as an image, inspect a clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeres.cli.reporting import console, reports_errors
from edgeres.errors import UserInputError

FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="yuyv|uyvy|i422|nv16 (yuyv = YUY2; nv16 = Y plane + interleaved UV).")
]


SizeOption = Annotated[str, typer.Option("--size", "-s", help="Frame size WIDTHxHEIGHT, e.g. 1920x1080 (even width).")]


ColorspaceOption = Annotated[
    str,
    typer.Option(
        "--colorspace",
        help="bt601|bt709. Default bt601: what UVC assumes without a colour descriptor and V4L2's SMPTE 170M default.",
    ),
]


RangeOption = Annotated[
    str, typer.Option("--range", help="limited (Y 16-235, C 16-240)|full (0-255). Default limited, as cameras send.")
]


def _conversion(colorspace: str, color_range: str) -> tuple[object, object]:
    from edgeres.choices import parse_choice
    from edgeres.frames.yuv import ColorRange, ColorSpace

    return parse_choice(ColorSpace, colorspace, "colorspace"), parse_choice(ColorRange, color_range, "range")


@reports_errors
def encode(
    images: Annotated[list[Path], typer.Argument(help="Image files; each becomes one frame, in order.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Raw .yuv file to write (frames back to back).")],
    format: FormatOption = "yuyv",
    size: Annotated[
        str | None, typer.Option("--size", "-s", help="WIDTHxHEIGHT (default: the first image's, width made even).")
    ] = None,
    colorspace: ColorspaceOption = "bt601",
    color_range: RangeOption = "limited",
) -> None:
    """Encode images as raw YUV 4:2:2 frames (chroma = mean of each pixel pair).

    Example:\n
      edgeres frames encode photo.jpg -o clip.yuv --format yuyv --size 1920x1080
    """
    import cv2
    import numpy as np

    from edgeres.frames.images import read_rgb
    from edgeres.frames.yuv import parse_layout, parse_size, rgb_to_yuv422, write_yuv

    layout = parse_layout(format)
    space, rng = _conversion(colorspace, color_range)
    pictures = [read_rgb(path) for path in images]
    if size is None:
        height, width = pictures[0].shape[:2]
        width, height = max(2, width - width % 2), height
    else:
        width, height = parse_size(size)
    resized = [
        p if p.shape[:2] == (height, width) else cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA)
        for p in pictures
    ]
    frames = rgb_to_yuv422(np.stack(resized), layout, space, rng)  # type: ignore[arg-type]
    count = write_yuv(output, frames, layout)
    console.print(
        f"[green]wrote[/] {output}: {count} {layout.value} frame(s) {width}x{height}, "
        f"{space.value} {rng.value} range, {output.stat().st_size:,} bytes"  # type: ignore[attr-defined]
    )


@reports_errors
def decode(
    clip: Annotated[Path, typer.Argument(help="Raw .yuv file.")],
    size: SizeOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="Image to write (.png, .jpg, .bmp...).")] = Path(
        "frame.png"
    ),
    format: FormatOption = "yuyv",
    index: Annotated[int, typer.Option("--index", "-i", help="Frame number (negative counts from the end).")] = 0,
    colorspace: ColorspaceOption = "bt601",
    color_range: RangeOption = "limited",
) -> None:
    """Convert one frame of a raw clip to an RGB image, for a look at what the camera sent.

    Example:\n
      edgeres frames decode clip.yuv --format yuyv --size 1920x1080 --index 0 -o frame.png
    """
    import cv2

    from edgeres.artifacts.atomic import write_bytes_atomic
    from edgeres.frames.yuv import open_yuv, parse_layout, parse_size, yuv422_to_rgb

    layout = parse_layout(format)
    space, rng = _conversion(colorspace, color_range)
    clip_file = open_yuv(clip, layout, *parse_size(size))
    rgb = yuv422_to_rgb(clip_file.frame(index), layout, space, rng)  # type: ignore[arg-type]
    ok, encoded = cv2.imencode(output.suffix or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise UserInputError(f"{output}: cannot write an image with suffix '{output.suffix}' (use .png or .jpg)")
    write_bytes_atomic(output, encoded.tobytes())
    console.print(
        f"[green]wrote[/] {output}: frame {index} of {clip_file.count} ({clip_file.width}x{clip_file.height})"
    )


@reports_errors
def info(
    clip: Annotated[Path, typer.Argument(help="Raw .yuv file.")],
    size: SizeOption,
    format: FormatOption = "yuyv",
) -> None:
    """Check a raw clip against its format and size; show frames and bytes per frame vs RGB and float32.

    Example:\n
      edgeres frames info clip.yuv --format yuyv --size 1920x1080
    """
    from edgeres.frames.yuv import open_yuv, parse_layout, parse_size

    layout = parse_layout(format)
    clip_file = open_yuv(clip, layout, *parse_size(size))
    pixels = clip_file.width * clip_file.height
    table = Table(title=f"{clip}: {clip_file.count} {layout.value} frame(s), {clip_file.width}x{clip_file.height}")
    for column in ("per frame", "bytes", "vs YUV 4:2:2"):
        table.add_column(column, justify="left" if column == "per frame" else "right")
    for name, size_bytes in (
        (f"YUV 4:2:2 ({layout.value})", clip_file.frame_bytes),
        ("RGB uint8", 3 * pixels),
        ("RGB float32", 12 * pixels),
    ):
        table.add_row(name, f"{size_bytes:,}", f"{size_bytes / clip_file.frame_bytes:.2f}x")
    console.print(table)

