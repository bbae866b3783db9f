"""The resize plan of one input contract (crop, box pre-filter, filter taps, padding) and the colour maps
that the fused graph and the host reference both apply."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from edgeres.frames.contract import InputContract, ResizeMode
from edgeres.frames.normalization import IMAGENET_MEAN, IMAGENET_STD
from edgeres.frames.yuv import (
    PACKED_ROLES,
    color_conversion,
)
from edgeres.frontend.filters import sparse_taps, triangle_matrix

PLANAR_ROLES = ("y0", "y1", "u", "v")


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
    boxed: bool  # box pre-filter across columns: every column of a box has the same horizontal weight
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
    # Whole boxes, placed on the frame's box grid (moves the window by less than one box) so the
    # graph can box the whole frame and crop the small result instead of copying a crop of the frame.
    top = (top + (rows - trimmed_rows) // 2) // fy * fy
    left = (left + (cols - trimmed_cols) // 2) // (2 * fxp) * (2 * fxp)
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
    pad = (pad_h // 2, pad_w // 2, pad_h - pad_h // 2, pad_w - pad_w // 2)
    geometry = (top, left, rows, cols, fy, fxp, out_h, out_w, pad, roles, boxed)
    return ResizePlan(*geometry, h_index, h_weight, v_index, v_weight[0], dense_v, dense_h)


def color_affine(contract: InputContract, roles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Weights [3, 4] and bias [3]: filtered channel sums -> ImageNet-normalised RGB."""
    conv = color_conversion(contract.colorspace, contract.color_range)
    component = {"y0": 0, "y1": 0, "u": 1, "v": 2}
    scale = 1.0 / (255.0 * IMAGENET_STD.astype(np.float64))
    weight = np.stack([conv.to_rgb[:, component[r]] for r in roles], axis=1) * scale[:, None]
    bias = -(conv.to_rgb @ conv.offset) * scale - IMAGENET_MEAN / IMAGENET_STD.astype(np.float64)
    return weight.astype(np.float32), bias.astype(np.float32)


def folded_color(contract: InputContract, plan: ResizePlan) -> tuple[np.ndarray, np.ndarray] | None:
    """Weights [3, 4] (per role) and bias [3] mapping box sums straight to normalised RGB box sums, or None.

    Folding needs one shared horizontal filter for all roles: true for packed layouts on boxed plans,
    where Y0 and Y1 of a pair fall in the same box and chroma (one sample per pair) sees twice the
    per-column weight. The filters then scale a constant by 1 / (2 fxp fy), so the bias is scaled up by that.
    """
    if not (contract.layout.packed and plan.boxed):
        return None
    weight, bias = color_affine(contract, plan.roles)
    chroma = np.array([2.0 if role in ("u", "v") else 1.0 for role in plan.roles])
    box_bias = bias.astype(np.float64) * (2 * plan.fxp * plan.fy)
    return (weight.astype(np.float64) * chroma).astype(np.float32), box_bias.astype(np.float32)


def filter_weights(plan: ResizePlan, folded: bool) -> np.ndarray:
    """Horizontal tap weights [C, out_w, K]: one per role, or when colour is folded the one row all share (Y0's)."""
    if not folded:
        return plan.h_weight
    shared = plan.roles.index("y0")
    return plan.h_weight[shared : shared + 1]


def clip_bounds() -> tuple[np.ndarray, np.ndarray]:
    """RGB 0 and 255 in normalised units, per channel."""
    return (-IMAGENET_MEAN / IMAGENET_STD).astype(np.float32), ((1 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)

