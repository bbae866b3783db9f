"""Class names for a classifier's outputs: the shipped ImageNet-1k list or a user's file for N classes.

Top-k printing, DeepStream and Triton label files all take their names from here, so a class
count that does not match the model is caught once, with a message naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgeres.errors import UserInputError

IMAGENET_CLASS_COUNT = 1000
IMAGENET_SOURCE = "imagenet-1k"
CLASS_NAMES_FILE = "classes.txt"  # what finetune writes beside its checkpoint, line k naming class k
RECORDED_SOURCE = "the model's sidecar"
_IMAGENET_RESOURCE = "data/imagenet_classes.txt"


# DeepStream joins a classifier's labels with ';' and every tool here splits the file on lines.
_FORBIDDEN_CHARACTERS = (";", "\t")


@dataclass(frozen=True)
class ClassNames:
    """Names indexed by class id, and where they came from (a file path or `imagenet-1k`)."""

    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> str:
        return self.names[index]

    def require_count(self, num_classes: int) -> ClassNames:
        """Return self when it names exactly `num_classes` classes; otherwise raise UserInputError."""
        if len(self.names) != num_classes:
            raise UserInputError(
                f"{self.source}: {len(self.names)} class names for a model with {num_classes} classes "
                f"(one name per line, line i naming class i)"
            )
        return self


def parse_class_names(text: str, source: str) -> ClassNames:
    """One name per line; trailing blank lines are ignored, blank lines between names are an error.

    A blank line inside the list would silently shift every later class by one, so it is refused.
    """
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise UserInputError(f"{source}: no class names (expected one name per line)")
    for number, name in enumerate(lines, start=1):
        if not name:
            raise UserInputError(f"{source}: line {number} is blank; every class needs a name")
        bad = [c for c in _FORBIDDEN_CHARACTERS if c in name]
        if bad:
            raise UserInputError(f"{source}: line {number} ('{name}') contains {bad[0]!r}, label files cannot hold it")
    return ClassNames(tuple(lines), source)


def read_class_names(path: Path) -> ClassNames:
    """Class names from a UTF-8 text file, one per line."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: class-names file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_class_names(text, str(path))


@lru_cache(maxsize=1)
def imagenet_class_names() -> ClassNames:
    """The 1000 ImageNet-1k names shipped in edgeres/data (source and licence in its README)."""
    text = resources.files("edgeres").joinpath(_IMAGENET_RESOURCE).read_text(encoding="utf-8")
    names = parse_class_names(text, IMAGENET_SOURCE)
    if len(names) != IMAGENET_CLASS_COUNT:  # a damaged install, not a user error
        raise RuntimeError(f"edgeres/{_IMAGENET_RESOURCE}: {len(names)} names, expected {IMAGENET_CLASS_COUNT}")
    return names


def class_names_for(
    num_classes: int, names_file: Path | None = None, recorded: tuple[str, ...] | None = None
) -> ClassNames:
    """The names for a model with `num_classes` outputs: a given file (which must match the count), else
    the names recorded with the model, else ImageNet's for a 1000-class model. Any other count without
    names is an error, since guessing names would print wrong labels."""
    if num_classes < 1:
        raise UserInputError(f"a model needs at least one class, got {num_classes}")
    if names_file is not None:
        return read_class_names(names_file).require_count(num_classes)
    if recorded is not None:
        return ClassNames(tuple(recorded), RECORDED_SOURCE).require_count(num_classes)
    if num_classes == IMAGENET_CLASS_COUNT:
        return imagenet_class_names()
    raise UserInputError(
        f"the model has {num_classes} classes, not ImageNet's {IMAGENET_CLASS_COUNT}, and records no class names: "
        f"pass --labels FILE with {num_classes} lines (finetune writes it as {CLASS_NAMES_FILE} beside model.pth)"
    )


def names_beside(weights: Path | None, num_classes: int) -> tuple[str, ...] | None:
    """The class names finetune wrote beside a checkpoint (its classes.txt), when they fit the model."""
    if weights is None or not (Path(weights).parent / CLASS_NAMES_FILE).is_file():
        return None
    names = read_class_names(Path(weights).parent / CLASS_NAMES_FILE)
    return names.names if len(names) == num_classes else None
