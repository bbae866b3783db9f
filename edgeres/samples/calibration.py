"""The calibration set: a source's items, shuffled with a seed and cut to a size, read lazily as batches.

When fewer items can be read than the size asks, more samples are derived from the readable ones by flips
and crops (edgeres.samples.reader), and the summary says so.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.samples.encoding import SampleEncoder
from edgeres.samples.reader import SampleCount, batched, read_samples
from edgeres.samples.sources import (
    SampleItem,
    SampleSource,
    Skipped,
    SourceKind,
    check_labels,
    sample_source,
    skipped_note,
)

DEFAULT_SEED = 0
DEFAULT_BATCH = 8


@dataclass
class CalibSummary:
    """What calibration actually used; complete once the batches have been consumed."""

    source: str
    kind: SourceKind
    candidates: int
    requested: int
    count: SampleCount = field(default_factory=SampleCount)

    @property
    def samples(self) -> int:
        return self.count.samples

    @property
    def originals(self) -> int:
        return self.count.originals

    @property
    def derived(self) -> int:
        return self.count.derived

    @property
    def skipped(self) -> list[Skipped]:
        return self.count.skipped

    def describe(self) -> str:
        count = self.count
        text = f"{self.samples} calibration samples from {count.originals} {self.kind.noun}(s) in {self.source}"
        if count.derived:
            reach = f"to reach the {self.requested} asked for"
            text += f" ({count.derived} of them flips/crops of those {count.originals}, {reach})"
        return text + skipped_note(count.skipped)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "candidates": self.candidates,
            "requested": self.requested,
            "samples": self.samples,
            "originals": self.count.originals,
            "derived": self.count.derived,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.count.skipped],
        }


class CalibrationSet:
    """A seeded, lazily read calibration set that yields model-input batches."""

    def __init__(
        self,
        source: Path | SampleSource | None,
        encoder: SampleEncoder,
        calib_size: int,
        seed: int = DEFAULT_SEED,
        raw: FrameFormat | None = None,
        num_classes: int | None = None,
    ) -> None:
        """`source`: a path (folder, raw-frame folder with `raw`, CSV), any SampleSource, or None for the
        shipped photographs; `num_classes`: the model's class count, which labels must stay below."""
        if calib_size < 1:
            raise UserInputError(f"calibration size {calib_size}: must be at least 1")
        self.reader = sample_source(source, raw)
        self.source = self.reader.name
        self.kind = self.reader.kind
        self.encoder, self.seed, self.raw = encoder, seed, raw
        skipped: list[Skipped] = []
        pool = self.reader.items(skipped)
        if num_classes is not None:
            check_labels(self.source, pool, num_classes)
        if not pool:
            what = {SourceKind.YUV_FOLDER: "whole-frame .yuv files", SourceKind.CSV: "rows"}.get(self.kind, "images")
            extra = f" ({len(skipped)} skipped, first: {skipped[0].reason})" if skipped else ""
            raise UserInputError(f"{self.source}: no calibration {what} found{extra}")
        self.pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
        self.calib_size = encoder.round_samples(calib_size)
        self._listing_skipped = list(skipped)
        self.summary = CalibSummary(self.source, self.kind, len(pool), self.calib_size, SampleCount(skipped=skipped))

    def __len__(self) -> int:
        return self.calib_size

    def split_holdout(self, fraction: float, limit: int) -> tuple[CalibrationSet, tuple[SampleItem, ...]]:
        """(a set that calibrates on the rest, the held-out items): the last `fraction` of the shuffled
        candidates (1..`limit` of them) never reach the calibrator. `self` is left as it was."""
        if len(self.pool) < 2:
            raise UserInputError(
                f"{self.source}: {len(self.pool)} calibration item(s); at least 2 are needed to hold one out "
                "for the fidelity report"
            )
        count = min(limit, max(1, round(len(self.pool) * fraction)))
        rest = copy.copy(self)
        rest.pool = self.pool[:-count]
        rest.summary = copy.deepcopy(self.summary)
        rest.summary.candidates = len(rest.pool)
        return rest, tuple(self.pool[-count:])

    def samples(self) -> Iterator[np.ndarray]:
        """Model-input samples (no batch axis), originals first, then derived ones if needed."""
        count = self.summary.count = SampleCount(skipped=list(self._listing_skipped))  # a second pass recounts
        size, seed = self.calib_size, self.seed
        stream = read_samples(
            self.reader, self.pool, self.encoder, size, lambda originals: size - originals,
            lambda index, variant: (seed, index, variant), count,
        )  # fmt: skip
        return (sample.input for sample in stream)

    def batches(self, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
        """Stacked samples, `batch_size` at a time (the last batch may be smaller unless the model fixes it)."""
        return batched(self.samples(), self.encoder.batch_size(batch_size))

    def fingerprint(self) -> str:
        """sha256 over the seed, size, encoding and every candidate file's bytes: changes iff the data can."""
        header = f"{self.kind.value}|{self.seed}|{self.calib_size}|{self.encoder.describe()}|{self.raw}"
        return self.reader.fingerprint(self.pool, header)
