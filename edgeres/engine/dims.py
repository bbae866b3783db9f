"""Shapes to and from TensorRT's `Dims` (tensorrt imported only when a Dims is made)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorrt as trt


def as_dims(shape: Sequence[int]) -> trt.Dims:
    """A real `trt.Dims` from a tuple of ints (TensorRT's Dims(list) constructor), not a cast:
    pybind would accept the tuple too, but the stubs declare Dims and this keeps both honest."""
    import tensorrt as trt

    return trt.Dims([int(d) for d in shape])


def dims_tuple(dims: trt.Dims) -> tuple[int, ...]:
    """A `trt.Dims` as a tuple of ints; -1 marks a dimension set at run time."""
    return tuple(int(dims[i]) for i in range(len(dims)))

