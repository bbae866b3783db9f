"""The held-out fidelity set of `edgeres build`: samples the calibrator never sees.

The held-out items are the last share of the seeded shuffle (CalibrationSet.split_holdout). A small
source (the shipped photographs leave 3) gives a report too noisy to read, so more samples are derived
from the held-out pictures themselves by flips and crops, never from calibration pictures: the report
stays free of anything the calibrator saw, and it says how many of its samples are derived.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.images import read_rgb
from edgeres.frames.yuv import open_yuv
from edgeres.quantize.calibration_data import CalibItem, Skipped, check_labels, csv_items
from edgeres.quantize.encoding import SampleEncoder, derive_variant

HOLDOUT_FRACTION = 0.25  # of the readable candidates, kept away from the calibrator for the fidelity report
MAX_HOLDOUT = 256
MIN_HOLDOUT_SAMPLES = 12  # fewer held-out pictures than this get flips/crops of themselves added
_HOLDOUT_STREAM = 1  # keeps the held-out variants' random crops apart from the calibration set's


@dataclass(frozen=True)
class Holdout:
    """Held-out items and how many derived samples (flips/crops of those items) join them."""

    items: tuple[CalibItem, ...]
    derived: int = 0

    @classmethod
    def of(cls, items: tuple[CalibItem, ...], min_samples: int = MIN_HOLDOUT_SAMPLES) -> Holdout:
        return cls(items, max(0, min_samples - len(items)) if items else 0)

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

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "originals": len(self.items),
            "derived": self.derived,
            "labelled": self.labelled,
            "paths": [str(item.path) + (f"#{item.frame}" if item.frame is not None else "") for item in self.items],
        }


def evaluation_holdout(csv_path: Path, num_classes: int | None) -> Holdout:
    """Every row of a labelled `path,label` CSV, once, none derived: a fixed evaluation set (e.g. the
    validation split of `edgeres finetune`), kept apart from whatever calibrates."""
    skipped: list[Skipped] = []
    items = csv_items(Path(csv_path), skipped)
    if skipped:
        raise UserInputError(f"{csv_path}: {skipped[0].reason}")
    if not items:
        raise UserInputError(f"{csv_path}: no rows to evaluate")
    if items[0].label is None:
        raise UserInputError(f"{csv_path}: an evaluation CSV needs a class number on every row")
    if num_classes is not None:
        check_labels(Path(csv_path), items, num_classes)
    return Holdout(tuple(items), 0)


def _read(item: CalibItem, encoder: SampleEncoder, raw: FrameFormat | None) -> tuple[np.ndarray, np.ndarray]:
    """(model-input sample, uint8 RGB picture for deriving variants) of one held-out item."""
    if item.frame is not None and raw is not None:
        frame = open_yuv(item.path, raw.layout, raw.width, raw.height).frame(item.frame)
        return encoder.from_frame(frame, raw.layout), encoder.frame_to_rgb(frame, raw.layout)
    rgb = read_rgb(item.path)
    return encoder.from_rgb(rgb), rgb


def holdout_batches(
    holdout: Holdout,
    encoder: SampleEncoder,
    raw: FrameFormat | None,
    batch_size: int,
    skipped: list[str],
    seed: int = 0,
) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Encoded held-out samples (originals, then derived) in batches, with integer labels when all have one."""
    samples: list[np.ndarray] = []
    labels: list[int] = []
    labelled = holdout.labelled
    size = encoder.batch_size(batch_size)

    def flush() -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        batch = np.stack(samples)
        out = (batch, np.array(labels)) if labelled else batch
        samples.clear()
        labels.clear()
        return out

    pictures: list[tuple[int, np.ndarray, CalibItem]] = []
    for index, item in enumerate(holdout.items):
        try:
            sample, rgb = _read(item, encoder, raw)
        except (UserInputError, OSError, ValueError) as exc:
            skipped.append(f"{item.path}: {exc}")
            continue
        if holdout.derived:  # the pictures are kept only to derive variants from
            pictures.append((index, rgb, item))
        samples.append(sample)
        labels.extend([int(str(item.label))] if labelled else [])
        if len(samples) == size:
            yield flush()
    derived, variant = 0, 1
    while pictures and derived < holdout.derived:
        for index, rgb, item in pictures:
            if derived == holdout.derived:
                break
            rng = np.random.default_rng((seed, _HOLDOUT_STREAM, index, variant))
            samples.append(encoder.from_rgb(derive_variant(rgb, variant, rng)))
            labels.extend([int(str(item.label))] if labelled else [])
            derived += 1
            if len(samples) == size:
                yield flush()
        variant += 1
    if samples:
        yield flush()

