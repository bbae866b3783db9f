"""The training data: a folder of class folders (torchvision's ImageFolder layout) or a `path,label` CSV with
a class-name file, checked image by image, hashed, and split into training and validation sets.

Every image is read once up front: an unreadable or truncated one is skipped and counted (never fatal on its
own), a class left with too few readable images is an error naming it. The split is stratified and seeded:
each class gives the same share to validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.class_names import CLASS_NAMES_FILE, parse_class_names
from edgeres.errors import UserInputError
from edgeres.frames.images import IMAGE_SUFFIXES, list_images, read_rgb
from edgeres.samples.sources import Skipped, csv_row_path, csv_rows, skipped_note

CLASSES_NAME = CLASS_NAMES_FILE  # the class names a run writes, line k naming class k


@dataclass(frozen=True)
class Sample:
    """One labelled image: its file and its class number (an index into the class names)."""

    path: Path
    label: int


@dataclass
class Dataset:
    """Readable labelled images, the class names they refer to, and what was skipped on the way."""

    source: Path
    classes: tuple[str, ...]
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    hashes: dict[Path, str] = field(default_factory=dict)  # sha256 of each sample's file

    def counts(self) -> list[int]:
        """Samples per class, in class order."""
        return np.bincount([s.label for s in self.samples], minlength=len(self.classes)).tolist()

    def fingerprint(self) -> str:
        """sha256 over the class names and every sample's relative path, label and file hash."""
        digest = hashlib.sha256("\n".join(self.classes).encode())
        root = self.source if self.source.is_dir() else self.source.parent
        for sample in sorted(self.samples, key=lambda s: str(s.path)):
            name = sample.path.relative_to(root) if sample.path.is_relative_to(root) else sample.path
            digest.update(f"|{name}|{sample.label}|{self.hashes.get(sample.path, '')}".encode())
        return digest.hexdigest()

    def describe(self) -> str:
        text = f"{len(self.samples)} images of {len(self.classes)} classes in {self.source}"
        return text + skipped_note(self.skipped)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": str(self.source),
            "images": len(self.samples),
            "per_class": dict(zip(self.classes, self.counts(), strict=True)),
            "sha256": self.fingerprint(),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }


def read_class_names(path: Path) -> tuple[str, ...]:
    """One class name a line (blank lines ignored); names must be unique."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: class-name file not found")
    try:
        names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read the class names ({exc})") from exc
    if len(names) < 2:
        raise UserInputError(f"{path}: {len(names)} class name(s); a classifier needs at least 2")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserInputError(f"{path}: class name {repeated[0]!r} appears more than once")
    return names


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 come back from the OS as lone surrogates
        return False
    return True


def check_class_name(name: str, folder: Path) -> None:
    """Refuse a class folder whose name cannot be line k of classes.txt as written: a line break (a newline, a
    carriage return, any separator str.splitlines knows) would move every later class down a line, and
    surrounding blanks are stripped by the reader; label files also refuse ';' and tabs (DeepStream)."""
    try:
        read_back = parse_class_names(name + "\n", CLASSES_NAME).names
    except UserInputError:
        read_back = ()
    if read_back != (name,) or not _encodes(name):
        raise UserInputError(
            f"{folder}: class folder {name!r} cannot be one line of {CLASSES_NAME} (no line breaks, no blanks "
            "around the name, no ';' or tab, valid UTF-8); rename the folder"
        )


def folder_listing(folder: Path) -> tuple[tuple[str, ...], list[Sample]]:
    """Class names = the subfolders' names, sorted (as torchvision's ImageFolder); images found recursively."""
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(classes) < 2:
        raise UserInputError(f"{folder}: {len(classes)} class folder(s); give one subfolder per class (at least 2)")
    for name in classes:
        check_class_name(name, folder)
    samples = [Sample(path, label) for label, name in enumerate(classes) for path in list_images(folder / name)]
    return classes, samples


def _label_of(label: str, classes: Sequence[str], where: str) -> int:
    """A CSV label: a class name of the class-name file, else a class number 0..N-1."""
    if label in classes:
        return classes.index(label)
    if label.isdigit() and label.isascii() and int(label) < len(classes):
        return int(label)
    raise UserInputError(f"{where}: label {label!r} is not one of the {len(classes)} class names (nor a class number)")


def csv_listing(csv_path: Path, class_file: Path | None) -> tuple[tuple[str, ...], list[Sample]]:
    """Rows `path,label` (a `path,label` header allowed; paths relative to the CSV's folder)."""
    if class_file is None:
        raise UserInputError(f"{csv_path}: a CSV needs its class-name file (one class name a line)")
    classes = read_class_names(class_file)
    samples: list[Sample] = []
    for line, cells in csv_rows(csv_path):
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise UserInputError(f"{csv_path}: line {line}: expected 'path,label', got {len(cells)} field(s)")
        path = csv_row_path(csv_path, cells[0])
        samples.append(Sample(path, _label_of(cells[1], classes, f"{csv_path}: line {line}")))
    return classes, samples


def _check_readable(samples: list[Sample]) -> tuple[list[Sample], list[Skipped], dict[Path, str]]:
    readable, skipped, hashes = [], [], {}
    for sample in samples:
        if not _encodes(str(sample.path)):
            # OpenCV 5.1 crashes (SIGSEGV) on such a path, and train.csv (UTF-8) could not name it
            skipped.append(Skipped(sample.path, "its path is not valid UTF-8"))
            continue
        try:
            read_rgb(sample.path)  # truncated files, too-small pictures and non-images are refused here
            hashes[sample.path] = sha256_file(sample.path)
        except (UserInputError, OSError) as exc:
            skipped.append(Skipped(sample.path, str(exc).removeprefix(f"{sample.path}: ")))
            continue
        readable.append(sample)
    return readable, skipped, hashes


def load_dataset(source: Path, class_file: Path | None = None, min_per_class: int = 2) -> Dataset:
    """List, read-check and hash a folder of class folders or a `path,label` CSV."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".csv":
        classes, listed = csv_listing(source, class_file)
    elif source.is_dir():
        classes, listed = folder_listing(source)
    elif source.exists():
        raise UserInputError(f"{source}: neither a folder of class folders nor a .csv file")
    else:
        raise UserInputError(f"{source}: training data not found")
    if not listed:
        raise UserInputError(f"{source}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    samples, skipped, hashes = _check_readable(listed)
    dataset = Dataset(source, classes, samples, skipped, hashes)
    check_class_sizes(dataset, min_per_class)
    return dataset


def check_class_sizes(dataset: Dataset, minimum: int) -> None:
    """Refuse the first class with fewer than `minimum` readable images, naming it."""
    for name, count in zip(dataset.classes, dataset.counts(), strict=True):
        if count < minimum:
            raise UserInputError(
                f"{dataset.source}: class {name!r} has {count} readable image(s); at least {minimum} are needed"
            )


@dataclass(frozen=True)
class Split:
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]


def stratified_split(samples: Sequence[Sample], fraction: float, seed: int) -> Split:
    """Per class, a seeded shuffle gives round(count x fraction) images (at least one, never all) to validation."""
    by_class: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: (s.label, str(s.path))):
        by_class.setdefault(sample.label, []).append(sample)
    train: list[Sample] = []
    val: list[Sample] = []
    for label, members in sorted(by_class.items()):
        order = np.random.default_rng((seed, label)).permutation(len(members))
        count = min(len(members) - 1, max(1, round(len(members) * fraction)))
        val += [members[i] for i in order[:count]]
        train += [members[i] for i in order[count:]]
    return Split(tuple(train), tuple(val))


def given_split(train: Dataset, val: Dataset) -> Split:
    """A validation set given apart: its class names must be the training set's, in the same order."""
    if val.classes != train.classes:
        missing = sorted(set(train.classes) ^ set(val.classes))
        detail = f"class {missing[0]!r} is in one and not the other" if missing else "the class order differs"
        raise UserInputError(f"{val.source}: validation classes differ from {train.source}'s ({detail})")
    return Split(tuple(train.samples), tuple(val.samples))
