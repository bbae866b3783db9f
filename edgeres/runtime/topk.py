"""Logits -> the best classes per sample with their softmax probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeres.artifacts.class_names import ClassNames
from edgeres.errors import UserInputError


@dataclass(frozen=True)
class TopK:
    """Best `k` classes per sample: indices and softmax probabilities, both [N, k], best first."""

    indices: np.ndarray
    probabilities: np.ndarray


def top_k(logits: np.ndarray, k: int = 5) -> TopK:
    """Sort each row of logits [N, C]; probabilities are the softmax over all C classes."""
    if logits.ndim != 2:
        raise UserInputError(f"logits must be [N, classes], got shape {logits.shape}")
    if not 1 <= k <= logits.shape[1]:
        raise UserInputError(f"top-k: k={k} is outside 1..{logits.shape[1]} classes")
    wide = logits.astype(np.float64)
    exp = np.exp(wide - wide.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    order = np.argsort(-wide, axis=1, kind="stable")[:, :k]
    return TopK(order, np.take_along_axis(probs, order, axis=1).astype(np.float32))


@dataclass(frozen=True)
class Prediction:
    """One class by name, with its softmax probability."""

    name: str
    probability: float


def named(best: TopK, row: int, names: ClassNames) -> tuple[Prediction, ...]:
    """Row `row` of `best` with the classes named, best first."""
    return tuple(
        Prediction(names[int(i)], float(p)) for i, p in zip(best.indices[row], best.probabilities[row], strict=True)
    )
