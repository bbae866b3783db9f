"""Counts as a person should read them on a few hundred held-out samples: a proportion with its uncertainty."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal quantile of 0.975


@dataclass(frozen=True)
class Proportion:
    """`hits` of `trials`, with the Wilson score interval (which, unlike the normal approximation, stays inside
    0..1 and is honest at 0 or all hits, the usual case for INT8 against FP32)."""

    hits: int
    trials: int
    low: float
    high: float

    @property
    def value(self) -> float:
        return self.hits / self.trials if self.trials else math.nan

    def describe(self) -> str:
        if not self.trials:
            return "no samples"
        return f"{self.value:.1%} ({self.hits}/{self.trials}; 95% CI {self.low:.1%}-{self.high:.1%})"


def wilson(hits: int, trials: int, z: float = Z_95) -> Proportion:
    """The Wilson score interval of `hits` successes in `trials`."""
    if not 0 <= hits <= trials:
        raise ValueError(f"{hits} successes of {trials} trials")
    if trials == 0:
        return Proportion(0, 0, 0.0, 1.0)
    p, n, z2 = hits / trials, trials, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if hits == 0 else max(0.0, centre - half)  # exact at the ends, where rounding would leave 1e-17
    high = 1.0 if hits == trials else min(1.0, centre + half)
    return Proportion(hits, trials, low, high)


def from_fraction(fraction: float, trials: int) -> Proportion:
    """A recorded fraction of `trials` (e.g. top-1 agreement) back as counts, rounded to the whole sample."""
    return wilson(round(fraction * trials), trials)
