"""tests/gpu runs only where TensorRT imports and a CUDA GPU answers; elsewhere every test is skipped."""

from __future__ import annotations

import pytest


def _why_not() -> str | None:
    try:
        from edgeres.engine.target import running_target

        running_target()
    except Exception as exc:  # BackendUnavailableError, CudaError: both mean "not here"
        return f"needs TensorRT and an NVIDIA GPU: {exc}"
    return None


REASON = _why_not()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)
            if REASON is not None:
                item.add_marker(pytest.mark.skip(reason=REASON))
