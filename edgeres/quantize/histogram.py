"""Streaming |x| histograms and the four ways of turning one into a symmetric INT8 range (amax).

A `StreamingHistogram` keeps a fixed number of bins over [0, range) where `range` is always a power
of two. When a larger value arrives the range doubles and neighbouring bin pairs are summed; because
bin widths are powers of two this re-binning is exact (the counts equal those of histogramming all the
data at the final range in one go) and memory stays flat however many samples stream through.
Exact zeros (most of a ReLU output) are counted apart: they quantize without error at any scale;
percentile counts them, entropy replaces bin 0 as NVIDIA's pytorch-quantization does (see amax_entropy).

Each algorithm is a function `(histogram, options) -> amax`, registered in `ALGORITHMS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from edgeres.errors import UserInputError
from edgeres.quantize.grid import INT8_MAX

DEFAULT_BINS = 4096  # range <= 2 * max, so at least 2048 bins cover [0, max] (TensorRT's entropy uses 2048)
ENTROPY_LEVELS = 128  # TensorRT's entropy calibration quantizes the reference histogram into 128 levels
ENTROPY_START_BIN = 128
MSE_COARSE_CANDIDATES = 256


class CalibAlgo(str, Enum):
    """How a tensor's histogram becomes its symmetric amax."""

    MAX = "max"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
    MSE = "mse"


@dataclass(frozen=True)
class CalibOptions:
    """Algorithm parameters; part of the calibration cache key."""

    percentile: float = 99.99
    num_bins: int = DEFAULT_BINS

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")
        if self.num_bins < 2 * ENTROPY_START_BIN or self.num_bins & (self.num_bins - 1):
            raise ValueError(f"num_bins must be a power of two >= {2 * ENTROPY_START_BIN}, got {self.num_bins}")


class _ScratchBuffers:
    """Work arrays reused across calls: fresh large temporaries would cost a page fault per 4 KiB."""

    def __init__(self) -> None:
        self.scaled = np.empty(0, np.float32)
        self.index = np.empty(0, np.intp)

    def buffers(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if self.scaled.size < size:
            self.scaled = np.empty(size, np.float32)
            self.index = np.empty(size, np.intp)
        return self.scaled[:size], self.index[:size]

    def release(self) -> None:
        self.__init__()  # type: ignore[misc]


_SCRATCH = _ScratchBuffers()  # one calibration pass at a time per process; not shared across threads


class StreamingHistogram:
    """Histogram of |x| with `num_bins` bins over [0, 2**exponent), plus exact-zero count and max."""

    def __init__(self, num_bins: int = DEFAULT_BINS) -> None:
        self.num_bins = num_bins
        self.counts = np.zeros(num_bins, dtype=np.int64)  # non-zero values only
        self.zeros = 0
        self.amax = 0.0
        self.exponent: int | None = None  # range = 2**exponent; None until a non-zero value is seen

    @property
    def range(self) -> float:
        return 0.0 if self.exponent is None else math.ldexp(1.0, self.exponent)

    @property
    def bin_width(self) -> float:
        return self.range / self.num_bins

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zeros

    @property
    def nbytes(self) -> int:
        """Memory held by the statistics: constant, whatever the number of samples."""
        return int(self.counts.nbytes)

    def _grow_to(self, exponent: int) -> None:
        """Double the range until it is 2**exponent, merging bin pairs (exact)."""
        if self.exponent is None:
            self.exponent = exponent
            return
        while self.exponent < exponent:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts[: self.num_bins // 2] = merged
            self.counts[self.num_bins // 2 :] = 0
            self.exponent += 1

    @staticmethod
    def exponent_for(value: float) -> int:
        """Smallest e with value < 2**e (strictly, so value never lands past the last bin)."""
        _mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= mantissa < 1
        return exponent

    def add(self, values: np.ndarray) -> None:
        """Fold a batch of activations into the histogram (about 3 ns per value on one core)."""
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        if flat.size == 0:
            return
        high, low = float(flat.max()), float(flat.min())
        if not (math.isfinite(high) and math.isfinite(low)):
            raise ValueError("activation contains inf or NaN")
        peak = max(high, -low)
        nonzero = int(np.count_nonzero(flat))
        self.zeros += flat.size - nonzero
        if nonzero == 0:
            return
        self.amax = max(self.amax, peak)
        needed = self.exponent_for(peak)
        if self.exponent is None or needed > self.exponent:
            self._grow_to(needed)
        assert self.exponent is not None
        # bins per unit is a power of two, so the product is exact and truncation gives the exact bin.
        per_unit = np.float32(math.ldexp(1.0, -self.exponent) * self.num_bins)
        scaled, index = _SCRATCH.buffers(flat.size)
        if low < 0:  # post-ReLU tensors (most of them) skip the abs pass
            np.abs(flat, out=scaled)
            np.multiply(scaled, per_unit, out=scaled)
        else:
            np.multiply(flat, per_unit, out=scaled)
        index[...] = scaled  # float -> int truncates toward zero: floor for these non-negative values
        counts = np.bincount(index, minlength=self.num_bins)
        counts[0] -= flat.size - nonzero  # the zeros were counted apart
        self.counts += counts

    def merge(self, other: StreamingHistogram) -> None:
        """Add another histogram of the same bin count (e.g. from another worker); exact."""
        if other.num_bins != self.num_bins:
            raise ValueError(f"cannot merge histograms of {other.num_bins} and {self.num_bins} bins")
        self.zeros += other.zeros
        self.amax = max(self.amax, other.amax)
        if other.exponent is None:
            return
        shifted = StreamingHistogram(other.num_bins)
        shifted.counts = other.counts.copy()
        shifted.exponent = other.exponent
        if self.exponent is None or self.exponent < other.exponent:
            self._grow_to(other.exponent)
        assert self.exponent is not None
        shifted._grow_to(self.exponent)
        self.counts += shifted.counts


class StreamingMean:
    """Mean over the batch axis of every array added (float64 sum and a count: fixed memory)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, batch: np.ndarray) -> None:
        part = np.asarray(batch).sum(axis=0, dtype=np.float64)
        if self.total is not None and self.total.shape != part.shape:
            raise UserInputError(f"calibration samples change shape: {self.total.shape} then {part.shape}")
        self.total = part if self.total is None else self.total + part
        self.count += len(batch)

    @property
    def mean(self) -> np.ndarray:
        if self.total is None or self.count == 0:
            raise UserInputError("no calibration samples for a mean")
        return self.total / self.count


def amax_max(hist: StreamingHistogram, options: CalibOptions) -> float:
    """The largest |x| seen: nothing is clipped, outliers stretch the scale."""
    return hist.amax


def amax_percentile(hist: StreamingHistogram, options: CalibOptions) -> float:
    """|x| below which `percentile` % of all values (zeros included) lie, interpolated within the bin."""
    total = hist.total
    if total == 0 or hist.exponent is None:
        return hist.amax
    target = total * options.percentile / 100.0
    cumulative = hist.zeros + np.cumsum(hist.counts)
    index = int(np.searchsorted(cumulative, target, side="left"))
    if index >= hist.num_bins:
        return hist.amax
    before = hist.zeros if index == 0 else int(cumulative[index - 1])
    inside = int(hist.counts[index])
    fraction = 0.0 if inside == 0 else max(0.0, (target - before) / inside)
    return min(hist.amax, (index + fraction) * hist.bin_width)


def _trimmed(hist: StreamingHistogram) -> np.ndarray:
    """Counts up to the last non-empty bin, as float64."""
    nonzero = np.flatnonzero(hist.counts)
    return hist.counts[: int(nonzero[-1]) + 1].astype(np.float64) if nonzero.size else np.zeros(0)


def entropy_divergences(
    counts: np.ndarray, levels: int = ENTROPY_LEVELS, start: int = ENTROPY_START_BIN
) -> tuple[np.ndarray, np.ndarray]:
    """KL(P || Q) for every threshold bin i in [start, len(counts)], all at once.

    P is counts[:i] with everything beyond i folded into its last bin; Q is counts[:i] merged into
    `levels` groups, each group's total spread evenly over its non-empty bins (TensorRT's entropy
    calibration as NVIDIA describes it). With prefix sums each candidate costs O(levels).
    Returns (candidate stop bins, divergences); inf where Q has no mass under P.
    """
    n = len(counts)
    stops = np.arange(start, n + 1, dtype=np.int64)
    if stops.size == 0:
        return stops, np.zeros(0)
    prefix = np.concatenate([[0.0], np.cumsum(counts)])
    occupied = np.concatenate([[0], np.cumsum(counts > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.concatenate([[0.0], np.cumsum(np.where(counts > 0, counts * np.log(np.maximum(counts, 1)), 0.0))])
    total = prefix[-1]
    tail = total - prefix[stops]  # mass beyond each candidate, folded into P's last bin
    last = counts[stops - 1]
    p_last = last + tail
    with np.errstate(divide="ignore", invalid="ignore"):
        sum_plogp = plogp[stops - 1] + np.where(p_last > 0, p_last * np.log(np.maximum(p_last, 1e-300)), 0.0)
        edges = (np.arange(levels + 1)[None, :] * stops[:, None] + levels - 1) // levels  # ceil(c * i / levels)
        group_mass = prefix[edges[:, 1:]] - prefix[edges[:, :-1]]
        group_bins = occupied[edges[:, 1:]] - occupied[edges[:, :-1]]
        level = np.where(group_bins > 0, group_mass / np.maximum(group_bins, 1), 1.0)
        log_level = np.log(np.where(group_mass > 0, level, 1.0))
        sum_plogq = np.sum(group_mass * log_level, axis=1) + tail * log_level[:, -1]
        divergence = (sum_plogp - sum_plogq) / total - np.log(total) + np.log(total - tail)
    divergence = np.where((tail > 0) & (last == 0), np.inf, divergence)
    return stops, divergence


def amax_entropy(hist: StreamingHistogram, options: CalibOptions) -> float:
    """Threshold minimising the KL divergence between the clipped and the 128-level distribution.

    Follows NVIDIA's entropy calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017) as
    pytorch-quantization implements it (`_compute_amax_entropy`): candidates from bin 128 on, levels
    spread over the candidate's bins in proportion, the widest of tied minima, amax at the candidate's
    edge, and bin 0 given bin 1's count. That last rule matters: counted as they are, the exact zeros
    of a ReLU output (about half of it) fill bin 0, and spreading that spike over a level's bins costs
    so much that the minimum falls to the first candidate and the range collapses (EfficientNet-Lite0's
    logits lose all fidelity). Remaining differences from the reference, each small on that network:
    2048 to 4096 bins over [0, max] (the reference: 2048 over the first batch's max, grown at that width)
    and proportional levels (the GTC pseudo-code: i // 128 bins per level, the remainder in the last).
    """
    counts = _trimmed(hist)
    if len(counts) <= ENTROPY_START_BIN:
        return hist.amax  # too few occupied bins for clipping to pay off
    counts[0] = counts[1]
    stops, divergence = entropy_divergences(counts)
    if not np.isfinite(divergence).any():
        return hist.amax
    best = np.flatnonzero(divergence == divergence.min())[-1]  # ties: the widest range
    return min(hist.amax, float(stops[best]) * hist.bin_width)


def quantization_mse(counts: np.ndarray, centers: np.ndarray, amaxes: np.ndarray) -> np.ndarray:
    """Mean squared INT8 error of the histogram (values at bin centres) for each candidate amax."""
    step = amaxes[:, None] / INT8_MAX
    quantized = np.minimum(np.round(centers[None, :] / step), INT8_MAX) * step
    return np.sum(counts[None, :] * (centers[None, :] - quantized) ** 2, axis=1) / max(counts.sum(), 1.0)


def amax_mse(hist: StreamingHistogram, options: CalibOptions) -> float:
    """amax minimising the mean squared quantization error: a coarse sweep, then every bin near the best."""
    counts = _trimmed(hist)
    n = len(counts)
    if n <= ENTROPY_START_BIN:
        return hist.amax
    width = hist.bin_width
    centers = (np.arange(n) + 0.5) * width
    coarse = np.unique(np.linspace(ENTROPY_START_BIN, n, MSE_COARSE_CANDIDATES).round().astype(np.int64))
    best = int(coarse[np.argmin(quantization_mse(counts, centers, coarse * width))])
    step = max(1, n // MSE_COARSE_CANDIDATES)
    fine = np.arange(max(1, best - 2 * step), min(n, best + 2 * step) + 1)
    errors = quantization_mse(counts, centers, fine * width)
    return min(hist.amax, float(fine[int(np.argmin(errors))]) * width)


AmaxFunction = Callable[[StreamingHistogram, CalibOptions], float]

ALGORITHMS: dict[CalibAlgo, AmaxFunction] = {
    CalibAlgo.MAX: amax_max,
    CalibAlgo.PERCENTILE: amax_percentile,
    CalibAlgo.ENTROPY: amax_entropy,
    CalibAlgo.MSE: amax_mse,
}


def compute_amax(hist: StreamingHistogram, algo: CalibAlgo, options: CalibOptions | None = None) -> float:
    """The symmetric amax of one tensor by `algo`."""
    return ALGORITHMS[algo](hist, options or CalibOptions())

