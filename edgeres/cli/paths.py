"""Output paths checked before the long work: one refusal, one line, nothing written.

A command that writes checks its outputs here first, so a path that can never be written (a folder where
a file goes, a file where a folder goes, a parent that is a regular file, a name longer than the
filesystem allows, a folder that cannot be written) is refused before minutes of export or calibration.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edgeres.errors import UserInputError


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists (the current folder for a relative path)."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _name_limit(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _check_names(path: Path, existing: Path) -> None:
    """Every name still to be created must fit the filesystem's limit on one name."""
    limit = _name_limit(existing if existing.is_dir() else existing.parent)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            shown = part if len(part) <= 40 else f"{part[:20]}...{part[-12:]}"
            cause = os.strerror(errno.ENAMETOOLONG)
            raise UserInputError(f"{shown}: {cause} ({len(part)} characters, at most {limit})")


def _check_parents(path: Path) -> Path:
    """The nearest existing ancestor of `path`'s parent, which must be a writable folder."""
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise UserInputError(f"{path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserInputError(f"{path}: {existing}: {os.strerror(errno.EACCES)}")
    return existing


def check_output_file(path: Path) -> None:
    """Refuse a file output that cannot be written: see the module docstring."""
    path = Path(path)
    existing = _check_parents(path)
    _check_names(path, existing)
    if path.is_dir():
        raise UserInputError(f"{path}: is a folder, expected a file to write")


def check_output_dir(path: Path) -> None:
    """Refuse a folder output that cannot be made or written into: see the module docstring."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{path}: is a file, expected a folder to write into")
    existing = _check_parents(path / "x")
    _check_names(path, existing)
