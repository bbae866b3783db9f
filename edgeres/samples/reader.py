"""The one sample reader: items of a source -> encoded model-input samples, originals first, then samples
derived from the readable originals by flips and crops when a set asks for more than it has.

Calibration and the held-out set both read through `read_samples`; they differ only in how many samples
they want and in the random stream their crops draw from (so the two never share a crop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgeres.errors import UserInputError
from edgeres.samples.encoding import SampleEncoder
from edgeres.samples.sources import Picture, SampleItem, SampleSource, Skipped, Unreadable

DERIVED_CROP_SIDE = (0.55, 0.9)  # derived samples crop this fraction of each side


def derive_variant(rgb: np.ndarray, variant: int, rng: np.random.Generator) -> np.ndarray:
    """Variant 1 is the mirror image; later ones are random crops, mirrored on odd variants."""
    if variant == 1:
        return np.ascontiguousarray(rgb[:, ::-1])
    h, w = rgb.shape[:2]
    side = rng.uniform(*DERIVED_CROP_SIDE)
    crop_h, crop_w = max(16, round(h * side)), max(16, round(w * side))
    top, left = int(rng.integers(0, max(1, h - crop_h + 1))), int(rng.integers(0, max(1, w - crop_w + 1)))
    crop = rgb[top : top + crop_h, left : left + crop_w]
    return np.ascontiguousarray(crop[:, ::-1] if variant % 2 else crop)


@dataclass
class SampleCount:
    """What a pass of `read_samples` used; complete once its samples have been consumed."""

    originals: int = 0
    derived: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.originals + self.derived


@dataclass(frozen=True)
class Sample:
    """One encoded model input (no batch axis) and its class number when the item has one."""

    input: np.ndarray
    label: str | None


def encode(picture: Picture, encoder: SampleEncoder) -> np.ndarray:
    if picture.layout is not None:
        return encoder.from_frame(picture.pixels, picture.layout)
    return encoder.from_rgb(picture.pixels)


def as_rgb(picture: Picture, encoder: SampleEncoder) -> np.ndarray:
    """The picture as uint8 RGB, to derive variants from (a frame decoded with the camera's colours)."""
    return picture.pixels if picture.layout is None else encoder.frame_to_rgb(picture.pixels, picture.layout)


def read_samples(
    source: SampleSource,
    items: Sequence[SampleItem],
    encoder: SampleEncoder,
    max_originals: int,
    derived: Callable[[int], int],
    rng_key: Callable[[int, int], tuple[int, ...]],
    count: SampleCount,
) -> Iterator[Sample]:
    """Up to `max_originals` readable items in order, then `derived(originals read)` variants of them.

    Variants go round the readable items (index in `items`), variant 1, 2, ... each round, the crop of
    (index, variant) drawn from `np.random.default_rng(rng_key(index, variant))`. Unreadable items are
    counted in `count.skipped`; with none readable there is nothing to derive from, which is an error.
    """
    readable: list[int] = []
    for index, item in enumerate(items):
        if count.originals == max_originals:
            break
        try:
            picture = source.read(item)
        except Unreadable as exc:
            count.skipped.append(Skipped(item.path, str(exc)))
            continue
        readable.append(index)
        count.originals += 1
        yield Sample(encode(picture, encoder), item.label)
    wanted = derived(count.originals)
    if wanted and not readable:
        last = count.skipped[-1] if count.skipped else None
        first = f" (first: {last.path}: {last.reason})" if last is not None else ""
        raise UserInputError(f"{source.name}: none of the {len(items)} file(s) could be read{first}")
    variant = 1
    while count.derived < wanted:
        for index in readable:
            if count.derived == wanted:
                return
            item = items[index]
            rgb = as_rgb(source.read(item), encoder)
            sample = derive_variant(rgb, variant, np.random.default_rng(rng_key(index, variant)))
            count.derived += 1
            yield Sample(encoder.from_rgb(sample), item.label)
        variant += 1


def batched(samples: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Stacked samples, `size` at a time (the last batch may be smaller)."""
    pending: list[np.ndarray] = []
    for sample in samples:
        pending.append(sample)
        if len(pending) == size:
            yield np.stack(pending)
            pending = []
    if pending:
        yield np.stack(pending)
