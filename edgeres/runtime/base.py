"""Run an artifact: one runner interface for the ONNX Runtime, OpenVINO and TensorRT runners.

The same application code runs on a laptop or an x86 box (ONNX Runtime or OpenVINO, CPU) and on the device
(TensorRT).
Nothing on this path imports torch: camera applications do not ship PyTorch.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import EdgeresError, UserInputError

if TYPE_CHECKING:
    pass


RunnerT = TypeVar("RunnerT", bound="Runner")


class RunnerState(Enum):
    NEW = "new"
    LOADED = "loaded"
    CLOSED = "closed"


class Runner(ABC):
    """Load once, infer many times, close; also a context manager.

    Public methods check state and inputs; subclasses implement the `*_impl` methods only.
    """

    def __init__(self, artifact: Path) -> None:
        self.artifact = Path(artifact)
        self.state = RunnerState.NEW
        self._spec: TensorSpec | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def load(self) -> None:
        if self.state is not RunnerState.NEW:
            raise EdgeresError(f"{self.name}: load() called on a runner that is {self.state.value}")
        if not self.artifact.is_file():
            raise UserInputError(f"{self.artifact}: file not found")
        try:
            self._spec = self._load_impl()
        except BaseException:
            # release whatever the failed load had already acquired (stream, buffers, engine...);
            # a second failure while cleaning up must not hide the first one
            with contextlib.suppress(Exception):
                self._close_impl()
            raise
        self.state = RunnerState.LOADED

    @property
    def input_spec(self) -> TensorSpec:
        if self._spec is None:
            raise EdgeresError(f"{self.name}: load() the runner before asking for its input")
        return self._spec

    @property
    def batch_range(self) -> tuple[int, int | None]:
        """The batch sizes the loaded model takes: a fixed batch axis, or 1 to unbounded (None)."""
        first = self.input_spec.shape[0] if self.input_spec.shape else None
        return (first, first) if first is not None else (1, None)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits [N, classes] as float32 numpy for one input batch in the model's own layout."""
        if self.state is not RunnerState.LOADED:
            raise EdgeresError(f"{self.name}: infer() needs a loaded runner, this one is {self.state.value}")
        if not isinstance(batch, np.ndarray):
            raise UserInputError(f"input '{self.input_spec.name}': a numpy array is needed, got {type(batch).__name__}")
        self.input_spec.check(batch)
        logits = self._infer_impl(np.ascontiguousarray(batch))
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        """Release the backend's resources; closing twice is harmless."""
        if self.state is RunnerState.LOADED:
            self._close_impl()
        self.state = RunnerState.CLOSED

    def __enter__(self: RunnerT) -> RunnerT:
        if self.state is RunnerState.NEW:
            self.load()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def _load_impl(self) -> TensorSpec: ...

    @abstractmethod
    def _infer_impl(self, batch: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _close_impl(self) -> None:
        """Release the backend; also called after a failed `_load_impl`, so it must cope with partial state."""
