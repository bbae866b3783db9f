"""One process writes an output folder at a time: an OS lock, held for the whole run.

The lock is `flock` on a hidden file beside the folder (`.<name>.edgeres-lock`), not inside it: a folder
that does not exist yet, or is replaced whole, is locked all the same. The kernel releases the lock when its
holder exits in any way (SIGKILL included), so a lock file left by a dead process never blocks; the file
holds the holder's process id, for the refusal's message, and stays (removing it would let two processes
lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeres.errors import UserInputError

LOCK_SUFFIX = ".edgeres-lock"


class FolderBusy(UserInputError):
    """Another process is writing the folder."""


def lock_path(folder: Path) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}{LOCK_SUFFIX}"


def _holder(handle: int) -> str:
    try:
        text = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "another process"
    return f"process {text}" if text.isdigit() else "another process"


@contextmanager
def owned_folder(folder: Path) -> Iterator[None]:
    """Hold `folder` for this process while the block runs; refuse at once (FolderBusy, naming the holder)
    when another process holds it."""
    path = lock_path(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserInputError(f"{folder}: cannot be locked for writing ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(
                f"{folder}: {_holder(handle)} is writing it now; wait for it to finish, or write elsewhere"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(handle)  # releases the lock
