"""The CUDA helper's error checking, run against the real cuda-python where it is installed.

cuda-python imports without a GPU; on a machine without a driver or device every runtime call
returns an error code, which is exactly what `check` must turn into a named exception.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from edgeres.engine.cuda import CudaError, PinnedArray, Stream, check, current_device, runtime_module
from edgeres.errors import BackendUnavailableError

HAS_CUDA_PYTHON = importlib.util.find_spec("cuda") is not None and importlib.util.find_spec("cuda.bindings") is not None
needs_cuda_python = pytest.mark.skipif(not HAS_CUDA_PYTHON, reason="cuda-python (cuda.bindings) is not installed")


def test_missing_cuda_python_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules makes the import fail
    with pytest.raises(BackendUnavailableError, match="cuda-python is not installed"):
        runtime_module()


@needs_cuda_python
def test_check_unpacks_values_and_names_errors() -> None:
    cudart = runtime_module()
    name = check("cudaGetErrorName", cudart.cudaGetErrorName(cudart.cudaError_t.cudaErrorNoDevice))
    assert name == b"cudaErrorNoDevice"
    assert check("none", (cudart.cudaError_t.cudaSuccess,)) is None
    assert check("pair", (cudart.cudaError_t.cudaSuccess, 1, 2)) == (1, 2)
    with pytest.raises(CudaError, match=r"^cudaMalloc failed: cudaErrorMemoryAllocation$"):
        check("cudaMalloc", (cudart.cudaError_t.cudaErrorMemoryAllocation, None))


@needs_cuda_python
def test_real_call_without_a_gpu_raises_the_runtime_error_name() -> None:
    cudart = runtime_module()
    status, count = cudart.cudaGetDeviceCount()
    if status == cudart.cudaError_t.cudaSuccess and count > 0:
        assert current_device().compute_capability.count(".") == 1
        return
    with pytest.raises(CudaError, match=r"cudaGetDevice failed: cudaError(InsufficientDriver|NoDevice)"):
        current_device()
    with pytest.raises(CudaError, match=r"cudaStreamCreateWithFlags failed: cudaError"):
        Stream()
    with pytest.raises(CudaError, match=r"cudaMallocHost failed: cudaError"):
        PinnedArray((2, 3), np.dtype(np.float32))
