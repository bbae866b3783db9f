"""The ONNX Runtime runner: CPU everywhere, the CUDA execution provider first where the install has it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.ort_session import disabled_optimizers, session_options
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.runtime.base import Runner

if TYPE_CHECKING:

    pass


_ORT_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(uint16)": np.uint16,
}


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime: CPU everywhere, CUDA execution provider first when the installed build has it."""

    def __init__(self, artifact: Path, providers: Sequence[str] | None = None, threads: int = 0) -> None:
        super().__init__(artifact)
        self.requested_providers = tuple(providers) if providers else None
        self.threads = threads
        self._session: Any = None

    def _load_impl(self) -> TensorSpec:
        available = ort.get_available_providers()
        wanted = self.requested_providers or tuple(
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
        )
        missing = [p for p in wanted if p not in available]
        if missing:
            raise UserInputError(f"onnxruntime here has no {', '.join(missing)} (available: {', '.join(available)})")
        options = self._session_options()
        graph = load_onnx(self.artifact, weights=False)  # the file's own refusals first (empty, missing weights)
        try:
            disabled = disabled_optimizers(graph)  # what would compute the model wrongly
            self._session = ort.InferenceSession(
                str(self.artifact), options, providers=list(wanted), disabled_optimizers=disabled
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UserInputError(f"{self.artifact}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise UserInputError(f"{self.artifact}: {len(inputs)} inputs, a classifier with one input is expected")
        first = inputs[0]
        if first.type not in _ORT_TYPES:
            raise UserInputError(f"{self.artifact}: input '{first.name}' has unsupported type {first.type}")
        shape = tuple(d if isinstance(d, int) else None for d in first.shape)
        return TensorSpec(first.name, np.dtype(_ORT_TYPES[first.type]), shape)

    def _session_options(self) -> Any:
        """Options for the session; a hook so a subclass (the profiler's) can switch on profiling."""
        return session_options(self.threads)

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, in priority order."""
        return list(self._session.get_providers()) if self._session is not None else []

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._session.run(None, {self.input_spec.name: batch})
        return np.asarray(outputs[0])

    def _close_impl(self) -> None:
        self._session = None

