"""BuildOptions refuse what cannot be built before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions


def test_a_missing_calibration_source_is_refused_before_the_export(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="nope: calibration source not found"):
        BuildOptions(calib=tmp_path / "nope")


def test_an_existing_calibration_folder_is_accepted(tmp_path: Path) -> None:
    assert BuildOptions(calib=tmp_path).calib == tmp_path
