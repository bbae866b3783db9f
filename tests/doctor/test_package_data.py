"""The shipped data files: present and readable here; a broken copy of each fails with the reinstall fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgeres.doctor.check import Status
from edgeres.doctor.package_data import (
    CLASS_NAMES,
    REPORT_SCHEMA,
    check_calibration_photographs,
    check_class_names,
    check_report_schema,
)
from edgeres.frames.images import default_calibration_dir


def test_the_installed_data_passes() -> None:
    assert check_class_names().status is Status.PASS
    assert check_class_names().detail.endswith(": 1000 names")
    assert check_report_schema().status is Status.PASS
    photos = check_calibration_photographs()
    assert photos.status is Status.PASS and "JPEG photographs, all readable" in photos.detail


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A copy of the package's data folder, to damage."""
    return Path(shutil.copytree(CLASS_NAMES.parent, tmp_path / "data"))


def test_a_missing_class_names_file_fails(data_copy: Path) -> None:
    (data_copy / CLASS_NAMES.name).unlink()
    outcome = check_class_names(data_copy / CLASS_NAMES.name)
    assert outcome.status is Status.FAIL
    assert outcome.detail == f"{data_copy / CLASS_NAMES.name}: class-names file not found"
    assert outcome.fix is not None and "reinstall" in outcome.fix and CLASS_NAMES.name in outcome.fix


def test_a_short_class_names_file_fails(data_copy: Path) -> None:
    names = data_copy / CLASS_NAMES.name
    names.write_text("\n".join(names.read_text().splitlines()[:999]) + "\n")
    outcome = check_class_names(names)
    assert outcome.status is Status.FAIL and outcome.detail == f"{names}: 999 class names, expected 1000"


@pytest.mark.parametrize(
    ("content", "says"), [("{not json", "Expecting property name"), ("[1, 2]", "a JSON list, not a schema object")]
)
def test_a_damaged_schema_fails(tmp_path: Path, content: str, says: str) -> None:
    schema = tmp_path / REPORT_SCHEMA.name
    schema.write_text(content)
    outcome = check_report_schema(schema)
    assert outcome.status is Status.FAIL and says in outcome.detail and outcome.fix is not None


def test_a_missing_schema_fails(tmp_path: Path) -> None:
    outcome = check_report_schema(tmp_path / REPORT_SCHEMA.name)
    assert outcome.status is Status.FAIL and "No such file or directory" in outcome.detail


def test_a_truncated_photograph_fails_naming_it(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(default_calibration_dir(), tmp_path / "calibration"))
    victim = sorted(folder.glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[:2000])
    outcome = check_calibration_photographs(folder)
    assert outcome.status is Status.FAIL
    assert f"{victim}: truncated JPEG" in outcome.detail and outcome.fix is not None


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p], ids=["missing", "no-jpeg"])
def test_no_photographs_fails(tmp_path: Path, make) -> None:
    (tmp_path / "README.md").write_text("no pictures here")
    outcome = check_calibration_photographs(make(tmp_path))
    assert outcome.status is Status.FAIL and outcome.fix is not None
