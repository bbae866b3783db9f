"""A run's output folder as one unit: a failure leaves it as it was before the run.

A run writes its files one at a time, each atomically, and rewrites them after every epoch. An interrupt once
the run's own resume checkpoint has landed keeps them: that is what `--resume` continues from. Any other way
out (an error, a full disk, training that diverged, an interrupt before that checkpoint landed) restores the
folder through the write journal that keeps previous versions (edgeres.artifacts.atomic): each file the run
replaced comes back, each file it added is removed, and so are the folders it created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeres.artifacts.atomic import WriteJournal, journal_writes, release_previous
from edgeres.artifacts.staging import discard_written


def _identity(path: Path) -> tuple[int, int, int] | None:
    """Which file `path` names now: an atomic rename into place always gives a new one."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


def _restore(journal: WriteJournal, top: Path, exc: BaseException) -> None:
    for problem in discard_written(journal, top):
        exc.add_note(f"not restored: {problem}")


@contextmanager
def restored_on_failure(folder: Path, checkpoint: str) -> Iterator[None]:
    """Run the block that writes into `folder`; an interrupt keeps the folder once the block has written
    `checkpoint`, anything else restores it (see the module docstring)."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    top = missing[-1] if missing else folder  # the outermost folder this run may create
    previous_checkpoint = _identity(folder / checkpoint)
    with journal_writes(keep_previous=True) as journal:
        try:
            yield
        except KeyboardInterrupt as exc:
            if _identity(folder / checkpoint) in (None, previous_checkpoint):
                _restore(journal, top, exc)
            raise
        except BaseException as exc:
            _restore(journal, top, exc)
            raise
        finally:
            release_previous(journal)  # what is left of them after a restore, or after a run that kept its files
