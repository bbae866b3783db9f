"""Nothing half-written: long names, an interrupt or a full disk at every step of a write, staged folders.

Hostile cases are generated here: names up to the filesystem's 255-byte limit, a KeyboardInterrupt (what
the CLI raises on Ctrl-C and SIGTERM) or an ENOSPC raised at each step of an atomic write.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeres.artifacts import atomic
from edgeres.artifacts.atomic import (
    PARTIAL_SUFFIX,
    ArtifactWriteError,
    journal_writes,
    write_bytes_atomic,
    write_json_atomic,
    write_with,
)
from edgeres.artifacts.build_summary import BuildSummary
from edgeres.artifacts.completion import IN_PROGRESS_NAME, SUMMARY_NAME, build_complete, build_set, build_status
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.staging import STAGING_SUFFIX, rollback_on_failure, scratch_folder, staged_folder

OLD, NEW = b"old complete artifact\n", b"new complete artifact, longer than the old one\n" * 64
NAME_MAX = os.pathconf("/", "PC_NAME_MAX") if hasattr(os, "pathconf") else 255


def summary_of(model: Path, gate_passed: bool) -> BuildSummary:
    """A build summary listing one model."""
    return BuildSummary(Precision.INT8, {}, "random", True, None, {ArtifactRole.INT8_TENSORRT: model}, gate_passed)


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of ours anywhere under `folder`."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith((PARTIAL_SUFFIX, STAGING_SUFFIX)))


def long_name(length: int, suffix: str = ".onnx") -> str:
    return "m" * (length - len(suffix)) + suffix


WRITERS: dict[str, Callable[[Path], None]] = {
    "bytes": lambda path: write_bytes_atomic(path, NEW),
    "json": lambda path: write_json_atomic(path, {"payload": "x" * 100}),
    "with": lambda path: write_with(path, lambda tmp: tmp.write_bytes(NEW)),
}


@pytest.mark.parametrize("length", [200, 249, NAME_MAX])
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_name_that_fits_the_folder_can_be_written(tmp_path: Path, length: int, writer: str) -> None:
    final = tmp_path / long_name(length)
    WRITERS[writer](final)
    assert final.is_file() and final.stat().st_size > 0 and leftovers(tmp_path) == []


def test_a_name_too_long_for_any_file_is_one_error_naming_it(tmp_path: Path) -> None:
    final = tmp_path / long_name(NAME_MAX + 1)
    with pytest.raises(ArtifactWriteError, match=r"m{20}.*not written \(File name too long\)"):
        write_bytes_atomic(final, NEW)
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_name_is_short_and_beside_the_final_one(tmp_path: Path) -> None:
    seen: list[Path] = []
    write_with(tmp_path / long_name(NAME_MAX), lambda tmp: seen.append(tmp) or tmp.write_bytes(NEW))
    assert seen[0].parent == tmp_path and len(seen[0].name) < 40 and seen[0].name.startswith(".edgeres-")


def _fault(kind: str) -> BaseException:
    return KeyboardInterrupt("SIGTERM") if kind == "interrupt" else OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# Each step of an atomic write, patched to fail at that point (the real call made first where that is the
# nastier case: the temporary file exists, half the bytes are written, the rename has happened).
def _at_create(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    real = os.open

    def create(path: object, flags: int, *args: object) -> int:
        fd = real(path, flags, *args)  # type: ignore[arg-type]
        if flags & os.O_CREAT:
            os.close(fd)
            raise fault
        return fd

    monkeypatch.setattr(atomic.os, "open", create)


def _at_write(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    real = Path.write_bytes

    def half(path: Path, data: bytes) -> int:
        real(path, bytes(data)[: len(data) // 2])
        raise fault

    monkeypatch.setattr(Path, "write_bytes", half)


def _at_fsync(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    def fsync(fd: int) -> None:
        raise fault

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def _at_rename(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    def replace(src: object, dst: object) -> None:
        raise fault

    monkeypatch.setattr(atomic.os, "replace", replace)


def _after_rename(monkeypatch: pytest.MonkeyPatch, fault: BaseException) -> None:
    def fsync_directory(folder: Path) -> None:
        raise fault

    monkeypatch.setattr(atomic, "_fsync_directory", fsync_directory)


STEPS = {"create": _at_create, "write": _at_write, "fsync": _at_fsync, "rename": _at_rename, "after": _after_rename}


@pytest.mark.parametrize("kind", ["interrupt", "enospc"])
@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_fault_at_any_step_leaves_the_old_file_or_the_new_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str, kind: str
) -> None:
    final = tmp_path / long_name(249)
    final.write_bytes(OLD)
    STEPS[step](monkeypatch, _fault(kind))
    expected = (KeyboardInterrupt,) if kind == "interrupt" else (ArtifactWriteError,)
    with pytest.raises(expected):
        write_bytes_atomic(final, NEW)
    assert final.read_bytes() == (NEW if step == "after" else OLD)
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_a_full_disk_names_the_file_and_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _at_write(monkeypatch, _fault("enospc"))
    with pytest.raises(ArtifactWriteError, match=r"model\.onnx: not written \(No space left on device: the disk"):
        write_bytes_atomic(tmp_path / "model.onnx", NEW)
    assert list(tmp_path.iterdir()) == []


def test_the_journal_records_each_final_path_and_whether_it_replaced_one(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(OLD)
    with journal_writes() as outer:
        write_bytes_atomic(tmp_path / "a", NEW)
        with journal_writes() as inner:
            write_bytes_atomic(tmp_path / "b", NEW)
    assert inner.written == [(tmp_path / "b", True)]
    assert outer.written == [(tmp_path / "a", False), (tmp_path / "b", True)]


# --- multi-file sets ---------------------------------------------------------------------------------


def _write_three_then(folder: Path, fault: BaseException | None) -> None:
    write_bytes_atomic(folder / "model.onnx", NEW)
    write_bytes_atomic(folder / "sub" / "labels.txt", NEW)
    if fault is not None:
        raise fault
    write_bytes_atomic(folder / "config.txt", NEW)


@pytest.mark.parametrize("kind", ["interrupt", "enospc"])
def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path: Path, kind: str) -> None:
    final = tmp_path / "deploy"
    with pytest.raises((KeyboardInterrupt, ArtifactWriteError)), staged_folder(final) as folder:
        _write_three_then(folder, _fault(kind))
    assert list(tmp_path.iterdir()) == []
    with staged_folder(final) as folder:
        assert folder != final and not final.exists()
        _write_three_then(folder, None)
    assert sorted(str(p.relative_to(final)) for p in final.rglob("*")) == [
        "config.txt", "model.onnx", "sub", "sub/labels.txt"
    ]  # fmt: skip
    assert leftovers(tmp_path) == []


def test_into_an_existing_folder_only_what_the_run_added_is_removed(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_bytes(OLD)
    (tmp_path / "model.onnx").write_bytes(OLD)  # replaced whole by the run: kept, what was there still works
    with pytest.raises(KeyboardInterrupt), staged_folder(tmp_path) as folder:
        assert folder == tmp_path
        _write_three_then(folder, KeyboardInterrupt())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "model.onnx"]
    assert (tmp_path / "model.onnx").read_bytes() == NEW and leftovers(tmp_path) == []


def test_a_rollback_removes_replaced_files_too_unless_asked_to_keep_them(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(OLD)
    with pytest.raises(KeyboardInterrupt), rollback_on_failure(tmp_path):
        _write_three_then(tmp_path, KeyboardInterrupt())
    assert list(tmp_path.iterdir()) == []


def test_rollback_leaves_files_outside_its_root(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), rollback_on_failure(tmp_path / "set"):
        write_bytes_atomic(tmp_path / "set" / "a", NEW)
        write_bytes_atomic(tmp_path / "shared_timing.cache", NEW)
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared_timing.cache"]


# --- the build set's completion marker ----------------------------------------------------------------


def _finished_set(folder: Path) -> Path:
    with build_set(folder) as current:
        write_bytes_atomic(folder / "model.onnx", NEW)
        write_json_atomic(folder / "model.onnx.json", {"sha256": "..."})
        current.finish(summary_of(folder / "model.onnx", gate_passed=True))
    return folder


def test_a_finished_set_records_every_hash_and_drops_the_marker(tmp_path: Path) -> None:
    folder = _finished_set(tmp_path / "b")
    summary = json.loads((folder / SUMMARY_NAME).read_text())
    assert summary["complete"] is True and sorted(summary["sha256"]) == ["model.onnx", "model.onnx.json"]
    assert build_complete(folder) and not (folder / IN_PROGRESS_NAME).exists()


def test_an_interrupted_set_is_removed_and_the_earlier_set_put_back_as_it_was(tmp_path: Path) -> None:
    folder = _finished_set(tmp_path / "b")
    (folder / "calibration_cache.json").write_bytes(OLD)  # there before, not written by the run: kept
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(KeyboardInterrupt), build_set(folder):
        assert build_status(folder) is not None and "in progress" in str(build_status(folder))
        assert not (folder / "build_summary.json").exists()  # set aside while the run writes
        write_bytes_atomic(folder / "model_int8.onnx", NEW)
        write_bytes_atomic(folder / "model.onnx", NEW)  # replaces a file of the earlier set
        raise KeyboardInterrupt
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert build_status(folder) is None


def test_a_set_that_fails_after_its_summary_landed_stays_finished(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    with pytest.raises(ArtifactWriteError), build_set(folder) as current:
        write_bytes_atomic(folder / "model.onnx", NEW)
        current.finish(summary_of(folder / "model.onnx", gate_passed=False))
        raise ArtifactWriteError("reported after the summary (a failed gate)")
    assert build_complete(folder)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "model.onnx").write_bytes(OLD), "differs from the SHA-256"),
        (lambda f: (f / "model.onnx").unlink(), "missing"),
        (lambda f: (f / IN_PROGRESS_NAME).write_text("{}"), "in progress"),
        (lambda f: (f / SUMMARY_NAME).write_text("{"), "cannot be read"),
        (lambda f: (f / SUMMARY_NAME).write_text('{"gate_passed": true}'), "lists no artifacts"),
        (lambda f: (f / SUMMARY_NAME).unlink(), "no build_summary.json"),
    ],
)
def test_a_damaged_set_is_not_finished(tmp_path: Path, damage: Callable[[Path], object], reason: str) -> None:
    folder = _finished_set(tmp_path / "b")
    damage(folder)
    assert not build_complete(folder) and reason in str(build_status(folder))


# --- scratch folders (the exporter's) --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["while made", "in the block"])
def test_a_scratch_folder_is_removed_whatever_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    if where == "while made":
        real = Path.mkdir

        def made_then_interrupted(path: Path, *args: object, **kwargs: object) -> None:
            real(path, *args, **kwargs)  # type: ignore[arg-type]
            raise KeyboardInterrupt

        monkeypatch.setattr(Path, "mkdir", made_then_interrupted)
    with pytest.raises(KeyboardInterrupt), scratch_folder("edgeres-export-") as folder:
        (folder / "model.onnx").write_bytes(NEW)
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
