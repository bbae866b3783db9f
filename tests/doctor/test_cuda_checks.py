"""The CUDA checks against the real cuda-python where it is installed: on a machine without a driver they
fail with the error and the advice (tests/gpu/test_doctor_gpu.py covers a GPU)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from edgeres.doctor.check import Status
from edgeres.doctor.cuda_checks import (
    DRIVER_INSTALL,
    check_cuda_driver,
    check_cuda_graph,
    check_cuda_python,
    check_gpu,
    check_nvml,
    check_pinned_memory,
    check_stream_and_events,
    cuda_text,
)
from edgeres.doctor.runner import Step, run_checks

HAS_CUDA_PYTHON = importlib.util.find_spec("cuda") is not None and importlib.util.find_spec("cuda.bindings") is not None
needs_cuda_python = pytest.mark.skipif(not HAS_CUDA_PYTHON, reason="cuda-python (cuda.bindings) is not installed")


def driver_version() -> int:
    from cuda.bindings import runtime

    return int(runtime.cudaDriverGetVersion()[1])


def test_cuda_versions_read_as_major_minor() -> None:
    assert cuda_text(12060) == "12.6"
    assert cuda_text(13040) == "13.4"
    assert cuda_text(11080) == "11.8"


def test_missing_cuda_python_fails_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules makes the import fail
    outcome = check_cuda_python()
    assert outcome.status is Status.FAIL and "cuda-python is not installed" in outcome.detail
    assert outcome.fix is not None and "edgeres[gpu]" in outcome.fix


@needs_cuda_python
def test_cuda_python_names_its_version_and_cuda() -> None:
    outcome = check_cuda_python()
    assert outcome.status is Status.PASS and "built for CUDA " in outcome.detail


@needs_cuda_python
def test_no_driver_fails_with_the_driver_advice() -> None:
    if driver_version() != 0:
        pytest.skip("an NVIDIA driver is installed here")
    outcome = check_cuda_driver()
    assert outcome.status is Status.FAIL and outcome.detail.startswith("no NVIDIA driver found")
    assert outcome.fix == DRIVER_INSTALL


@needs_cuda_python
def test_no_gpu_is_a_fail_line_naming_the_cuda_error() -> None:
    if driver_version() != 0:
        pytest.skip("an NVIDIA driver is installed here")
    (check,) = run_checks([Step("gpu", check_gpu, DRIVER_INSTALL)]).checks
    assert check.status is Status.FAIL and check.detail.startswith("cudaGetDevice failed: cudaError")
    assert check.fix == DRIVER_INSTALL


@needs_cuda_python
@pytest.mark.parametrize(
    ("check", "call"),
    [
        (check_pinned_memory, "cudaMallocHost"),
        (check_stream_and_events, "cudaStreamCreateWithFlags"),
        (check_cuda_graph, "cudaStreamCreateWithFlags"),
    ],
)
def test_without_a_driver_the_memory_checks_fail_naming_the_call(check, call: str) -> None:
    if driver_version() != 0:
        pytest.skip("an NVIDIA driver is installed here")
    (result,) = run_checks([Step("probe", check, DRIVER_INSTALL)]).checks
    assert result.status is Status.FAIL and result.detail.startswith(f"{call} failed: cudaError"), result


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="pynvml is installed here")
def test_no_pynvml_is_a_skip(tmp_path: Path) -> None:
    outcome = check_nvml(jetson_release=tmp_path / "nv_tegra_release")
    assert outcome.status is Status.SKIP and outcome.detail.startswith("pynvml is not installed")
