"""A network tensor as every stage describes it: name, numpy element type, shape (None: set at run time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeres.errors import UserInputError


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of a network input or output; None marks a dimension set at run time."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int | None, ...]

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the graph, or None when the batch axis is dynamic."""
        return self.shape[0] if self.shape else None

    def sample_shape(self, where: object) -> tuple[int, ...]:
        """The shape without the batch axis; every one of those axes must be fixed."""
        rest = self.shape[1:]
        if any(d is None for d in rest):
            raise UserInputError(
                f"{where}: tensor '{self.name}' has a dynamic axis besides the batch: {self.describe()}"
            )
        return tuple(int(d) for d in rest if d is not None)

    def check(self, array: np.ndarray) -> None:
        """Raise UserInputError unless `array` has this dtype, rank and every fixed dimension."""
        if array.dtype != self.dtype:
            raise UserInputError(f"input '{self.name}': dtype {array.dtype} given, the model takes {self.dtype}")
        if array.ndim != len(self.shape):
            raise UserInputError(
                f"input '{self.name}': shape {array.shape} given, the model takes rank {len(self.shape)} "
                f"{self.describe()}"
            )
        for axis, (want, got) in enumerate(zip(self.shape, array.shape, strict=True)):
            if want is not None and want != got:
                raise UserInputError(f"input '{self.name}': axis {axis} is {got}, the model takes {self.describe()}")
            if got == 0:
                raise UserInputError(f"input '{self.name}': axis {axis} is empty")

    def describe(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"
