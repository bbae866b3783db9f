"""BuildOptions refuse what cannot be built before any work starts; making them reads no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions


def test_a_missing_calibration_source_is_refused_before_the_export(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="nope: calibration source not found"):
        BuildOptions(calib=tmp_path / "nope").check_files()


def test_an_existing_calibration_folder_is_accepted(tmp_path: Path) -> None:
    options = BuildOptions(calib=tmp_path)
    options.check_files()
    assert options.calib == tmp_path


def test_making_options_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Options are a value: the files they name are checked when a build starts, not when they are made."""
    opened: list[object] = []
    monkeypatch.setattr("builtins.open", lambda *args, **kwargs: opened.append(args) or None)
    monkeypatch.setattr(Path, "exists", lambda self: opened.append(self) or False)
    monkeypatch.setattr(Path, "is_file", lambda self: opened.append(self) or False)
    BuildOptions(onnx=tmp_path / "model.onnx", calib=tmp_path / "photos", eval_csv=tmp_path / "val.csv")
    assert opened == []
