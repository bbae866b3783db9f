"""The camera front-end: raw uint8 YUV 4:2:2 frame -> normalised network input, as ONNX nodes and on the host.

Both paths compute the same thing in the same order (numpy and onnx only, no torch), so the fused
model and the host reference agree to float rounding:

1. Cast uint8 -> float (TensorRT takes a UINT8 network input only when it is cast right away).
2. Crop (center-crop mode), then an integer box pre-filter: sums over blocks of `fy` rows x `fxp`
   pixel pairs, taken straight on the packed bytes (one Reshape + ReduceSum, no unpacking).
   Sums of bytes are exact integers in float32, so this step is bit-identical on both paths.
3. The remaining (< 2x) scale with a triangle (bilinear, antialiased when shrinking) filter,
   horizontal then vertical, as Gather + Mul + ReduceSum over a few taps.
4. One 1x1 Conv: pairs Y0+Y1, colour matrix, range offsets and ImageNet mean/std; then a clip to
   the RGB range 0..255 (in normalised units), then the letterbox padding (normalised 0 = mean colour).

Resize and colour conversion are linear, so filtering the planes before converting equals
converting first (chroma repeated per pixel pair) and filtering RGB, up to the final clip.
ONNX `Resize` is not used: TensorRT's Resize has no antialias, and this filter is portable and
reproduced exactly on the host.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.frames import (
    DEFAULT_COLORSPACE,
    DEFAULT_RANGE,
    PACKED_ROLES,
    ColorRange,
    ColorSpace,
    YuvLayout,
    check_frames,
    check_size,
    color_conversion,
    frame_shape,
    parse_choice,
    parse_layout,
)
from edgeres.images import IMAGENET_MEAN, IMAGENET_STD, NETWORK_SIZE

FRAME_INPUT = "frame"
FRONTEND_OUTPUT = "frontend_out"
PLANAR_ROLES = ("y0", "y1", "u", "v")


class ResizeMode(str, enum.Enum):
    STRETCH = "stretch"  # whole frame to size x size, aspect ratio not kept
    CENTER_CROP = "center-crop"  # largest centred square, scaled to size x size
    LETTERBOX = "letterbox"  # whole frame, aspect kept, padded with the mean colour


DEFAULT_RESIZE = ResizeMode.CENTER_CROP


@dataclass(frozen=True)
class InputContract:
    """What the fused model's input is: a raw frame of this layout and size, and how it becomes the network input."""

    layout: YuvLayout
    width: int
    height: int
    colorspace: ColorSpace = DEFAULT_COLORSPACE
    color_range: ColorRange = DEFAULT_RANGE
    resize: ResizeMode = DEFAULT_RESIZE
    size: int = NETWORK_SIZE

    def __post_init__(self) -> None:
        check_size(self.width, self.height)
        if self.size < 1:
            raise UserInputError(f"network size {self.size} must be positive")

    @property
    def frame_shape(self) -> tuple[int, int]:
        return frame_shape(self.layout, self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "yuv422",
            "name": FRAME_INPUT,
            "dtype": "uint8",
            "shape": ["batch", *self.frame_shape],
            "layout": self.layout.value,
            "width": self.width,
            "height": self.height,
            "colorspace": self.colorspace.value,
            "range": self.color_range.value,
            "resize": self.resize.value,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputContract:
        try:
            return cls(
                layout=YuvLayout(data["layout"]),
                width=int(data["width"]),
                height=int(data["height"]),
                colorspace=ColorSpace(data["colorspace"]),
                color_range=ColorRange(data["range"]),
                resize=ResizeMode(data["resize"]),
                size=int(data["size"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise UserInputError(f"input contract {data!r} is not valid: {exc}") from None


def parse_input(
    text: str,
    colorspace: str = DEFAULT_COLORSPACE.value,
    color_range: str = DEFAULT_RANGE.value,
    resize: str = DEFAULT_RESIZE.value,
    size: int = NETWORK_SIZE,
) -> InputContract:
    """'yuyv:1920x1080' (+ option strings) -> InputContract."""
    match = re.fullmatch(r"\s*([A-Za-z0-9]+)\s*:\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserInputError(f"--input '{text}' is not FORMAT:WIDTHxHEIGHT (e.g. yuyv:1920x1080)")
    return InputContract(
        layout=parse_layout(match.group(1)),
        width=int(match.group(2)),
        height=int(match.group(3)),
        colorspace=parse_choice(ColorSpace, colorspace, "colorspace"),  # type: ignore[arg-type]
        color_range=parse_choice(ColorRange, color_range, "range"),  # type: ignore[arg-type]
        resize=parse_choice(ResizeMode, resize, "resize mode"),  # type: ignore[arg-type]
        size=size,
    )


def triangle_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Dense [n_out, n_in] bilinear weights (half-pixel centres); when shrinking the triangle widens
    with the scale (antialiasing, as Pillow and ONNX Resize antialias=1 do). Edges repeat; rows sum to 1."""
    scale = n_in / n_out
    radius = max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    reach = int(np.ceil(radius)) + 1
    columns = np.floor(centres)[:, None].astype(np.int64) + np.arange(-reach, reach + 1)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs(columns - centres[:, None]) / radius)
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), columns.shape[1]), np.clip(columns, 0, n_in - 1).ravel()),
              weights.ravel())
    return matrix / matrix.sum(axis=1, keepdims=True)


def sparse_taps(matrices: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Shared column indices [n_out, K] and per-matrix weights [M, n_out, K] for matrices with few non-zeros a row."""
    stacked = np.stack(matrices)
    support = np.any(stacked != 0, axis=0)
    taps = int(support.sum(axis=1).max())
    index = np.zeros((support.shape[0], taps), dtype=np.int64)
    for row, cols in enumerate(support):
        found = np.flatnonzero(cols)
        index[row] = np.concatenate([found, np.full(taps - len(found), found[-1])])
        # padded taps repeat the last column with weight 0
    weights = np.take_along_axis(stacked, np.broadcast_to(index, (len(matrices), *index.shape)), axis=2)
    for row, cols in enumerate(support):
        weights[:, row, int(cols.sum()):] = 0.0
    return index, weights.astype(np.float32)


@dataclass(frozen=True, eq=False)
class ResizePlan:
    """Geometry and filter taps of one contract: crop, box factors, taps, padding."""

    top: int  # crop origin and extent in luma pixels (left and width even)
    left: int
    rows: int
    cols: int
    fy: int  # box rows
    fxp: int  # box pixel pairs
    out_h: int  # content size before padding
    out_w: int
    pad: tuple[int, int, int, int]  # top, left, bottom, right
    roles: tuple[str, str, str, str]  # what each of the 4 summed channels is
    h_index: np.ndarray = field(repr=False)  # [out_w, K]
    h_weight: np.ndarray = field(repr=False)  # [4, out_w, K]
    v_index: np.ndarray = field(repr=False)  # [out_h, Kv]
    v_weight: np.ndarray = field(repr=False)  # [out_h, Kv]
    dense_v: np.ndarray = field(repr=False)  # [out_h, rows]: the whole vertical filter, for checks
    dense_h: np.ndarray = field(repr=False)  # [out_w, cols]

    @property
    def blocks(self) -> tuple[int, int]:
        return self.rows // self.fy, self.cols // (2 * self.fxp)


def _region(c: InputContract) -> tuple[int, int, int, int, int, int]:
    """(top, left, rows, cols, out_h, out_w) before trimming to whole boxes."""
    if c.resize is ResizeMode.STRETCH:
        return 0, 0, c.height, c.width, c.size, c.size
    if c.resize is ResizeMode.LETTERBOX:
        scale = c.size / max(c.width, c.height)
        return 0, 0, c.height, c.width, max(1, round(c.height * scale)), max(1, round(c.width * scale))
    side = min(c.width, c.height)
    cols = max(2, side - side % 2)
    return (c.height - side) // 2, ((c.width - cols) // 2) & ~1, side, cols, c.size, c.size


@functools.lru_cache(maxsize=32)
def plan_resize(contract: InputContract) -> ResizePlan:
    top, left, rows, cols, out_h, out_w = _region(contract)
    fy = max(1, rows // out_h)
    boxed = cols >= 2 * out_w
    fxp = max(1, cols // (2 * out_w)) if boxed else 1
    trimmed_rows, trimmed_cols = rows - rows % fy, cols - cols % (2 * fxp)
    top += (rows - trimmed_rows) // 2
    left += ((cols - trimmed_cols) // 2) & ~1
    rows, cols = trimmed_rows, trimmed_cols
    block_rows, block_cols = rows // fy, cols // (2 * fxp)
    vertical = triangle_matrix(block_rows, out_h)
    dense_v = np.repeat(vertical, fy, axis=1) / fy
    if boxed:
        horizontal = triangle_matrix(block_cols, out_w)
        dense_h = np.repeat(horizontal, 2 * fxp, axis=1) / (2 * fxp)
    else:
        dense_h = triangle_matrix(cols, out_w)
    # Per-pair taps: each pair's Y0 / Y1 sum sees the weight of its column; chroma covers both columns.
    y0, y1 = dense_h[:, 0 :: 2 * fxp], dense_h[:, 1 :: 2 * fxp]
    per_role = {"y0": y0, "y1": y1, "u": y0 + y1, "v": y0 + y1}
    roles = PACKED_ROLES.get(contract.layout, PLANAR_ROLES)
    h_index, h_weight = sparse_taps([per_role[r] for r in roles])
    v_index, v_weight = sparse_taps([dense_v[:, ::fy]])
    pad_h, pad_w = contract.size - out_h, contract.size - out_w
    return ResizePlan(
        top, left, rows, cols, fy, fxp, out_h, out_w, (pad_h // 2, pad_w // 2, pad_h - pad_h // 2, pad_w - pad_w // 2),
        roles, h_index, h_weight, v_index, v_weight[0], dense_v, dense_h,
    )


def color_affine(contract: InputContract, roles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Weights [3, 4] and bias [3]: filtered channel sums -> ImageNet-normalised RGB."""
    conv = color_conversion(contract.colorspace, contract.color_range)
    component = {"y0": 0, "y1": 0, "u": 1, "v": 2}
    scale = 1.0 / (255.0 * IMAGENET_STD.astype(np.float64))
    weight = np.stack([conv.to_rgb[:, component[r]] for r in roles], axis=1) * scale[:, None]
    bias = -(conv.to_rgb @ conv.offset) * scale - IMAGENET_MEAN / IMAGENET_STD.astype(np.float64)
    return weight.astype(np.float32), bias.astype(np.float32)


def clip_bounds() -> tuple[np.ndarray, np.ndarray]:
    """RGB 0 and 255 in normalised units, per channel."""
    return (-IMAGENET_MEAN / IMAGENET_STD).astype(np.float32), ((1 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def block_sums(batch: np.ndarray, contract: InputContract, plan: ResizePlan) -> np.ndarray:
    """Crop and box-sum a uint8 batch -> float32 [N, 4, Hb, Wb] in `plan.roles` order (exact integers)."""
    n, (hb, wb), (fy, fxp) = len(batch), plan.blocks, (plan.fy, plan.fxp)
    rows = slice(plan.top, plan.top + plan.rows)
    if contract.layout.packed:
        window = batch[:, rows, 2 * plan.left : 2 * (plan.left + plan.cols)]
        sums = window.reshape(n, hb, fy, wb, 4 * fxp).sum(axis=2, dtype=np.uint32)
        return sums.reshape(n, hb, wb, fxp, 4).sum(axis=3).transpose(0, 3, 1, 2).astype(np.float32)
    luma = batch[:, rows, plan.left : plan.left + plan.cols].reshape(n, hb, fy, wb, 2 * fxp).sum(2, dtype=np.uint32)
    luma = luma.reshape(n, hb, wb, fxp, 2).sum(axis=3).transpose(0, 3, 1, 2)
    h, half = contract.height, contract.width // 2
    c_cols = slice(plan.left // 2, (plan.left + plan.cols) // 2)
    if contract.layout is YuvLayout.I422:
        planes = batch[:, h:, :].reshape(n, 2, h, half)[:, :, rows, c_cols]
        chroma = planes.reshape(n, 2, hb, fy, wb, fxp).sum(axis=(3, 5), dtype=np.uint32)
    else:
        pairs = batch[:, h:, :].reshape(n, h, half, 2)[:, rows, c_cols]
        chroma = pairs.reshape(n, hb, fy, wb, fxp, 2).sum(axis=(2, 4), dtype=np.uint32).transpose(0, 3, 1, 2)
    return np.concatenate([luma, chroma], axis=1).astype(np.float32)


def reference_input(frames: np.ndarray, contract: InputContract) -> np.ndarray:
    """Host path: frames [N, rows, cols] (or one frame) -> float32 [N, 3, size, size], as the fused graph does it."""
    batch = check_frames(frames, contract.layout, contract.width, contract.height)
    plan = plan_resize(contract)
    sums = block_sums(batch, contract, plan)
    across = np.einsum("nchwk,cwk->nchw", sums[..., plan.h_index], plan.h_weight)
    down = np.einsum("nchkw,hk->nchw", across[:, :, plan.v_index, :], plan.v_weight)
    return finish(down, contract, plan)


def finish(filtered: np.ndarray, contract: InputContract, plan: ResizePlan) -> np.ndarray:
    """Colour/normalise [N, 4, h, w] channel sums, clip to the RGB range, pad (letterbox)."""
    weight, bias = color_affine(contract, plan.roles)
    out = np.einsum("ck,nkhw->nchw", weight, filtered) + bias[None, :, None, None]
    low, high = clip_bounds()
    out = np.minimum(np.maximum(out, low[None, :, None, None]), high[None, :, None, None])
    top, left, bottom, right = plan.pad
    return np.pad(out, ((0, 0), (0, 0), (top, bottom), (left, right))).astype(np.float32)


def rgb_reference_input(rgb: np.ndarray, contract: InputContract) -> np.ndarray:
    """An RGB image [H, W, 3] at the contract's size through the same geometry and filter, never YUV:
    the input a camera with an RGB output would give the plain model."""
    plan = plan_resize(contract)
    window = rgb[plan.top : plan.top + plan.rows, plan.left : plan.left + plan.cols].astype(np.float64)
    resized = np.einsum("hr,rcx,wc->xhw", plan.dense_v, window, plan.dense_h, optimize=True)
    normalised = (resized / 255.0 - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    low, high = clip_bounds()
    normalised = np.clip(normalised, low[:, None, None], high[:, None, None])
    top, left, bottom, right = plan.pad
    return np.pad(normalised, ((0, 0), (top, bottom), (left, right)))[None].astype(np.float32)


class _Graph:
    """A tiny node/initializer collector with unique `frontend/...` names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        full = f"frontend/{name}_const"
        self.initializers.append(numpy_helper.from_array(value, full))
        return full

    def op(self, op_type: str, inputs: list[str], name: str, output: str | None = None, **attrs: Any) -> str:
        out = output or f"frontend/{name}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"frontend/{name}", **attrs))
        return out


def _box(g: _Graph, x: str, tag: str, shape: list[int], axes: list[int]) -> str:
    """Reshape to expose box axes and sum them (skipped when they are all 1)."""
    shaped = g.op("Reshape", [x, g.const(f"{tag}_shape", np.array([-1, *shape], np.int64))], f"{tag}_reshape")
    if all(shape[a - 1] == 1 for a in axes):
        keep = [s for i, s in enumerate(shape, 1) if i not in axes]
        return g.op("Reshape", [shaped, g.const(f"{tag}_flat", np.array([-1, *keep], np.int64))], f"{tag}_flat")
    return g.op("ReduceSum", [shaped, g.const(f"{tag}_axes", np.array(axes, np.int64))], f"{tag}_sum", keepdims=0)


def _slice(g: _Graph, x: str, tag: str, starts: list[int], ends: list[int], axes: list[int]) -> str:
    args = [np.array(v, np.int64) for v in (starts, ends, axes)]
    return g.op("Slice", [x, *(g.const(f"{tag}_{k}", a) for k, a in zip(("starts", "ends", "axes"), args))], tag)


def _sums_graph(g: _Graph, frame: str, c: InputContract, p: ResizePlan) -> str:
    """Cast, crop and box-sum -> [N, 4, Hb, Wb], the graph twin of block_sums."""
    x = g.op("Cast", [frame], "cast", to=TensorProto.FLOAT)
    (hb, wb), fy, fxp = p.blocks, p.fy, p.fxp
    if c.layout.packed:
        if (p.rows, p.cols) != (c.height, c.width):
            x = _slice(g, x, "crop", [p.top, 2 * p.left], [p.top + p.rows, 2 * (p.left + p.cols)], [1, 2])
        sums = _box(g, x, "box", [hb, fy, wb, fxp, 4], [2, 4])
        return g.op("Transpose", [sums], "to_nchw", perm=[0, 3, 1, 2])
    luma = _slice(g, x, "luma", [p.top, p.left], [p.top + p.rows, p.left + p.cols], [1, 2])
    luma = g.op("Transpose", [_box(g, luma, "luma_box", [hb, fy, wb, fxp, 2], [2, 4])], "luma_nchw", perm=[0, 3, 1, 2])
    h, half = c.height, c.width // 2
    c_start, c_end = p.left // 2, (p.left + p.cols) // 2
    if c.layout is YuvLayout.I422:
        planes = g.op("Reshape", [_slice(g, x, "chroma", [h], [2 * h], [1]),
                                  g.const("chroma_shape", np.array([-1, 2, h, half], np.int64))], "chroma_planes")
        planes = _slice(g, planes, "chroma_crop", [p.top, c_start], [p.top + p.rows, c_end], [2, 3])
        chroma = _box(g, planes, "chroma_box", [2, hb, fy, wb, fxp], [3, 5])
    else:
        window = _slice(g, x, "chroma", [h + p.top, 2 * c_start], [h + p.top + p.rows, 2 * c_end], [1, 2])
        chroma = g.op("Transpose", [_box(g, window, "chroma_box", [hb, fy, wb, fxp, 2], [2, 4])], "chroma_nchw",
                      perm=[0, 3, 1, 2])
    return g.op("Concat", [luma, chroma], "channels", axis=1)


def frontend_graph(contract: InputContract, opset: int = 17) -> onnx.ModelProto:
    """The front-end alone: uint8 [batch, rows, cols] 'frame' -> float [batch, 3, size, size] 'frontend_out'."""
    if opset < 13:
        raise UserInputError(f"the front-end needs opset 13 or later, got {opset}")
    p, g = plan_resize(contract), _Graph()
    sums = _sums_graph(g, FRAME_INPUT, contract, p)
    k_h, k_v = p.h_index.shape[1], p.v_index.shape[1]
    across = g.op("Gather", [sums, g.const("h_index", p.h_index)], "h_gather", axis=3)
    across = g.op("Mul", [across, g.const("h_weight", p.h_weight.reshape(1, 4, 1, p.out_w, k_h))], "h_weigh")
    across = g.op("ReduceSum", [across, g.const("h_axes", np.array([4], np.int64))], "h_sum", keepdims=0)
    down = g.op("Gather", [across, g.const("v_index", p.v_index)], "v_gather", axis=2)
    down = g.op("Mul", [down, g.const("v_weight", p.v_weight.reshape(1, 1, p.out_h, k_v, 1))], "v_weigh")
    down = g.op("ReduceSum", [down, g.const("v_axes", np.array([3], np.int64))], "v_sum", keepdims=0)
    weight, bias = color_affine(contract, p.roles)
    rgb = g.op("Conv", [down, g.const("color_w", weight.reshape(3, 4, 1, 1)), g.const("color_b", bias)], "color")
    low, high = clip_bounds()
    rgb = g.op("Max", [rgb, g.const("clip_low", low.reshape(1, 3, 1, 1))], "clip_low")
    padded = any(p.pad)
    rgb = g.op("Min", [rgb, g.const("clip_high", high.reshape(1, 3, 1, 1))], "clip_high",
               output=None if padded else FRONTEND_OUTPUT)
    if padded:
        top, left, bottom, right = p.pad
        pads = g.const("pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        rgb = g.op("Pad", [rgb, pads], "letterbox", output=FRONTEND_OUTPUT, mode="constant")
    graph = helper.make_graph(
        g.nodes, "edgeres_frontend",
        [helper.make_tensor_value_info(FRAME_INPUT, TensorProto.UINT8, ["batch", *contract.frame_shape])],
        [helper.make_tensor_value_info(FRONTEND_OUTPUT, TensorProto.FLOAT, ["batch", 3, contract.size, contract.size])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeres")
    onnx.checker.check_model(model, full_check=True)
    return model


def attach_frontend(model: onnx.ModelProto, contract: InputContract) -> onnx.ModelProto:
    """Put the front-end in front of an RGB-float model: the result takes the raw frame, gives the same outputs."""
    if len(model.graph.input) != 1:
        raise UserInputError(f"the model has {len(model.graph.input)} inputs; the front-end needs exactly one")
    target = model.graph.input[0]
    dims = [d.dim_value for d in target.type.tensor_type.shape.dim[1:]]
    if dims != [3, contract.size, contract.size]:
        raise UserInputError(f"model input '{target.name}' is [batch, {', '.join(map(str, dims))}], "
                             f"the front-end makes [batch, 3, {contract.size}, {contract.size}]")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    front = frontend_graph(contract, opset)
    front.ir_version = model.ir_version
    fused = onnx.compose.merge_models(front, model, io_map=[(FRONTEND_OUTPUT, target.name)],
                                      producer_name="edgeres", doc_string="raw YUV 4:2:2 frame in, logits out")
    onnx.checker.check_model(fused, full_check=True)
    return onnx.shape_inference.infer_shapes(fused, check_type=True, strict_mode=True)
