"""Where samples come from: a folder of pictures, a folder of raw YUV 4:2:2 frames, a `path,label` CSV, or
any object an API user writes that keeps the `SampleSource` protocol (the typed counterpart of onnxruntime's
`CalibrationDataReader`).

A source lists its items up front (cheap) and reads one item at a time, so memory stays flat however large
the set; an item that cannot be read raises `Unreadable` and is skipped and counted by the reader.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgeres.errors import UserInputError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.images import default_calibration_dir, list_images, read_rgb
from edgeres.frames.yuv import YuvLayout, open_yuv

# Raw frame files as capture tools name them: a layout name, or .yuv/.raw.
RAW_FRAME_SUFFIXES = (".yuv", ".raw", ".yuyv", ".yuy2", ".uyvy", ".i422", ".nv16")


def is_raw_frame_file(path: Path) -> bool:
    return path.suffix.lower() in RAW_FRAME_SUFFIXES


class FrameFormatNeeded(UserInputError):
    """Raw frames were given without their layout and size."""


class SourceKind(str, Enum):
    IMAGE_FOLDER = "images"
    YUV_FOLDER = "yuv"
    CSV = "csv"
    CUSTOM = "custom"  # a source an API user wrote

    @property
    def noun(self) -> str:
        """What one item of this kind is called in messages."""
        return {SourceKind.YUV_FOLDER: "frame", SourceKind.CSV: "CSV image"}.get(self, "image")


@dataclass(frozen=True)
class SampleItem:
    """One candidate sample: a file, the frame within it (raw YUV) and its class number (labelled CSV)."""

    path: Path
    frame: int | None = None
    label: str | None = None

    def describe(self) -> str:
        return str(self.path) + (f"#{self.frame}" if self.frame is not None else "")


@dataclass(frozen=True)
class Picture:
    """What a source reads: uint8 RGB [H, W, 3], or a raw frame in `layout` when `layout` is set."""

    pixels: np.ndarray
    layout: YuvLayout | None = None


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def skipped_note(skipped: Sequence[Skipped]) -> str:
    """'; 3 unreadable file(s) skipped (first: a.jpg: truncated)', or '' when nothing was skipped."""
    if not skipped:
        return ""
    first = skipped[0]
    return f"; {len(skipped)} unreadable file(s) skipped (first: {first.path}: {first.reason})"


class Unreadable(Exception):
    """An item that cannot be used; skipped and counted, never fatal on its own."""


@runtime_checkable
class SampleSource(Protocol):
    """Anything that lists sample items and reads them as pictures or frames."""

    @property
    def name(self) -> str:
        """How messages and the build recipe name the source (a path, for the built-in ones)."""
        ...

    @property
    def kind(self) -> SourceKind: ...

    def items(self, skipped: list[Skipped]) -> list[SampleItem]:
        """Every candidate item; what cannot even be listed goes to `skipped`."""
        ...

    def read(self, item: SampleItem) -> Picture:
        """One item's pixels; raises Unreadable."""
        ...

    def fingerprint(self, items: Sequence[SampleItem], header: str) -> str:
        """A digest of `header` and the content of `items` that changes whenever the samples can: what a
        calibration cache is keyed on (edgeres.quantize.cache), so a changed source is never served stale
        ranges."""
        ...


def _class_number(csv_path: Path, line: int, label: str) -> str:
    """A CSV label as given, refused unless it is a class number 0, 1, 2...: accuracy depends on every one."""
    if not label.isdigit() or not label.isascii():
        raise UserInputError(f"{csv_path}: line {line}: label {label!r} is not a class number (0, 1, 2...)")
    return str(int(label))


def check_labels(where: object, items: Sequence[SampleItem], num_classes: int) -> None:
    """Refuse labels a model with `num_classes` outputs cannot predict, naming the first such row's file."""
    for item in items:
        if item.label is not None and int(item.label) >= num_classes:
            raise UserInputError(
                f"{where}: label {item.label} of {item.path.name} is outside 0..{num_classes - 1} "
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


def csv_items(csv_path: Path, skipped: list[Skipped]) -> list[SampleItem]:
    """Rows `path,label` (a `path,label` header is allowed; paths relative to the CSV's folder).

    Labels must be class numbers, on every row or on none: a bad or missing one is an error naming the row.
    """
    items: list[SampleItem] = []
    for line, cells in csv_rows(csv_path):
        if len(cells) > 2 or not cells[0]:
            skipped.append(Skipped(csv_path, f"line {line}: expected 'path,label', got {len(cells)} field(s)"))
            continue
        path = csv_row_path(csv_path, cells[0])
        label = _class_number(csv_path, line, cells[1]) if len(cells) == 2 and cells[1] else None
        if items and (label is None) != (items[0].label is None):
            raise UserInputError(f"{csv_path}: line {line}: some rows have a label and others not; label every row")
        items.append(SampleItem(path, None, label))
    return items


def _read_picture(path: Path) -> Picture:
    if is_raw_frame_file(path):
        raise Unreadable("raw frame file listed without a frame layout and size")
    try:
        return Picture(read_rgb(path))
    except UserInputError as exc:
        raise Unreadable(str(exc).removeprefix(f"{path}: ")) from exc


@dataclass(frozen=True)
class ImageFolder:
    """Every picture under a folder (the shipped photographs by default)."""

    folder: Path
    kind = SourceKind.IMAGE_FOLDER

    @property
    def name(self) -> str:
        return str(self.folder)

    def items(self, skipped: list[Skipped]) -> list[SampleItem]:
        images = [SampleItem(path) for path in list_images(self.folder)]
        if not images and any(is_raw_frame_file(path) for path in self.folder.rglob("*")):
            raise FrameFormatNeeded(
                f"{self.folder}: holds raw frames; give their layout and size as FORMAT:WxH (e.g. yuyv:1920x1080)"
            )
        return images

    def read(self, item: SampleItem) -> Picture:
        return _read_picture(item.path)

    def fingerprint(self, items: Sequence[SampleItem], header: str) -> str:
        return files_digest(items, self.folder, header)


@dataclass(frozen=True)
class FrameFolder:
    """Every whole frame of every `.yuv` file under a folder, in one layout and size."""

    folder: Path
    raw: FrameFormat
    kind = SourceKind.YUV_FOLDER

    @property
    def name(self) -> str:
        return str(self.folder)

    def items(self, skipped: list[Skipped]) -> list[SampleItem]:
        """One item per frame; files of the wrong size are skipped."""
        items: list[SampleItem] = []
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() and is_raw_frame_file(p)):
            try:
                frames = open_yuv(path, self.raw.layout, self.raw.width, self.raw.height)
            except UserInputError as exc:
                skipped.append(Skipped(path, str(exc).removeprefix(f"{path}: ")))
                continue
            items.extend(SampleItem(path, index) for index in range(frames.count))
        return items

    def read(self, item: SampleItem) -> Picture:
        if item.frame is None:
            return _read_picture(item.path)
        try:
            frames = open_yuv(item.path, self.raw.layout, self.raw.width, self.raw.height)
            return Picture(frames.frame(item.frame), self.raw.layout)
        except (UserInputError, OSError, ValueError) as exc:
            raise Unreadable(str(exc).removeprefix(f"{item.path}: ")) from exc

    def fingerprint(self, items: Sequence[SampleItem], header: str) -> str:
        return files_digest(items, self.folder, header)


@dataclass(frozen=True)
class LabelledCsv:
    """The pictures a `path,label` CSV lists (labels optional, but on every row or none)."""

    csv_path: Path
    kind = SourceKind.CSV

    @property
    def name(self) -> str:
        return str(self.csv_path)

    def items(self, skipped: list[Skipped]) -> list[SampleItem]:
        return csv_items(self.csv_path, skipped)

    def read(self, item: SampleItem) -> Picture:
        return _read_picture(item.path)

    def fingerprint(self, items: Sequence[SampleItem], header: str) -> str:
        return files_digest(items, self.csv_path.parent, header)


SOURCE_MEMBERS = ("name", "kind", "items", "read", "fingerprint")


def sample_source(source: Path | SampleSource | None, raw: FrameFormat | None = None) -> SampleSource:
    """The source a path names (None: the shipped photographs); a `SampleSource` is used as it is."""
    if source is not None and not isinstance(source, Path | str):
        missing = [name for name in SOURCE_MEMBERS if not hasattr(source, name)]
        if missing:
            raise UserInputError(
                f"{type(source).__name__} is not a sample source: it has no {', '.join(missing)} "
                "(see edgeres.samples.sources.SampleSource)"
            )
        return source
    path = Path(source) if source is not None else default_calibration_dir()
    if path.is_file() and path.suffix.lower() == ".csv":
        return LabelledCsv(path)
    if not path.is_dir():
        raise UserInputError(f"{path}: calibration source is neither a folder nor a .csv file")
    return FrameFolder(path, raw) if raw is not None else ImageFolder(path)


def files_digest(items: Sequence[SampleItem], root: Path | None, header: str) -> str:
    """sha256 over `header` and every distinct item file's name and bytes: changes iff the data can."""
    digest = hashlib.sha256()
    digest.update(header.encode())
    for path in sorted({item.path for item in items}):
        relative = root is not None and path.is_relative_to(root)
        digest.update(str(path.relative_to(root) if relative and root is not None else path).encode())
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except OSError:
            digest.update(b"<unreadable>")
    return digest.hexdigest()
