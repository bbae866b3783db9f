"""Latency statistics with stated definitions, so numbers from two runs or two tools can be compared.

Percentiles use Hyndman & Fan (1996) definition 7: the sample is sorted, the p-th percentile sits at
zero-based rank h = (n - 1) * p / 100 and is interpolated linearly between the two neighbouring order
statistics. It is numpy's default (`method="linear"`), R's default `quantile(type = 7)` and Excel's
PERCENTILE.INC. The standard deviation is the sample one (divisor n - 1), so one noisy run is not
flattered; the coefficient of variation (CV) is that deviation over the mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeres.errors import UserInputError

PERCENTILE_DEFINITION = "Hyndman-Fan type 7 (numpy 'linear', R type 7, Excel PERCENTILE.INC)"
STD_DEFINITION = "sample standard deviation (divisor n-1); 0 for a single sample"


# A run whose per-frame latency varies by more than this (std / mean) is flagged as unstable:
# other load on the machine, frequency scaling or thermal throttling. 10% is a common rule of thumb
# for benchmark repeatability; the CLI lets users change it.
DEFAULT_CV_WARN = 0.10


def percentile(samples: Sequence[float] | np.ndarray, p: float) -> float:
    """The p-th percentile (0..100) of `samples` by Hyndman-Fan definition 7 (see module docstring)."""
    values = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if values.size == 0:
        raise UserInputError("percentile of an empty sample")
    if not 0.0 <= p <= 100.0 or math.isnan(p):
        raise UserInputError(f"percentile {p} is outside 0..100")
    rank = (values.size - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, values.size - 1)
    fraction = rank - low
    return float(values[low] + fraction * (values[high] - values[low]))


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-call latencies in milliseconds."""

    count: int
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    cv: float

    @classmethod
    def from_ms(cls, samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
        values = np.asarray(samples_ms, dtype=np.float64).ravel()
        if values.size == 0:
            raise UserInputError("no latency samples: the run measured nothing")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise UserInputError("latency samples must be finite and non-negative")
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return cls(
            count=int(values.size),
            min_ms=float(values.min()),
            mean_ms=mean,
            median_ms=percentile(values, 50),
            p90_ms=percentile(values, 90),
            p95_ms=percentile(values, 95),
            p99_ms=percentile(values, 99),
            max_ms=float(values.max()),
            std_ms=std,
            cv=std / mean if mean > 0 else 0.0,
        )

    @classmethod
    def from_seconds(cls, samples_s: Sequence[float] | np.ndarray) -> LatencyStats:
        return cls.from_ms(np.asarray(samples_s, dtype=np.float64) * 1e3)

    def is_unstable(self, cv_threshold: float = DEFAULT_CV_WARN) -> bool:
        return self.cv > cv_threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def frames_per_second(frames: int, seconds: float) -> float:
    """Throughput: frames completed over the wall-clock time they took."""
    if seconds <= 0:
        raise UserInputError(f"throughput over a non-positive duration ({seconds} s)")
    return frames / seconds
