"""The camera front-end: raw uint8 YUV 4:2:2 frame -> normalised network input, as ONNX nodes and on the host.

Both paths compute the same thing in the same order (numpy and onnx only, no torch), so the fused
model and the host reference (edgeres.frontend.host) agree to float rounding:

1. Cast uint8 -> float (TensorRT takes a UINT8 network input only when it is cast right away).
2. An integer box pre-filter: sums over blocks of `fy` rows x `fxp` pixel pairs, taken straight
   on the packed bytes (row ReduceSum, crop to the window, a strided Conv that also unpacks).
3. The remaining (< 2x) scale with a triangle (bilinear, antialiased when shrinking) filter,
   horizontal then vertical, as Gather + MatMul over a few taps.
4. Colour: Y0+Y1, colour matrix, range offsets and ImageNet mean/std, one affine map; then a clip to
   the RGB range 0..255 (in normalised units), then the letterbox padding (normalised 0 = mean colour).
   When every byte of a box shares one horizontal filter (packed layouts, boxed plans), the map is
   folded into the box Conv's weights and bias, so the filters run on 3 channels instead of 4 and no
   colour Conv is left; otherwise it is a 1x1 Conv after the filters.
   Cropping before the box Conv, folding colour and MatMul taps are each faster than the alternatives
   (Gather + Mul + ReduceSum taps, cropping after the Conv, a colour Conv): bench/frames.py measures it.

Resize and colour conversion are linear, so filtering the planes before converting equals
converting first (chroma repeated per pixel pair) and filtering RGB, up to the final clip.
ONNX `Resize` is not used: TensorRT's Resize has no antialias, and this filter is portable and
reproduced exactly on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.frames.contract import FRAME_INPUT, InputContract
from edgeres.frames.yuv import (
    YuvLayout,
)
from edgeres.frontend.plan import ResizePlan, clip_bounds, color_affine, filter_weights, folded_color, plan_resize

FRONTEND_OUTPUT = "frontend_out"
# Every front-end node and constant is named with this prefix, so quantization can keep them float.
NODE_PREFIX = "frontend/"


class _Graph:
    """A tiny node/initializer collector with unique `frontend/...` names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.dims: dict[str, tuple[int, ...]] = {}  # static shapes `_box` needs (batch as 0)

    def sized(self, name: str, dims: tuple[int, ...]) -> str:
        self.dims[name] = dims
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        full = f"{NODE_PREFIX}{name}_const"
        self.initializers.append(numpy_helper.from_array(value, full))
        return full

    def op(self, op_type: str, inputs: list[str], name: str, output: str | None = None, **attrs: Any) -> str:
        out = output or f"{NODE_PREFIX}{name}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{NODE_PREFIX}{name}", **attrs))
        return out


def _slice(g: _Graph, x: str, tag: str, starts: list[int], ends: list[int], axes: list[int]) -> str:
    bounds = {"starts": starts, "ends": ends, "axes": axes}
    return g.op("Slice", [x, *(g.const(f"{tag}_{k}", np.array(v, np.int64)) for k, v in bounds.items())], tag)


def _box(
    g: _Graph,
    x: str,
    tag: str,
    fy: int,
    width: int,
    interleave: int,
    groups: int = 1,
    mix: tuple[np.ndarray, np.ndarray] | None = None,
    window: tuple[int, int, int, int] | None = None,
) -> str:
    """Box sums [N, C, H, W] -> [N, interleave * C, H // fy, W // width] (remainders dropped).

    Rows are summed by Reshape + ReduceSum when they divide evenly, then a strided Conv with 0/1
    weights sums each position of the `interleave`-periodic row pattern (Y0 U Y1 V for packed rows)
    per box, so unpacking and summing are one op (in onnxruntime much faster than ReduceSum over split axes,
    and a little faster than one fy x width Conv).
    `mix` ([M, interleave] weights, [M] bias; groups 1) makes the Conv give M mixes of the pattern sums
    instead. `window` (first box row, box rows, first box column, box columns) keeps only those boxes,
    cut from the row sums before the Conv: the Conv then reads only the window (a centre crop of a wide
    frame uses about half of each row).
    """
    rows, cols = g.dims[x][2:]
    if fy > 1 and rows % fy == 0:
        shape = g.const(f"{tag}_rows_shape", np.array([0, 0, rows // fy, fy, -1], np.int64))
        x = g.op("Reshape", [x, shape], f"{tag}_rows")
        x = g.op("ReduceSum", [x, g.const(f"{tag}_rows_axes", np.array([3], np.int64))], f"{tag}_rows_sum", keepdims=0)
        rows, fy = rows // fy, 1
    whole = (0, rows // fy, 0, cols // width)
    if window is not None and fy == 1 and window != whole:
        row0, box_rows, col0, box_cols = window
        x = _slice(g, x, f"{tag}_crop", [row0, col0 * width], [row0 + box_rows, (col0 + box_cols) * width], [2, 3])
        window = None
    pattern = (np.arange(width)[None, :] % interleave == np.arange(interleave)[:, None]).astype(np.float32)
    if mix is not None:
        pattern = (mix[0] @ pattern).astype(np.float32)
    weight = np.tile(np.repeat(pattern[:, None, None, :], fy, axis=2), (groups, 1, 1, 1))
    inputs = [x, g.const(f"{tag}_w", weight)] + ([] if mix is None else [g.const(f"{tag}_b", mix[1])])
    x = g.op("Conv", inputs, tag, kernel_shape=[fy, width], strides=[fy, width], group=groups)
    if window is not None and window != whole:
        row0, box_rows, col0, box_cols = window
        x = _slice(g, x, f"{tag}_window", [row0, col0], [row0 + box_rows, col0 + box_cols], [2, 3])
    return x


def _window(p: ResizePlan) -> tuple[int, int, int, int]:
    """The plan's window in boxes: first row, rows, first column, columns."""
    hb, wb = p.blocks
    return p.top // p.fy, hb, p.left // (2 * p.fxp), wb


def _blocks(g: _Graph, sums: str, tag: str, p: ResizePlan, row0: int = 0) -> str:
    """Crop the box grid to the plan's window (a small copy instead of a crop of the frame)."""
    start_r, hb, start_c, wb = _window(p)
    start_r += row0
    return _slice(g, sums, f"{tag}_window", [start_r, start_c], [start_r + hb, start_c + wb], [2, 3])


def _sums_graph(g: _Graph, frame: str, c: InputContract, p: ResizePlan) -> str:
    """Cast, box-sum, crop -> [N, 4, Hb, Wb], the graph twin of host.block_sums; [N, 3, Hb, Wb]
    normalised RGB box sums where `folded_color` applies (as host.reference_input mixes them)."""
    x = g.op("Cast", [frame], "cast", to=TensorProto.FLOAT)
    rows, cols = c.frame_shape
    x = g.op("Unsqueeze", [x, g.const("channel_axis", np.array([1], np.int64))], "as_image")
    x = g.sized(x, (0, 1, rows, cols))
    fy, fxp, h = p.fy, p.fxp, c.height
    if c.layout.packed:
        return _box(g, x, "box", fy, 4 * fxp, 4, mix=folded_color(c, p), window=_window(p))
    if c.layout is YuvLayout.NV16 and h % fy == 0:  # luma and chroma rows share the pair pattern: one op
        both = _box(g, x, "box", fy, 2 * fxp, 2)
        return g.op("Concat", [_blocks(g, both, "luma", p), _blocks(g, both, "chroma", p, h // fy)], "channels", axis=1)
    luma = g.sized(_slice(g, x, "luma", [0], [h], [2]), (0, 1, h, cols))
    luma = _blocks(g, _box(g, luma, "luma_box", fy, 2 * fxp, 2), "luma", p)
    chroma = _slice(g, x, "chroma", [h], [2 * h], [2])
    if c.layout is YuvLayout.I422:
        shape = g.const("chroma_shape", np.array([-1, 2, h, cols // 2], np.int64))
        planes = g.sized(g.op("Reshape", [chroma, shape], "chroma_planes"), (0, 2, h, cols // 2))
        chroma = _box(g, planes, "chroma_box", fy, fxp, 1, groups=2)
    else:
        chroma = _box(g, g.sized(chroma, (0, 1, h, cols)), "chroma_box", fy, 2 * fxp, 2)
    return g.op("Concat", [luma, _blocks(g, chroma, "chroma", p)], "channels", axis=1)


def frontend_graph(contract: InputContract, opset: int = 17) -> onnx.ModelProto:
    """The front-end alone: uint8 [batch, rows, cols] 'frame' -> float [batch, 3, size, size] 'frontend_out'."""
    if opset < 13:
        raise UserInputError(f"the front-end needs opset 13 or later, got {opset}")
    p, g = plan_resize(contract), _Graph()
    sums = _sums_graph(g, FRAME_INPUT, contract, p)
    folded = folded_color(contract, p) is not None
    h_weight = filter_weights(p, folded)
    channels, (hb, _) = (3 if folded else 4), p.blocks
    # Gather whole rows (fast in every runtime): filter the transposed sums, transpose back, filter rows.
    # Each weighted sum over the K gathered rows is one MatMul ([1, K] weights @ [K, row] per output).
    cols_first = g.op("Transpose", [sums], "h_transpose", perm=[0, 1, 3, 2])
    across = g.op("Gather", [cols_first, g.const("h_index", p.h_index)], "h_gather", axis=2)
    h_taps = h_weight.reshape(1, len(h_weight), p.out_w, 1, -1)
    across = g.op("MatMul", [g.const("h_weight", h_taps), across], "h_sum")
    across_shape = np.array([0, channels, p.out_w, hb], np.int64)
    across = g.op("Reshape", [across, g.const("h_shape", across_shape)], "h_squeeze")
    across = g.op("Transpose", [across], "v_transpose", perm=[0, 1, 3, 2])
    down = g.op("Gather", [across, g.const("v_index", p.v_index)], "v_gather", axis=2)
    down = g.op("MatMul", [g.const("v_weight", p.v_weight.reshape(1, 1, p.out_h, 1, -1)), down], "v_sum")
    down_shape = np.array([0, channels, p.out_h, p.out_w], np.int64)
    rgb = g.op("Reshape", [down, g.const("v_shape", down_shape)], "v_squeeze")
    if not folded:
        weight, bias = color_affine(contract, p.roles)
        rgb = g.op("Conv", [rgb, g.const("color_w", weight.reshape(3, 4, 1, 1)), g.const("color_b", bias)], "color")
    low, high = clip_bounds()
    rgb = g.op("Max", [rgb, g.const("clip_low", low.reshape(1, 3, 1, 1))], "clip_low")
    padded = any(p.pad)
    rgb = g.op(
        "Min",
        [rgb, g.const("clip_high", high.reshape(1, 3, 1, 1))],
        "clip_high",
        output=None if padded else FRONTEND_OUTPUT,
    )
    if padded:
        top, left, bottom, right = p.pad
        pads = g.const("pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        rgb = g.op("Pad", [rgb, pads], "letterbox", output=FRONTEND_OUTPUT, mode="constant")
    graph = helper.make_graph(
        g.nodes,
        "edgeres_frontend",
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
        raise UserInputError(
            f"model input '{target.name}' is [batch, {', '.join(map(str, dims))}], "
            f"the front-end makes [batch, 3, {contract.size}, {contract.size}]"
        )
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    front = frontend_graph(contract, opset)
    front.ir_version = model.ir_version
    fused = onnx.compose.merge_models(
        front,
        model,
        io_map=[(FRONTEND_OUTPUT, target.name)],
        producer_name="edgeres",
        doc_string="raw YUV 4:2:2 frame in, logits out",
    )
    onnx.checker.check_model(fused, full_check=True)
    return onnx.shape_inference.infer_shapes(fused, check_type=True, strict_mode=True)

