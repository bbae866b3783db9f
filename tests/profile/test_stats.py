"""Latency statistics against sample sets whose answers are published, and against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeres.errors import UserInputError
from edgeres.profile.stats import LatencyStats, frames_per_second, percentile


def test_percentile_wikipedia_worked_example() -> None:
    # Wikipedia "Percentile", linear interpolation between closest ranks, C = 1 variant (the one
    # Excel PERCENTILE.INC and numpy use): for 15, 20, 35, 40, 50 the 40th percentile is 29.
    sample = [15, 20, 35, 40, 50]
    assert percentile(sample, 40) == pytest.approx(29.0)
    assert percentile(sample, 0) == 15.0
    assert percentile(sample, 50) == 35.0
    assert percentile(sample, 100) == 50.0


def test_percentile_matches_r_type7_on_one_to_ten() -> None:
    # R: quantile(1:10, c(0.5, 0.9, 0.95, 0.99), type = 7) -> 5.5, 9.1, 9.55, 9.91
    sample = list(range(10, 0, -1))  # order must not matter
    assert percentile(sample, 50) == pytest.approx(5.5)
    assert percentile(sample, 90) == pytest.approx(9.1)
    assert percentile(sample, 95) == pytest.approx(9.55)
    assert percentile(sample, 99) == pytest.approx(9.91)


@given(
    st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=200),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_agrees_with_numpy_linear(sample: list[float], p: float) -> None:
    expected = float(np.percentile(np.asarray(sample), p, method="linear"))
    assert percentile(sample, p) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_sample_standard_deviation_and_cv() -> None:
    # Mean 5; population std 2; sample std sqrt(32 / 7) = 2.13809...
    stats = LatencyStats.from_ms([2, 4, 4, 4, 5, 5, 7, 9])
    assert stats.mean_ms == 5.0
    assert stats.std_ms == pytest.approx(math.sqrt(32 / 7))
    assert stats.cv == pytest.approx(math.sqrt(32 / 7) / 5)
    assert (stats.min_ms, stats.max_ms, stats.count) == (2.0, 9.0, 8)
    assert stats.median_ms == 4.5
    assert stats.is_unstable(0.10)
    assert not stats.is_unstable(0.5)


def test_seconds_are_converted_to_milliseconds() -> None:
    stats = LatencyStats.from_seconds([0.001, 0.002, 0.003])
    assert stats.median_ms == pytest.approx(2.0)
    assert stats.p90_ms == pytest.approx(2.8)


def test_single_sample_has_zero_spread() -> None:
    stats = LatencyStats.from_ms([3.5])
    assert stats.std_ms == 0.0 and stats.cv == 0.0
    assert stats.p99_ms == stats.min_ms == 3.5


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -2.0], [float("inf")]])
def test_bad_samples_are_refused(bad: list[float]) -> None:
    with pytest.raises(UserInputError):
        LatencyStats.from_ms(bad)


@pytest.mark.parametrize("p", [-1.0, 100.5, float("nan")])
def test_percentile_outside_range_is_refused(p: float) -> None:
    with pytest.raises(UserInputError, match="percentile"):
        percentile([1.0, 2.0], p)


def test_frames_per_second() -> None:
    assert frames_per_second(64, 2.0) == 32.0
    with pytest.raises(UserInputError):
        frames_per_second(1, 0.0)
