"""Class-balanced sampling: used when classes are imbalanced, and then every class is drawn equally often."""

from __future__ import annotations

import numpy as np

from edgeres.train.options import Balance
from edgeres.train.sampling import balanced_weights, epoch_order, is_imbalanced, uses_balance


def test_auto_balances_only_imbalanced_classes() -> None:
    assert not uses_balance(Balance.AUTO, [10, 12, 11])
    assert uses_balance(Balance.AUTO, [10, 40])
    assert uses_balance(Balance.ON, [10, 10]) and not uses_balance(Balance.OFF, [1, 100])
    assert is_imbalanced([2, 3]) and not is_imbalanced([2, 2])


def test_balanced_draws_visit_classes_equally() -> None:
    labels = [0] * 900 + [1] * 100
    assert np.isclose(balanced_weights(labels)[labels.index(1)] * 100, 0.5)
    drawn = np.asarray(labels)[epoch_order(labels, epoch=0, seed=0, balanced=True)]
    assert len(drawn) == 1000 and abs(np.mean(drawn) - 0.5) < 0.06


def test_plain_epochs_visit_every_sample_once_in_a_seeded_order() -> None:
    labels = [0, 1, 0, 1, 2]
    order = epoch_order(labels, epoch=3, seed=1, balanced=False)
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert np.array_equal(order, epoch_order(labels, epoch=3, seed=1, balanced=False))
    assert not all(np.array_equal(order, epoch_order(labels, epoch=e, seed=1, balanced=False)) for e in range(4, 8))
