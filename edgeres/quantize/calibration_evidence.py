"""What a calibration saw, kept small enough for the build summary: per tensor a coarse |x| histogram, where each
algorithm would put the range, the range chosen, and the SQNR of the tensor alone quantized at that range.

The build report draws these for the layers that lost the most; the SQNR here is the activation's own rounding
and clipping error from its histogram (values at bin centres), not the error accumulated through the network,
which the held-out per-layer pass measures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeres.artifacts.fields import Fields, json_number
from edgeres.errors import UserInputError
from edgeres.quantize.fidelity import sqnr_db
from edgeres.quantize.histogram import CalibAlgo, CalibOptions, StreamingHistogram, compute_amax, quantization_mse

EVIDENCE_BINS = 128


@dataclass(frozen=True)
class TensorEvidence:
    """One calibrated tensor: `counts` of non-zero |x| in EVIDENCE_BINS equal bins over [0, top)."""

    tensor: str
    top: float
    counts: tuple[int, ...]
    zeros: int
    max_abs: float
    ranges: Mapping[CalibAlgo, float]  # where each algorithm would put the range
    chosen: float  # the range the models use
    sqnr_db: float  # the tensor alone, quantized to INT8 at `chosen`

    def as_dict(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "counts": list(self.counts),
            "zeros": self.zeros,
            "max_abs": self.max_abs,
            "ranges": {algo.value: amax for algo, amax in self.ranges.items()},
            "chosen": self.chosen,
            "sqnr_db": json_number(self.sqnr_db),
        }

    @classmethod
    def from_dict(cls, tensor: str, value: object, where: str) -> TensorEvidence:
        fields = Fields.of(value, f"{where}.{tensor}")
        counts = fields.items("counts", int)
        ranges = fields.mapping("ranges", float) or {}
        sqnr = fields.data.get("sqnr_db")
        try:
            return cls(
                tensor=tensor,
                top=fields.require("top", float),
                counts=counts or (),
                zeros=fields.require("zeros", int),
                max_abs=fields.require("max_abs", float),
                ranges={CalibAlgo(algo): amax for algo, amax in ranges.items()},
                chosen=fields.require("chosen", float),
                sqnr_db=float(sqnr) if isinstance(sqnr, int | float | str) else math.nan,
            )
        except ValueError as exc:
            raise UserInputError(f"{fields.where}: not calibration evidence ({exc})") from None


def _coarse(hist: StreamingHistogram) -> tuple[float, np.ndarray]:
    """The occupied part of the histogram summed into EVIDENCE_BINS bins: (top of the last bin, counts)."""
    occupied = np.flatnonzero(hist.counts)
    if occupied.size == 0:
        return 0.0, np.zeros(EVIDENCE_BINS, np.int64)
    used = int(occupied[-1]) + 1
    group = -(-used // EVIDENCE_BINS)
    padded = np.zeros(group * EVIDENCE_BINS, np.int64)
    padded[:used] = hist.counts[:used]
    return group * EVIDENCE_BINS * hist.bin_width, padded.reshape(EVIDENCE_BINS, group).sum(axis=1)


def histogram_sqnr(hist: StreamingHistogram, amax: float) -> float:
    """SQNR of |x| quantized to symmetric INT8 at `amax`, from the full histogram (zeros quantize exactly)."""
    if hist.exponent is None or amax <= 0:
        return math.inf
    counts = hist.counts.astype(np.float64)
    centers = (np.arange(hist.num_bins) + 0.5) * hist.bin_width
    noise = float(quantization_mse(counts, centers, np.array([amax]))[0]) * counts.sum()
    return sqnr_db(float(np.sum(counts * centers**2)), noise)


def tensor_evidence(tensor: str, hist: StreamingHistogram, chosen: float, options: CalibOptions) -> TensorEvidence:
    top, counts = _coarse(hist)
    return TensorEvidence(
        tensor=tensor,
        top=top,
        counts=tuple(int(c) for c in counts),
        zeros=hist.zeros,
        max_abs=hist.amax,
        ranges={algo: compute_amax(hist, algo, options) for algo in CalibAlgo},
        chosen=chosen,
        sqnr_db=histogram_sqnr(hist, chosen),
    )


def calibration_evidence(
    histograms: Mapping[str, StreamingHistogram], ranges: Mapping[str, float], options: CalibOptions
) -> dict[str, TensorEvidence]:
    """Evidence for every calibrated tensor that has a histogram (max calibration keeps none)."""
    return {
        name: tensor_evidence(name, hist, ranges[name], options)
        for name, hist in histograms.items()
        if name in ranges and hist.exponent is not None
    }


def evidence_json(evidence: Mapping[str, TensorEvidence]) -> dict[str, Any]:
    return {name: item.as_dict() for name, item in evidence.items()}


def read_evidence(value: object, where: str) -> dict[str, TensorEvidence]:
    """The one decoder of the summary's calibration_evidence section."""
    fields = Fields.of(value, where)
    return {name: TensorEvidence.from_dict(name, item, where) for name, item in fields.data.items()}
