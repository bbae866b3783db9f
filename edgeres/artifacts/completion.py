"""A build folder that says whether it is finished: `build_summary.json`, written last, is its manifest.

`edgeres build` writes `build_in_progress.json` before anything else and removes an older summary, so a
folder being written (or whose writer was killed) never shows a summary of another run. The summary it
writes last records `"complete": true` and the SHA-256 of every artifact of the set (models, sidecars,
cache, table, engine); only then is the marker removed. `build_status(folder)` reads this back: None for
a finished set, otherwise why it is not one. Kept here, below every stage, so deploy can refuse an
unfinished build without importing the build stage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from edgeres.artifacts.atomic import (
    PARTIAL_SUFFIX,
    PREVIOUS_SUFFIX,
    TEMP_PREFIX,
    WriteJournal,
    release_previous,
    set_aside,
    sha256_file,
    write_json_atomic,
)
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.folder_lock import owned_folder
from edgeres.artifacts.staging import rollback_on_failure
from edgeres.errors import UserInputError

IN_PROGRESS_NAME = "build_in_progress.json"


def build_status(folder: Path, verify_hashes: bool = True) -> str | None:
    """None when `folder` holds a finished build; otherwise one line saying why it does not.

    With `verify_hashes` every file the summary lists is hashed and compared (a file replaced or
    truncated since makes the set unfinished); without, only that each is there.
    """
    folder = Path(folder)
    summary_path = folder / SUMMARY_NAME
    if (folder / IN_PROGRESS_NAME).exists():
        return f"{folder}: a build is in progress there, or was interrupted ({IN_PROGRESS_NAME} is present)"
    if not summary_path.is_file():
        return f"{folder}: no {SUMMARY_NAME}: not a finished build"
    try:
        summary = BuildSummary.read(summary_path)
    except UserInputError as exc:
        return str(exc)
    if not summary.complete:
        return f"{summary_path}: does not record a complete build"
    if not summary.sha256:
        return f"{summary_path}: records no artifact hashes"
    for name, recorded in summary.sha256.items():
        path = folder / name  # an absolute name (a source model given from elsewhere) stays itself
        if not path.is_file():
            return f"{path}: listed in {summary_path} but missing"
        if verify_hashes and sha256_file(path) != recorded:
            return f"{path}: differs from the SHA-256 recorded in {summary_path}"
    return None


def build_complete(folder: Path, verify_hashes: bool = True) -> bool:
    """Whether `folder` holds a finished build (see `build_status` for the reason when not)."""
    return build_status(folder, verify_hashes) is None


def set_hashes(folder: Path, paths: Iterable[Path]) -> dict[str, str]:
    """SHA-256 of each artifact and of its sidecar (`<artifact>.json`) where it has one, keyed by path."""
    hashes: dict[str, str] = {}
    root = folder.resolve()
    for path in paths:
        for member in (path, path.with_name(path.name + ".json")):
            if not member.is_file() or member.name == SUMMARY_NAME:
                continue
            resolved = member.resolve()
            name = resolved.relative_to(root) if root in resolved.parents else resolved
            hashes[str(name)] = sha256_file(member)
    return hashes


@dataclass
class BuildSet:
    """One run writing a build folder; `finish` writes the summary (the commit point)."""

    folder: Path
    journal: WriteJournal
    committed: bool = False

    def finish(self, summary: BuildSummary) -> BuildSummary:
        """Write the summary last, marked complete with every artifact's SHA-256, then drop the marker."""
        summary = replace(summary, complete=True, sha256=set_hashes(self.folder, summary.artifacts.values()))
        summary.write(self.folder / SUMMARY_NAME)
        self.committed = True
        (self.folder / IN_PROGRESS_NAME).unlink(missing_ok=True)
        return summary


def recover_dead_run(folder: Path) -> None:
    """With the folder owned, put back what a run that died without cleaning up (SIGKILL, power loss) had
    replaced, and drop its temporary files: the folder is then the set that was there before that run."""
    if not folder.is_dir():
        return
    for backup in folder.glob(f".*{PREVIOUS_SUFFIX}"):
        os.replace(backup, folder / backup.name[1 : -len(PREVIOUS_SUFFIX)])
    for partial in folder.glob(f"{TEMP_PREFIX}*{PARTIAL_SUFFIX}"):
        partial.unlink(missing_ok=True)
    (folder / IN_PROGRESS_NAME).unlink(missing_ok=True)


@contextmanager
def build_set(folder: Path) -> Iterator[BuildSet]:
    """Own `folder` and mark it in progress for the block; if the block fails before `finish`, remove what
    it wrote and put back every file of an earlier set it replaced, so the folder is as it was.

    One process at a time (edgeres.artifacts.folder_lock): a second is refused before anything is touched.
    An earlier run's summary is set aside first (after the marker is down): from here on the folder is
    recognisably unfinished until this run's summary lands.
    """
    folder = Path(folder)
    marker = folder / IN_PROGRESS_NAME
    with owned_folder(folder), rollback_on_failure(folder, keep_previous=True) as journal:
        recover_dead_run(folder)
        write_json_atomic(
            marker,
            {"pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        )
        set_aside(folder / SUMMARY_NAME)
        current = BuildSet(folder, journal)
        try:
            yield current
        except BaseException:
            if current.committed:  # the summary landed: the set is finished (e.g. a failed gate, reported)
                journal.written.clear()
                journal.folders.clear()
                journal.trees.clear()
                release_previous(journal)
            raise
        finally:
            marker.unlink(missing_ok=True)
        release_previous(journal)
