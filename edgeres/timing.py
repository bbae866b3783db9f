"""Timing a call: how long to run it (`RunLength`) and the seconds each call took (`timed_calls`).

Below every stage, so that any stage that times something (the profiler, the fallback search) shares one
clock loop without importing the profiler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgeres.errors import UserInputError

DEFAULT_ITERATIONS = 50


@dataclass(frozen=True)
class RunLength:
    """How long each measurement runs: a fixed number of calls, or a wall-clock budget in seconds."""

    iterations: int | None = DEFAULT_ITERATIONS
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.iterations is None) == (self.seconds is None):
            raise UserInputError("run length: give either a number of iterations or a duration in seconds, not both")
        if self.iterations is not None and self.iterations < 1:
            raise UserInputError(f"iterations {self.iterations}: must be at least 1")
        if self.seconds is not None and not self.seconds > 0:
            raise UserInputError(f"duration {self.seconds} s: must be more than 0")

    def describe(self) -> str:
        return f"{self.iterations} iterations" if self.iterations is not None else f"{self.seconds:g} s"


def timed_calls(call: Callable[[], object], run_length: RunLength) -> np.ndarray:
    """Seconds per call of `call`, one after the other, for the given count or time budget."""
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + run_length.seconds if run_length.seconds is not None else None
    while True:
        start = clock()
        call()
        end = clock()
        samples.append(end - start)
        if deadline is None:
            if len(samples) >= (run_length.iterations or 1):
                break
        elif end >= deadline:
            break
    return np.asarray(samples)
