"""Calibration samples: images, raw YUV 4:2:2 frames or a `path,label` CSV -> model-input batches.

Files are listed up front (cheap) and read lazily, one sample at a time, so memory stays flat however
large the set. The list is shuffled with a seed and cut to `calib_size`; files that cannot be read are
skipped and counted; when there are fewer readable files than `calib_size`, more samples are derived
from them by flips and crops (and the summary says so). Each sample is encoded the way the model
expects its input (see `SampleEncoder` in edgeres.quantize.encoding): ImageNet-normalised float tensors, or
the camera's RGB -> YUV 4:2:2 encoding for a model that takes frames.
"""

from __future__ import annotations

import copy
import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.images import default_calibration_dir, list_images, read_rgb
from edgeres.frames.yuv import open_yuv
from edgeres.quantize.encoding import SampleEncoder, derive_variant

YUV_SUFFIX = ".yuv"
DEFAULT_SEED = 0
DEFAULT_BATCH = 8


class SourceKind(str, Enum):
    IMAGE_FOLDER = "images"
    YUV_FOLDER = "yuv"
    CSV = "csv"


@dataclass(frozen=True)
class CalibItem:
    """One candidate sample: a file, the frame within it (raw YUV) and its label (CSV)."""

    path: Path
    frame: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def skipped_note(skipped: list[Skipped]) -> str:
    """'; 3 unreadable file(s) skipped (first: a.jpg: truncated)', or '' when nothing was skipped."""
    if not skipped:
        return ""
    first = skipped[0]
    return f"; {len(skipped)} unreadable file(s) skipped (first: {first.path}: {first.reason})"


@dataclass
class CalibSummary:
    """What calibration actually used; complete once the batches have been consumed."""

    source: str
    kind: SourceKind
    candidates: int
    requested: int
    originals: int = 0
    derived: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return self.originals + self.derived

    def describe(self) -> str:
        noun = {SourceKind.IMAGE_FOLDER: "image", SourceKind.YUV_FOLDER: "frame", SourceKind.CSV: "CSV image"}[
            self.kind
        ]
        text = f"{self.samples} calibration samples from {self.originals} {noun}(s) in {self.source}"
        if self.derived:
            text += f" ({self.derived} of them derived by crops/flips, as only {self.originals} could be read)"
        return text + skipped_note(self.skipped)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind.value,
            "candidates": self.candidates,
            "requested": self.requested,
            "samples": self.samples,
            "originals": self.originals,
            "derived": self.derived,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }


class Unreadable(Exception):
    """A calibration file that cannot be used; skipped and counted, never fatal on its own."""


def image_items(folder: Path) -> list[CalibItem]:
    return [CalibItem(path) for path in list_images(folder)]


def yuv_items(folder: Path, raw: FrameFormat, skipped: list[Skipped]) -> list[CalibItem]:
    """One item per frame of every `.yuv` file under `folder`; files of the wrong size are skipped."""
    items: list[CalibItem] = []
    for path in sorted(p for p in Path(folder).rglob(f"*{YUV_SUFFIX}") if p.is_file()):
        try:
            frames = open_yuv(path, raw.layout, raw.width, raw.height)
        except UserInputError as exc:
            skipped.append(Skipped(path, str(exc).removeprefix(f"{path}: ")))
            continue
        items.extend(CalibItem(path, index) for index in range(frames.count))
    return items


def _class_number(csv_path: Path, line: int, label: str) -> str:
    """A CSV label as given, refused unless it is a class number 0, 1, 2...: accuracy depends on every one."""
    if not label.isdigit() or not label.isascii():
        raise UserInputError(f"{csv_path}: line {line}: label {label!r} is not a class number (0, 1, 2...)")
    return str(int(label))


def check_labels(csv_path: Path, items: list[CalibItem], num_classes: int) -> None:
    """Refuse labels a model with `num_classes` outputs cannot predict, naming the first such row's file."""
    for item in items:
        if item.label is not None and int(item.label) >= num_classes:
            raise UserInputError(
                f"{csv_path}: label {item.label} of {item.path.name} is outside 0..{num_classes - 1} "
                f"(the model has {num_classes} classes)"
            )


def csv_row_path(csv_path: Path, cell: str) -> Path:
    """A CSV's path cell: absolute as given, else relative to the CSV's folder."""
    return Path(cell) if Path(cell).is_absolute() else csv_path.parent / cell


def csv_rows(csv_path: Path) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of each non-blank row of a `path,label` CSV, without its header.

    Line 1 is a header when its first cell names no existing file (`path,label`, `filename,class`...);
    a byte-order mark (spreadsheet exports write one) is dropped.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{csv_path}: cannot read the CSV ({exc})") from exc
    kept = []
    for line, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if line == 1 and cells[0] and not csv_row_path(csv_path, cells[0]).is_file():
            continue
        kept.append((line, cells))
    return kept


def csv_items(csv_path: Path, skipped: list[Skipped]) -> list[CalibItem]:
    """Rows `path,label` (a `path,label` header is allowed; paths relative to the CSV's folder).

    Labels must be class numbers, on every row or on none: a bad or missing one is an error naming the row.
    """
    items: list[CalibItem] = []
    for line, cells in csv_rows(csv_path):
        if len(cells) > 2 or not cells[0]:
            skipped.append(Skipped(csv_path, f"line {line}: expected 'path,label', got {len(cells)} field(s)"))
            continue
        path = csv_row_path(csv_path, cells[0])
        label = _class_number(csv_path, line, cells[1]) if len(cells) == 2 and cells[1] else None
        if items and (label is None) != (items[0].label is None):
            raise UserInputError(f"{csv_path}: line {line}: some rows have a label and others not; label every row")
        items.append(CalibItem(path, None, label))
    return items


class CalibrationSet:
    """A seeded, lazily read calibration set that yields model-input batches."""

    def __init__(
        self,
        source: Path | None,
        encoder: SampleEncoder,
        calib_size: int,
        seed: int = DEFAULT_SEED,
        raw: FrameFormat | None = None,
        num_classes: int | None = None,
    ) -> None:
        """`num_classes`: the model's class count, which a labelled CSV's labels must stay below."""
        if calib_size < 1:
            raise UserInputError(f"calibration size {calib_size}: must be at least 1")
        self.source = Path(source) if source is not None else default_calibration_dir()
        self.encoder, self.seed, self.raw = encoder, seed, raw
        skipped: list[Skipped] = []
        self.kind, pool = self._list(skipped)
        if num_classes is not None and self.kind is SourceKind.CSV:
            check_labels(self.source, pool, num_classes)
        if not pool:
            what = {SourceKind.YUV_FOLDER: "whole-frame .yuv files", SourceKind.CSV: "rows"}.get(self.kind, "images")
            extra = f" ({len(skipped)} skipped, first: {skipped[0].reason})" if skipped else ""
            raise UserInputError(f"{self.source}: no calibration {what} found{extra}")
        self.pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
        self.calib_size = encoder.round_samples(calib_size)
        self._listing_skipped = list(skipped)
        self.summary = CalibSummary(str(self.source), self.kind, len(pool), self.calib_size, skipped=skipped)

    def _list(self, skipped: list[Skipped]) -> tuple[SourceKind, list[CalibItem]]:
        src = self.source
        if src.is_file() and src.suffix.lower() == ".csv":
            return SourceKind.CSV, csv_items(src, skipped)
        if not src.is_dir():
            raise UserInputError(f"{src}: calibration source is neither a folder nor a .csv file")
        if self.raw is not None:
            return SourceKind.YUV_FOLDER, yuv_items(src, self.raw, skipped)
        images = image_items(src)
        if not images and any(src.rglob(f"*{YUV_SUFFIX}")):
            raise UserInputError(f"{src}: holds .yuv frames; give their layout and size (e.g. yuyv 1920x1080)")
        return SourceKind.IMAGE_FOLDER, images

    def __len__(self) -> int:
        return self.calib_size

    def split_holdout(self, fraction: float, limit: int) -> tuple[CalibrationSet, tuple[CalibItem, ...]]:
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

    def _read(self, item: CalibItem) -> tuple[np.ndarray, bool]:
        """(pixels, is_yuv_frame) for one item; raises Unreadable for anything that cannot be used."""
        if item.frame is not None:
            assert self.raw is not None
            try:
                frames = open_yuv(item.path, self.raw.layout, self.raw.width, self.raw.height)
                return frames.frame(item.frame), True
            except (UserInputError, OSError, ValueError) as exc:
                raise Unreadable(str(exc).removeprefix(f"{item.path}: ")) from exc
        if item.path.suffix.lower() == YUV_SUFFIX:
            raise Unreadable("raw .yuv listed without a frame layout and size")
        try:
            return read_rgb(item.path), False
        except UserInputError as exc:
            raise Unreadable(str(exc).removeprefix(f"{item.path}: ")) from exc

    def _encode(self, pixels: np.ndarray, is_frame: bool) -> np.ndarray:
        if is_frame:
            assert self.raw is not None
            return self.encoder.from_frame(pixels, self.raw.layout)
        return self.encoder.from_rgb(pixels)

    def samples(self) -> Iterator[np.ndarray]:
        """Model-input samples (no batch axis), originals first, then derived ones if needed."""
        summary = self.summary
        summary.originals = summary.derived = 0
        summary.skipped = list(self._listing_skipped)  # a second pass recounts what it cannot read
        readable: list[int] = []
        for index, item in enumerate(self.pool):
            if summary.samples == self.calib_size:
                return
            try:
                pixels, is_frame = self._read(item)
            except Unreadable as exc:
                summary.skipped.append(Skipped(item.path, str(exc)))
                continue
            readable.append(index)
            summary.originals += 1
            yield self._encode(pixels, is_frame)
        if not readable:
            raise UserInputError(
                f"{self.source}: none of the {len(self.pool)} calibration file(s) could be read "
                f"(first: {summary.skipped[-1].path}: {summary.skipped[-1].reason})"
            )
        variant = 1
        while summary.samples < self.calib_size:
            for index in readable:
                if summary.samples == self.calib_size:
                    return
                pixels, is_frame = self._read(self.pool[index])
                rgb = self.encoder.frame_to_rgb(pixels, self.raw.layout) if is_frame and self.raw else pixels
                derived = derive_variant(rgb, variant, np.random.default_rng((self.seed, index, variant)))
                summary.derived += 1
                yield self.encoder.from_rgb(derived)
            variant += 1

    def batches(self, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
        """Stacked samples, `batch_size` at a time (the last batch may be smaller unless the model fixes it)."""
        size = self.encoder.batch_size(batch_size)
        pending: list[np.ndarray] = []
        for sample in self.samples():
            pending.append(sample)
            if len(pending) == size:
                yield np.stack(pending)
                pending = []
        if pending:
            yield np.stack(pending)

    def fingerprint(self) -> str:
        """sha256 over the seed, size, encoding and every candidate file's bytes: changes iff the data can."""
        digest = hashlib.sha256()
        digest.update(f"{self.kind.value}|{self.seed}|{self.calib_size}|{self.encoder.describe()}|{self.raw}".encode())
        root = self.source.parent if self.kind is SourceKind.CSV else self.source
        for path in sorted({item.path for item in self.pool}):
            digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
            try:
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
            except OSError:
                digest.update(b"<unreadable>")
        return digest.hexdigest()
