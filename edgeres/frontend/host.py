"""The camera front-end on the host: numpy (and OpenCV for test frames) twins of the fused graph.

`reference_input` computes what `edgeres.frontend.graph.frontend_graph` computes, in the same order, so the
fused model can be checked against it; `parity_frames` makes the frames such checks run on.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout, check_frames, rgb_to_yuv422
from edgeres.frontend.plan import ResizePlan, clip_bounds, color_affine, filter_weights, folded_color, plan_resize


def _box_sum(x: np.ndarray, axis: int, factor: int, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """Sum runs of `factor` neighbours along `axis` with strided adds (much faster than np.sum over a middle axis)."""
    shape = x.shape
    runs = x.reshape(*shape[:axis], shape[axis] // factor, factor, *shape[axis + 1 :])
    lead: tuple[Any, ...] = (slice(None),) * (axis + 1)
    total = runs[(*lead, 0)].astype(dtype)
    for k in range(1, factor):
        total += runs[(*lead, k)]
    return total


def block_sums(batch: np.ndarray, contract: InputContract, plan: ResizePlan) -> np.ndarray:
    """Crop and box-sum a uint8 batch -> float32 [N, 4, Hb, Wb] in `plan.roles` order (exact integers)."""
    n, (hb, wb), (fy, fxp) = len(batch), plan.blocks, (plan.fy, plan.fxp)
    rows = slice(plan.top, plan.top + plan.rows)
    dtype = np.uint16 if 255 * fy * fxp <= np.iinfo(np.uint16).max else np.uint32
    if contract.layout.packed:
        window = batch[:, rows, 2 * plan.left : 2 * (plan.left + plan.cols)]
        sums = _box_sum(_box_sum(window, 1, fy, dtype).reshape(n, hb, wb * fxp, 4), 2, fxp, dtype)
        return sums.transpose(0, 3, 1, 2).astype(np.float32)
    luma = _box_sum(batch[:, rows, plan.left : plan.left + plan.cols], 1, fy, dtype).reshape(n, hb, wb * fxp, 2)
    luma = _box_sum(luma, 2, fxp, dtype).transpose(0, 3, 1, 2)
    h, half = contract.height, contract.width // 2
    c_cols = slice(plan.left // 2, (plan.left + plan.cols) // 2)
    if contract.layout is YuvLayout.I422:
        planes = batch[:, h:, :].reshape(n, 2, h, half)[:, :, rows, c_cols]
        chroma = _box_sum(_box_sum(planes, 2, fy, dtype), 3, fxp, dtype)
    else:
        pairs = batch[:, h:, :].reshape(n, h, half, 2)[:, rows, c_cols]
        chroma = _box_sum(_box_sum(pairs, 1, fy, dtype), 2, fxp, dtype).transpose(0, 3, 1, 2)
    return np.concatenate([luma, chroma], axis=1).astype(np.float32)


def _affine(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Channel mix [M, C] + bias [M] of x [N, C, H, W] -> float32 [N, M, H, W]."""
    mixed = np.tensordot(weight, x, axes=([1], [1])).transpose(1, 0, 2, 3)
    return (mixed + bias[None, :, None, None]).astype(np.float32)


def reference_input(frames: np.ndarray, contract: InputContract) -> np.ndarray:
    """Host path: frames [N, rows, cols] (or one frame) -> float32 [N, 3, size, size], as the fused graph does it."""
    batch = check_frames(frames, contract.layout, contract.width, contract.height)
    plan = plan_resize(contract)
    sums = block_sums(batch, contract, plan)
    folded = folded_color(contract, plan)
    if folded is not None:  # colour folded into the box sums, as the graph's box Conv does it
        sums = _affine(*folded, sums)
    h_weight = filter_weights(plan, folded is not None)
    # Rows are gathered whole (fast copies): filter the transposed sums, then the rows.
    sums = np.ascontiguousarray(sums.transpose(0, 1, 3, 2))
    across = sums[:, :, plan.h_index[:, 0]] * h_weight[None, :, :, 0, None]
    for k in range(1, plan.h_index.shape[1]):
        across += sums[:, :, plan.h_index[:, k]] * h_weight[None, :, :, k, None]
    across = np.ascontiguousarray(across.transpose(0, 1, 3, 2))
    down = across[:, :, plan.v_index[:, 0]] * plan.v_weight[None, None, :, 0, None]
    for k in range(1, plan.v_index.shape[1]):
        down += across[:, :, plan.v_index[:, k]] * plan.v_weight[None, None, :, k, None]
    return finish(down if folded is not None else _affine(*color_affine(contract, plan.roles), down), plan)


def finish(rgb: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Clip normalised RGB [N, 3, h, w] to the RGB range, pad (letterbox)."""
    low, high = clip_bounds()
    out = np.minimum(np.maximum(rgb, low[None, :, None, None]), high[None, :, None, None])
    top, left, bottom, right = plan.pad
    return np.pad(out, ((0, 0), (0, 0), (top, bottom), (left, right))).astype(np.float32)


def parity_frames(
    images: list[np.ndarray], contract: InputContract, random_count: int = 2, seed: int = 0
) -> np.ndarray:
    """Frames for parity checks: RGB photographs scaled to the frame size and encoded in the contract's
    format, then seeded random bytes (every code value, out-of-range ones included)."""
    size = (contract.width, contract.height)
    encoded = [
        rgb_to_yuv422(
            cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
            contract.layout,
            contract.colorspace,
            contract.color_range,
        )
        for rgb in images
    ]
    noise = np.random.default_rng(seed).integers(0, 256, (random_count, *contract.frame_shape), dtype=np.uint8)
    return np.concatenate([np.stack(encoded), noise]) if encoded else noise

