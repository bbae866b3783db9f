"""YUV 4:2:2 camera frames: layouts, BT.601/BT.709 colour conversion and raw `.yuv` files (numpy only).

A frame is kept exactly as the camera hands it out, as a uint8 array:
packed YUYV/UYVY are [H, 2W] (two bytes per pixel on each row), planar I422 and semi-planar
NV16 are [2H, W] (the Y plane's H rows, then H rows' worth of chroma bytes). A batch adds a
leading axis. Chroma siting is treated as centred on each pixel pair: the encoder averages the
pair's chroma and the decoder repeats each chroma sample for both pixels (as OpenCV's `cvtColor`
does). BT.601 specifies co-sited chroma (on the even column); the difference is a half-pixel
chroma shift, invisible after the network's 5x-8x downscale of a camera frame.

Defaults: BT.601 matrix, limited range. That is what the USB Video Class assumes when a camera
sends no colour-matching descriptor (bMatrixCoefficients 4, SMPTE 170M) and V4L2's default
encoding and quantisation for SMPTE 170M; HD sensors that follow BT.709 must say so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import write_bytes_atomic
from edgeres.choices import parse_choice
from edgeres.errors import UserInputError, check_fits_in_memory


class YuvLayout(str, enum.Enum):
    YUYV = "yuyv"  # packed Y0 U Y1 V (YUY2)
    UYVY = "uyvy"  # packed U Y0 V Y1
    I422 = "i422"  # planar Y, then U (H x W/2), then V (H x W/2) (YUV422P)
    NV16 = "nv16"  # semi-planar Y, then interleaved U V (H x W) (Jetson / V4L2 cameras)

    @property
    def packed(self) -> bool:
        return self in (YuvLayout.YUYV, YuvLayout.UYVY)


class ColorSpace(str, enum.Enum):
    BT601 = "bt601"
    BT709 = "bt709"

    @property
    def kr_kb(self) -> tuple[float, float]:
        """Luma weights of red and blue (ITU-R BT.601-7 and BT.709-6, section on Y' derivation)."""
        return (0.299, 0.114) if self is ColorSpace.BT601 else (0.2126, 0.0722)


class ColorRange(str, enum.Enum):
    LIMITED = "limited"  # Y 16..235, Cb/Cr 16..240 (studio swing)
    FULL = "full"  # Y 0..255, Cb/Cr 0..255 around 128 (JFIF)


DEFAULT_COLORSPACE = ColorSpace.BT601
DEFAULT_RANGE = ColorRange.LIMITED
BYTES_PER_PIXEL = 2
# Bytes per pixel a frame costs while it is converted: the uint8 RGB and YUV frames plus the float32
# RGB and YUV copies (12 bytes each) and the chroma pair means.
CONVERSION_BYTES_PER_PIXEL = 32


# Packed byte roles within each 4-byte macropixel (two pixels).
PACKED_ROLES: dict[YuvLayout, tuple[str, str, str, str]] = {
    YuvLayout.YUYV: ("y0", "u", "y1", "v"),
    YuvLayout.UYVY: ("u", "y0", "v", "y1"),
}


# The names capture tools print for the same bytes, so a format can be copied from a capture command line:
# ffmpeg's pixel formats (`ffmpeg -pix_fmts`) and GStreamer's video/x-raw formats (`gst-inspect-1.0
# videoconvert`). GStreamer's UYVY and NV16 are the layouts' own names; 8-bit I422 is its Y42B.
LAYOUT_ALIASES: dict[str, YuvLayout] = {
    "yuy2": YuvLayout.YUYV,  # GStreamer, Windows FourCC
    "yuyv422": YuvLayout.YUYV,  # ffmpeg
    "uyvy422": YuvLayout.UYVY,  # ffmpeg
    "yuv422p": YuvLayout.I422,  # ffmpeg
    "y42b": YuvLayout.I422,  # GStreamer
}


def parse_layout(value: str) -> YuvLayout:
    """A layout by its name or a capture tool's name for it (LAYOUT_ALIASES), case-insensitive."""
    alias = LAYOUT_ALIASES.get(value.strip().lower())
    if alias is not None:
        return alias
    try:
        return parse_choice(YuvLayout, value, "frame format")
    except UserInputError as exc:
        raise UserInputError(f"{exc} (or a capture tool's name: {', '.join(LAYOUT_ALIASES)})") from None


def check_size(width: int, height: int) -> None:
    """4:2:2 shares one chroma pair between two horizontal pixels, so the width must be even."""
    if width <= 0 or height <= 0:
        raise UserInputError(f"frame size {width}x{height} must be positive")
    if width % 2:
        raise UserInputError(f"frame width {width} is odd: YUV 4:2:2 needs an even width")


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080), validated for 4:2:2."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserInputError(f"frame size '{text}' is not WIDTHxHEIGHT (e.g. 1920x1080)")
    width, height = int(match.group(1)), int(match.group(2))
    check_size(width, height)
    return width, height


def frame_shape(layout: YuvLayout, width: int, height: int) -> tuple[int, int]:
    """The uint8 array shape of one frame: [H, 2W] packed, [2H, W] planar."""
    check_size(width, height)
    return (height, 2 * width) if layout.packed else (2 * height, width)


def frame_bytes(width: int, height: int) -> int:
    return BYTES_PER_PIXEL * width * height


def conversion_bytes(width: int, height: int, count: int = 1) -> int:
    """Estimated bytes to convert `count` frames of width x height between RGB and YUV 4:2:2."""
    return CONVERSION_BYTES_PER_PIXEL * width * height * count


def check_conversion_fits(width: int, height: int, count: int = 1) -> None:
    """Refuse converting frames whose estimated memory exceeds the available memory (e.g. 100000x100000)."""
    check_fits_in_memory(conversion_bytes(width, height, count), f"{count} frame(s) of {width}x{height}")


def size_of(frames: np.ndarray, layout: YuvLayout) -> tuple[int, int]:
    """(width, height) of a frame or batch, after checking dtype and shape."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise UserInputError(f"{layout.value} frames must be a uint8 array, got {dtype}")
    if frames.ndim not in (2, 3):
        raise UserInputError(f"{layout.value} frames must be [rows, cols] or [N, rows, cols], got shape {frames.shape}")
    rows, cols = frames.shape[-2:]
    if layout.packed:
        if cols % 4:
            raise UserInputError(f"{layout.value} row of {cols} bytes is not whole pixel pairs (width {cols / 2:g})")
        width, height = cols // 2, rows
    else:
        if rows % 2 or cols % 2:
            raise UserInputError(f"{layout.value} frame of shape {frames.shape[-2:]} is not [2H, W] with even W")
        width, height = cols, rows // 2
    check_size(width, height)
    return width, height


def check_frames(frames: np.ndarray, layout: YuvLayout, width: int, height: int) -> np.ndarray:
    """`frames` as a batch [N, rows, cols] after checking it is exactly `layout` at width x height."""
    got = size_of(frames, layout)
    if got != (width, height):
        raise UserInputError(f"{layout.value} frame is {got[0]}x{got[1]}, expected {width}x{height}")
    return frames if frames.ndim == 3 else frames[None]


def split_planes(frames: np.ndarray, layout: YuvLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (no copies) of the Y [..., H, W], U and V [..., H, W/2] planes."""
    width, height = size_of(frames, layout)
    lead = frames.shape[:-2]
    if layout.packed:
        quads = frames.reshape(*lead, height, width // 2, 4)
        roles = PACKED_ROLES[layout]
        y = np.stack([quads[..., roles.index("y0")], quads[..., roles.index("y1")]], axis=-1)
        return y.reshape(*lead, height, width), quads[..., roles.index("u")], quads[..., roles.index("v")]
    luma, chroma = frames[..., :height, :], frames[..., height:, :]
    if layout is YuvLayout.I422:
        planes = chroma.reshape(*lead, 2, height, width // 2)
        return luma, planes[..., 0, :, :], planes[..., 1, :, :]
    pairs = chroma.reshape(*lead, height, width // 2, 2)
    return luma, pairs[..., 0], pairs[..., 1]


def join_planes(y: np.ndarray, u: np.ndarray, v: np.ndarray, layout: YuvLayout) -> np.ndarray:
    """The inverse of split_planes: uint8 planes -> frames in `layout`."""
    height, width = y.shape[-2:]
    lead = y.shape[:-2]
    if layout.packed:
        parts = {"y0": y[..., 0::2], "y1": y[..., 1::2], "u": u, "v": v}
        quads = np.stack([parts[role] for role in PACKED_ROLES[layout]], axis=-1)
        return np.ascontiguousarray(quads.reshape(*lead, height, 2 * width), dtype=np.uint8)
    if layout is YuvLayout.I422:
        chroma = np.concatenate([u.reshape(*lead, -1), v.reshape(*lead, -1)], axis=-1).reshape(*lead, height, width)
    else:
        chroma = np.stack([u, v], axis=-1).reshape(*lead, height, width)
    return np.ascontiguousarray(np.concatenate([y, chroma], axis=-2), dtype=np.uint8)


@dataclass(frozen=True)
class ColorConversion:
    """rgb = to_rgb @ (yuv - offset), yuv = to_yuv @ rgb + offset; RGB and YUV in 0..255 code values."""

    to_rgb: np.ndarray  # [3, 3]
    to_yuv: np.ndarray  # [3, 3]
    offset: np.ndarray  # [3]


def color_conversion(colorspace: ColorSpace, color_range: ColorRange) -> ColorConversion:
    """Matrices from Kr/Kb and the range's scales: limited Y' = 16 + 219 E'y, C = 128 + 224 E'pb."""
    kr, kb = colorspace.kr_kb
    kg = 1.0 - kr - kb
    # Analog E'y, E'pb, E'pr (each row) from R'G'B' in 0..1.
    analog = np.array(
        [[kr, kg, kb], [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5], [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)]]
    )
    y_scale, c_scale, y_offset = (219.0, 224.0, 16.0) if color_range is ColorRange.LIMITED else (255.0, 255.0, 0.0)
    to_yuv = np.diag([y_scale, c_scale, c_scale]) @ analog / 255.0
    return ColorConversion(to_rgb=np.linalg.inv(to_yuv), to_yuv=to_yuv, offset=np.array([y_offset, 128.0, 128.0]))


def yuv422_to_rgb_float(
    frames: np.ndarray,
    layout: YuvLayout,
    colorspace: ColorSpace = DEFAULT_COLORSPACE,
    color_range: ColorRange = DEFAULT_RANGE,
    clip: bool = True,
) -> np.ndarray:
    """Frames -> float32 RGB [..., H, W, 3] in 0..255 (clipped unless asked not to); chroma repeated per pair."""
    width, height = size_of(frames, layout)
    check_conversion_fits(width, height, int(np.prod(frames.shape[:-2], dtype=np.int64)))
    y, u, v = split_planes(frames, layout)
    conv = color_conversion(colorspace, color_range)
    matrix = conv.to_rgb.astype(np.float32)
    offset = conv.offset.astype(np.float32)
    luma = y.astype(np.float32) - offset[0]
    cb = np.repeat(u.astype(np.float32) - offset[1], 2, axis=-1)
    cr = np.repeat(v.astype(np.float32) - offset[2], 2, axis=-1)
    rgb = np.stack([matrix[c, 0] * luma + matrix[c, 1] * cb + matrix[c, 2] * cr for c in range(3)], axis=-1)
    return np.clip(rgb, 0.0, 255.0, out=rgb) if clip else rgb


def yuv422_to_rgb(
    frames: np.ndarray,
    layout: YuvLayout,
    colorspace: ColorSpace = DEFAULT_COLORSPACE,
    color_range: ColorRange = DEFAULT_RANGE,
) -> np.ndarray:
    """Frames -> uint8 RGB [..., H, W, 3], rounded to nearest."""
    return np.rint(yuv422_to_rgb_float(frames, layout, colorspace, color_range)).astype(np.uint8)


def rgb_to_yuv422(
    rgb: np.ndarray,
    layout: YuvLayout,
    colorspace: ColorSpace = DEFAULT_COLORSPACE,
    color_range: ColorRange = DEFAULT_RANGE,
) -> np.ndarray:
    """uint8 RGB [..., H, W, 3] (W even) -> frames; each chroma sample is the mean of its pixel pair."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim < 3 or rgb.shape[-1] != 3:
        raise UserInputError(
            f"expected uint8 RGB [..., H, W, 3], got {getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
        )
    height, width = rgb.shape[-3:-1]
    check_size(width, height)
    check_conversion_fits(width, height, int(np.prod(rgb.shape[:-3], dtype=np.int64)))
    conv = color_conversion(colorspace, color_range)
    yuv = rgb.astype(np.float32) @ conv.to_yuv.T.astype(np.float32) + conv.offset.astype(np.float32)
    chroma = 0.5 * (yuv[..., 0::2, 1:] + yuv[..., 1::2, 1:])
    y, u, v = (np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (yuv[..., 0], chroma[..., 0], chroma[..., 1]))
    return join_planes(y, u, v, layout)


@dataclass(frozen=True)
class YuvFile:
    """A raw file of frames back to back, memory-mapped: frames are read by index, never all at once."""

    path: Path
    layout: YuvLayout
    width: int
    height: int
    count: int

    @property
    def frame_bytes(self) -> int:
        return frame_bytes(self.width, self.height)

    def frames(self) -> np.ndarray:
        """A read-only memory map [count, rows, cols]; slicing it reads only the touched pages."""
        shape = (self.count, *frame_shape(self.layout, self.width, self.height))
        return np.memmap(self.path, np.uint8, "r", shape=shape)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (negative counts from the end) as an ordinary array."""
        if not -self.count <= index < self.count:
            raise UserInputError(f"{self.path}: frame index {index} out of range (file has {self.count} frames)")
        return np.array(self.frames()[index])

    @property
    def name(self) -> str:
        return str(self.path)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame in order, each an ordinary array (the map pages in one frame at a time)."""
        frames = self.frames()
        for index in range(self.count):
            yield np.array(frames[index])


def open_yuv(path: Path, layout: YuvLayout, width: int, height: int) -> YuvFile:
    """Validate a raw file against the format and size without reading it."""
    path = Path(path)
    check_size(width, height)
    if not path.is_file():
        raise UserInputError(f"{path}: raw frame file not found")
    size, per_frame = path.stat().st_size, frame_bytes(width, height)
    if size == 0 or size % per_frame:
        raise UserInputError(
            f"{path}: file size {size} bytes is not a whole number of {layout.value} {width}x{height} frames "
            f"({per_frame} bytes each)"
        )
    return YuvFile(path, layout, width, height, size // per_frame)


def write_yuv(path: Path, frames: np.ndarray, layout: YuvLayout) -> int:
    """Write frames back to back (atomically); returns the number of frames written."""
    size_of(frames, layout)
    batch = frames if frames.ndim == 3 else frames[None]
    write_bytes_atomic(Path(path), np.ascontiguousarray(batch).tobytes())
    return len(batch)
