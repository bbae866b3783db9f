"""Resize filter maths of the front-end: antialiased triangle weights and their sparse taps (numpy only)."""

from __future__ import annotations

import numpy as np


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
    np.add.at(
        matrix, (np.repeat(np.arange(n_out), columns.shape[1]), np.clip(columns, 0, n_in - 1).ravel()), weights.ravel()
    )
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
        weights[:, row, int(cols.sum()) :] = 0.0
    return index, weights.astype(np.float32)

