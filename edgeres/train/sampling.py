"""Which training samples an epoch visits: all of them once, or class-balanced draws when classes are imbalanced.

The order of every epoch follows from (seed, epoch) alone, so a resumed run visits what the uninterrupted
one would have.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgeres.train.options import IMBALANCE_RATIO, Balance


def is_imbalanced(counts: Sequence[int], ratio: float = IMBALANCE_RATIO) -> bool:
    present = [c for c in counts if c > 0]
    return bool(present) and max(present) >= ratio * min(present)


def uses_balance(balance: Balance, counts: Sequence[int]) -> bool:
    return balance is Balance.ON or (balance is Balance.AUTO and is_imbalanced(counts))


def balanced_weights(labels: Sequence[int]) -> np.ndarray:
    """Per-sample draw probabilities that give every class the same total share."""
    labels_array = np.asarray(labels)
    counts = np.bincount(labels_array)
    weights = 1.0 / counts[labels_array]
    return weights / weights.sum()


def epoch_order(labels: Sequence[int], epoch: int, seed: int, balanced: bool) -> np.ndarray:
    """Sample indices for one epoch (as many as there are samples): a permutation, or balanced draws."""
    rng = np.random.default_rng((seed, 1, epoch))
    if not balanced:
        return rng.permutation(len(labels))
    return rng.choice(len(labels), size=len(labels), replace=True, p=balanced_weights(labels))
