"""The engine checks up to TensorRT: on a machine without it, everything before the build (the tiny model's
FP16 and INT8 variants, written to a scratch folder) runs, the build's refusal is the FAIL line, and the
scratch folder is gone afterwards. tests/gpu/test_doctor_gpu.py runs them whole."""

from __future__ import annotations

import importlib.util
import math
import tempfile
from pathlib import Path

import pytest

from edgeres.doctor.check import Status
from edgeres.doctor.engine_checks import FIX, check_fp16_engine, check_int8_engine, decibels
from edgeres.doctor.runner import Step, run_checks


def test_decibels_say_what_a_non_finite_score_means() -> None:
    assert decibels(41.26) == "41.3 dB"
    assert decibels(math.inf) == "exact"
    assert decibels(-math.inf) == "none (non-finite logits)"


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_without_tensorrt_the_engine_checks_fail_at_the_build_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where scratch_folder makes its folder
    steps = [Step("fp16 engine", check_fp16_engine, FIX), Step("int8 engine", check_int8_engine, FIX)]
    for check in run_checks(steps).checks:
        assert check.status is Status.FAIL and check.detail.startswith("TensorRT is not installed"), check
        assert check.fix == FIX
    assert list(tmp_path.iterdir()) == []
