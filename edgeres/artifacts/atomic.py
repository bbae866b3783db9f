"""Writing artifacts so that nothing is ever half-written: a temporary name, fsync, then an atomic rename.

The temporary file is `.edgeres-<random>.partial` in the final file's folder: short, so it fits wherever
the final name fits (a 255-byte name included), and on the same filesystem, so the rename is atomic.
Its name is chosen before the file is created and the cleanup covers the creation itself, so an
interrupt (Ctrl-C, or SIGTERM raised as KeyboardInterrupt by the CLI) at any point leaves no `.partial`.

While a `WriteJournal` is active (`journal_writes`), every final path renamed into place is recorded in
it, whichever module wrote it: what lets a multi-file set (edgeres.artifacts.staging) remove exactly
what one interrupted run made.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.errors import EdgeresError, UserInputError

TEMP_PREFIX = ".edgeres-"
PARTIAL_SUFFIX = ".partial"
_NAME_ATTEMPTS = 100


class ArtifactWriteError(EdgeresError):
    """An artifact could not be written (a full disk, no permission, a name too long); nothing half-written is left."""


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask cannot be read without setting it


def _fsync_directory(folder: Path) -> None:
    """Make a rename durable: a camera loses power without warning."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some filesystems cannot open a directory; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass  # fsync of a directory is not supported everywhere; nothing more can be done
    finally:
        os.close(fd)


PREVIOUS_SUFFIX = ".edgeres-previous"


def previous_path(final: Path) -> Path:
    """Where a run that owns `final`'s folder keeps its earlier version: named after it, so a later owner
    can put it back after the run died (edgeres.artifacts.completion)."""
    return final.parent / f".{final.name}{PREVIOUS_SUFFIX}"


@dataclass
class WriteJournal:
    """The final paths renamed into place while the journal was active, each with whether it replaced a file.

    With `previous` (a map shared by nested journals, see `keeping_previous`), the first time a run
    replaces or sets aside a file its earlier version is kept under a hidden name, so a run that fails
    can put the earlier set back exactly (edgeres.artifacts.staging.discard_written).
    """

    written: list[tuple[Path, bool]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # created for those writes, outermost first
    trees: list[Path] = field(default_factory=list)  # new folders put in place whole (edgeres.artifacts.staging)
    previous: dict[Path, Path | None] | None = None  # final -> its earlier version, None: the run created it

    def record(self, path: Path, replaced: bool) -> None:
        self.written.append((path, replaced))

    def keep_previous(self, final: Path) -> None:
        """Before `final` is first replaced in this run, keep its current version aside (a hard link)."""
        if self.previous is None or final in self.previous:
            return
        if not final.exists():
            self.previous[final] = None
            return
        backup = previous_path(final)
        backup.unlink(missing_ok=True)
        try:
            os.link(final, backup)
        except OSError:  # a filesystem without hard links
            shutil.copy2(final, backup)
        self.previous[final] = backup

    def paths(self) -> list[Path]:
        return [path for path, _ in self.written]


_JOURNAL: ContextVar[WriteJournal | None] = ContextVar("edgeres_write_journal", default=None)


@contextmanager
def journal_writes(keep_previous: bool = False) -> Iterator[WriteJournal]:
    """Record every artifact written (by any module) while the block runs; journals nest, each sees its writes.

    `keep_previous` (or an enclosing journal that keeps them) keeps the earlier version of every file the
    block replaces or sets aside, until `release_previous` or a rollback."""
    outer = _JOURNAL.get()
    shared = outer.previous if outer is not None else None
    journal = WriteJournal(previous={} if keep_previous and shared is None else shared)
    token = _JOURNAL.set(journal)
    try:
        yield journal
    finally:
        _JOURNAL.reset(token)
        if outer is not None:
            outer.written.extend(journal.written)
            outer.folders.extend(journal.folders)
            outer.trees.extend(journal.trees)


def active_journal() -> WriteJournal | None:
    """The journal recording writes now, if any."""
    return _JOURNAL.get()


def _make_parents(folder: Path) -> None:
    """mkdir -p `folder`, recording each folder it creates in the active journal."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    journal = _JOURNAL.get()
    for path in reversed(missing):  # outermost first
        try:
            path.mkdir()
        except FileExistsError:
            continue  # made meanwhile by someone else: not ours
        if journal is not None:
            journal.folders.append(path)


def temporary_name(folder: Path) -> Path:
    """A fresh `.edgeres-<random>.partial` path in `folder` (not created)."""
    return folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{PARTIAL_SUFFIX}"


def _create_exclusive(tmp: Path) -> bool:
    """Create `tmp` empty with the usual artifact mode; False when the name is already taken."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_UMASK)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _write_error(final: Path, exc: OSError) -> ArtifactWriteError:
    cause = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = f"{cause}: the disk is full"
    return ArtifactWriteError(f"{final}: not written ({cause}); nothing half-written was left")


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds.

    An interrupted or failed write therefore never leaves a half-written artifact, nor a `.partial`.
    An OSError (a full disk, no permission) becomes an ArtifactWriteError naming `final`.
    """
    final = Path(final)
    tmp: Path | None = None
    try:
        _make_parents(final.parent)
        for _ in range(_NAME_ATTEMPTS):
            tmp = temporary_name(final.parent)  # named before it exists: the finally below covers its creation
            if _create_exclusive(tmp):
                break
            tmp = None  # another file's name: never ours to remove
        if tmp is None:
            raise ArtifactWriteError(f"{final}: no free temporary name in {final.parent}")
        yield tmp
        with open(tmp, "rb+") as handle:  # the bytes reach the disk before the name does
            os.fsync(handle.fileno())
        replaced = final.exists()
        journal = _JOURNAL.get()
        if journal is not None:
            journal.keep_previous(final)
        os.replace(tmp, final)
        if journal is not None:
            journal.record(final, replaced)
        _fsync_directory(final.parent)
    except OSError as exc:
        raise _write_error(final, exc) from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def set_aside(final: Path) -> None:
    """Remove `final` from its set: deleted outright, or, while a journal keeps previous versions, kept
    aside so that a run that fails puts it back."""
    final = Path(final)
    journal = _JOURNAL.get()
    if journal is not None and journal.previous is not None and final.exists():
        journal.keep_previous(final)
    final.unlink(missing_ok=True)


def release_previous(journal: WriteJournal) -> None:
    """The run succeeded: drop the earlier versions it kept."""
    if journal.previous is None:
        return
    for backup in journal.previous.values():
        if backup is not None:
            backup.unlink(missing_ok=True)
    journal.previous.clear()


def write_bytes_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_with(final: Path, writer: Callable[[Path], None]) -> None:
    """Run `writer(tmp_path)` and move the result into place atomically."""
    with atomic_path(final) as tmp:
        writer(tmp)


def write_json_atomic(final: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    write_bytes_atomic(final, text.encode())


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path` (the counterpart of `write_json_atomic`); one-line UserInputError naming
    the file and `what` it should be when it cannot be read or is not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: {what} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: {what} is not a JSON object")
    return data
