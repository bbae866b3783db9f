"""Multi-file outputs that are finished or absent: a staging folder renamed into place, or a rollback.

`staged_folder(final)` yields a hidden sibling `.edgeres-<random>.staging` that is renamed to `final` only
when the block succeeds, so `final` never exists half-made; when `final` already exists (files are added
to it), the block writes there and `rollback_on_failure` removes the files it added if anything escapes
it (a file it replaced is whole and is kept: removing it would break what was there before).

`rollback_on_failure(root)`: if the block raises anything (KeyboardInterrupt included), every file it
wrote under `root` through edgeres.artifacts.atomic, and every folder it created there, is removed;
files that were there before and that the block did not write are left alone, and with `keep_previous`
the files it replaced (or set aside) come back as they were.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeres.artifacts.atomic import TEMP_PREFIX, ArtifactWriteError, WriteJournal, active_journal, journal_writes

STAGING_SUFFIX = ".staging"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _remove_tree(folder: Path) -> list[str]:
    """Remove `folder` and everything in it; returns what could not be removed."""
    problems: list[str] = []

    def collect(_function: object, path: str, info: object) -> None:
        problems.append(f"{path}: {info}")

    shutil.rmtree(folder, onerror=collect)
    return problems


def discard_written(journal: WriteJournal, root: Path, keep_replaced: bool = False) -> list[str]:
    """Remove the files `journal` recorded under `root`, then the folders it created there, if empty.

    With `keep_replaced`, a file that replaced an earlier one is kept (it is whole, and removing it
    would break what was there before); otherwise it goes too (its set is unfinished anyway).

    Returns what could not be removed (one line each); the caller decides how to report it.
    """
    problems: list[str] = []
    for tree in reversed(journal.trees):
        if _inside(tree, root):
            problems += _remove_tree(tree)
    restored = _restore_previous(journal, root, problems)
    for path, replaced in reversed(journal.written):
        if path in restored:
            continue
        if replaced and keep_replaced:
            continue
        if not _inside(path, root):
            continue  # e.g. a shared timing cache elsewhere: not part of this set
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    for folder in reversed(journal.folders):  # innermost first
        if not _inside(folder, root):
            continue
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")  # not empty: someone else's files are there
    return problems


def _restore_previous(journal: WriteJournal, root: Path, problems: list[str]) -> set[Path]:
    """Put back, under `root`, the earlier version of every file the run replaced or set aside."""
    restored: set[Path] = set()
    if journal.previous is None:
        return restored
    for final, backup in list(journal.previous.items()):
        if backup is None or not _inside(final, root):
            continue
        try:
            os.replace(backup, final)
        except FileNotFoundError:
            pass  # put back already, by an inner rollback
        except OSError as exc:
            problems.append(f"{final}: earlier version not put back ({exc.strerror or exc}; it is {backup.name})")
            continue
        restored.add(final)
        del journal.previous[final]
    return restored


@contextmanager
def rollback_on_failure(
    root: Path, keep_replaced: bool = False, keep_previous: bool = False
) -> Iterator[WriteJournal]:
    """Run the block with a write journal; if anything escapes it, remove what it wrote under `root`, and
    with `keep_previous` put back the earlier version of every file it replaced or set aside."""
    root = Path(root)
    with journal_writes(keep_previous) as journal:
        try:
            yield journal
        except BaseException as exc:
            for problem in discard_written(journal, root, keep_replaced):
                exc.add_note(f"not removed: {problem}")
            raise


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """The folder to write `final`'s files into, so that `final` is complete or absent (see the module doc)."""
    final = Path(final)
    if final.exists():
        with rollback_on_failure(final, keep_replaced=True):
            yield final
        return
    staging: Path | None = None
    missing = [p for p in final.parents if not p.exists()]  # made here, so removed again on failure
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        while staging is None:
            staging = final.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}{STAGING_SUFFIX}"  # named before made
            try:
                staging.mkdir()
            except FileExistsError:
                staging = None  # another run's: never ours to remove
        yield staging
        os.rename(staging, final)  # atomic; refused when `final` appeared, with files, meanwhile
        journal = active_journal()
        if journal is not None:  # an enclosing rollback removes it with the rest
            journal.trees.append(final)
    except BaseException as exc:
        if staging is not None and staging.exists():
            for problem in _remove_tree(staging):
                exc.add_note(f"not removed: {problem}")
        for folder in missing:  # innermost first
            try:
                folder.rmdir()
            except OSError:
                break  # no longer empty (someone else's files) or already gone: the rest stays too
        if isinstance(exc, OSError):
            raise ArtifactWriteError(f"{final}: not written ({exc.strerror or exc})") from exc
        raise


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A private temporary folder in TMPDIR, removed whatever stops the block.

    Unlike tempfile.TemporaryDirectory, the name is chosen before the folder is made and the removal
    covers the making, so an interrupt that lands just as the folder appears leaves nothing either.
    """
    folder: Path | None = None
    try:
        while folder is None:
            folder = Path(tempfile.gettempdir()) / f"{prefix}{secrets.token_hex(8)}"
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:
                folder = None  # not ours to remove
        yield folder
    finally:
        if folder is not None and folder.exists():
            problems = _remove_tree(folder)
            if problems:
                warnings.warn(f"temporary folder {folder} not fully removed: {'; '.join(problems)}", stacklevel=2)
