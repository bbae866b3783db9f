"""The TensorRT checks that can run without TensorRT: the version parse and the SKIP where it is absent."""

from __future__ import annotations

import importlib.util

import pytest

from edgeres.doctor.check import Status
from edgeres.doctor.tensorrt_checks import check_tensorrt, tensorrt_major


def test_tensorrt_major() -> None:
    assert tensorrt_major("10.3.0.30") == 10
    assert tensorrt_major("8.6.2") == 8
    assert tensorrt_major("11") == 11
    assert tensorrt_major("rc1") is None


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_no_tensorrt_is_a_skip_saying_how_to_get_it() -> None:
    outcome = check_tensorrt()
    assert outcome.status is Status.SKIP
    assert outcome.detail.startswith("TensorRT is not installed") and "JetPack" in outcome.detail
