"""The held-out set: samples the calibrator never sees, on which every candidate model is judged.

The held-out items are the last share of the seeded shuffle (CalibrationSet.split_holdout), or every row
of a labelled evaluation CSV. A small source (the shipped photographs leave 3) gives a report too noisy
to read, so more samples are derived from the held-out pictures themselves by flips and crops, never
from calibration pictures: the report stays free of anything the calibrator saw, and it says how many
of its samples are derived. The set is read once and kept in memory: every candidate runs on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeres.errors import UserInputError, check_fits_in_memory
from edgeres.samples.encoding import SampleEncoder
from edgeres.samples.reader import SampleCount, read_samples
from edgeres.samples.sources import LabelledCsv, SampleItem, SampleSource, Skipped, check_labels, csv_items

HOLDOUT_FRACTION = 0.25  # of the readable candidates, kept away from the calibrator for the fidelity report
MAX_HOLDOUT = 256
MIN_HOLDOUT_SAMPLES = 12  # fewer held-out pictures than this get flips/crops of themselves added
_HOLDOUT_STREAM = 1  # keeps the held-out variants' random crops apart from the calibration set's

HeldOutBatch = tuple[np.ndarray, np.ndarray | None]  # (model inputs, integer labels or None)


@dataclass(frozen=True)
class Holdout:
    """Held-out items of a source and how many derived samples (flips/crops of those items) join them."""

    source: SampleSource
    items: tuple[SampleItem, ...]
    derived: int = 0
    every_row: bool = False  # a fixed evaluation set: a sample that cannot be read is refused, not skipped

    @classmethod
    def of(cls, source: SampleSource, items: tuple[SampleItem, ...], min_samples: int = MIN_HOLDOUT_SAMPLES) -> Holdout:
        return cls(source, items, max(0, min_samples - len(items)) if items else 0)

    @property
    def labelled(self) -> bool:
        return bool(self.items) and all(item.label is not None and item.label.strip().isdigit() for item in self.items)

    @property
    def samples(self) -> int:
        return len(self.items) + self.derived

    def describe(self) -> str:
        text = f"{self.samples} held-out samples"
        if self.derived:
            text += f" ({len(self.items)} originals + {self.derived} flips/crops of them)"
        return text

    def load(self, encoder: SampleEncoder, batch_size: int, seed: int = 0) -> HeldOutSet:
        """Read and encode every sample (originals, then derived), in batches, kept in memory."""
        count = SampleCount()
        stream = read_samples(
            self.source, self.items, encoder, len(self.items), lambda _: self.derived,
            lambda index, variant: (seed, _HOLDOUT_STREAM, index, variant), count,
        )  # fmt: skip
        size = encoder.batch_size(batch_size)
        batches: list[HeldOutBatch] = []
        pending: list[np.ndarray] = []
        labels: list[int] = []
        held = 0
        for sample in stream:
            pending.append(sample.input)
            labels.extend([int(str(sample.label))] if self.labelled else [])
            held += sample.input.nbytes
            check_fits_in_memory(2 * held, "keeping the held-out samples for every candidate model")
            if len(pending) == size:
                batches.append(_batch(pending, labels, self.labelled))
        if pending:
            batches.append(_batch(pending, labels, self.labelled))
        if self.every_row and count.skipped:
            first = count.skipped[0]
            raise UserInputError(
                f"{self.source.name}: {len(count.skipped)} of {len(self.items)} rows cannot be read, e.g. "
                f"{first.path}: {first.reason}; every row is evaluated"
            )
        if not batches:
            raise UserInputError(f"{self.source.name}: none of the held-out samples could be read")
        return HeldOutSet(self, tuple(batches), tuple(count.skipped))


def _batch(pending: list[np.ndarray], labels: list[int], labelled: bool) -> HeldOutBatch:
    batch = (np.stack(pending), np.array(labels) if labelled else None)
    pending.clear()
    labels.clear()
    return batch


@dataclass(frozen=True)
class HeldOutSet:
    """The held-out samples as the model takes them, with their labels when every item has one."""

    holdout: Holdout
    batches: tuple[HeldOutBatch, ...]
    skipped: tuple[Skipped, ...]

    def as_dict(self) -> dict[str, object]:
        holdout = self.holdout
        return {
            "samples": holdout.samples,
            "originals": len(holdout.items),
            "derived": holdout.derived,
            "labelled": holdout.labelled,
            "paths": [item.describe() for item in holdout.items],
            "skipped": sorted({f"{s.path}: {s.reason}" for s in self.skipped}),
        }


def evaluation_holdout(csv_path: Path, num_classes: int | None) -> Holdout:
    """Every row of a labelled `path,label` CSV, once, none derived: a fixed evaluation set (e.g. the
    validation split of `edgeres finetune`), kept apart from whatever calibrates.

    A row naming a missing file, or a picture named twice, is refused: the report says every row was
    evaluated once, so none may drop out silently or weigh twice."""
    skipped: list[Skipped] = []
    items = csv_items(Path(csv_path), skipped)
    if skipped:
        raise UserInputError(f"{csv_path}: {skipped[0].reason}")
    if not items:
        raise UserInputError(f"{csv_path}: no rows to evaluate")
    if items[0].label is None:
        raise UserInputError(f"{csv_path}: an evaluation CSV needs a class number on every row")
    missing = [item for item in items if not item.path.is_file()]
    if missing:
        raise UserInputError(
            f"{csv_path}: {len(missing)} of {len(items)} rows name no file, e.g. {str(missing[0].path)!r}; "
            "every row is evaluated"
        )
    seen: dict[Path, int] = {}
    for row, item in enumerate(items, 1):
        first = seen.setdefault(item.path.resolve(), row)
        if first != row:
            raise UserInputError(
                f"{csv_path}: {str(item.path)!r} is listed twice (rows {first} and {row}); "
                "each picture is evaluated once"
            )
    if num_classes is not None:
        check_labels(Path(csv_path), items, num_classes)
    return Holdout(LabelledCsv(Path(csv_path)), tuple(items), 0, every_row=True)


def check_held_out(holdout: Holdout, calibration_items: Sequence[SampleItem], calibration_source: str) -> None:
    """Refuse held-out samples that the calibrator also sees (the same file, and frame, on both sides)."""
    calibrating = {(item.path.resolve(), item.frame) for item in calibration_items}
    shared = [item for item in holdout.items if (item.path.resolve(), item.frame) in calibrating]
    if shared:
        raise UserInputError(
            f"{len(shared)} of the {len(holdout.items)} evaluation samples also calibrate the model (from "
            f"{calibration_source}, e.g. {shared[0].describe()!r}): a held-out sample must never reach the "
            "calibrator; evaluate on other pictures, or calibrate on another folder"
        )
