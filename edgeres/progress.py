"""Progress reporting: the library calls these hooks; only the CLI draws bars."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

ProgressCallback = Callable[[int], None]  # called with the number of samples just processed


class StageProgress(Protocol):
    """One bar per stage: `begin` (total None: unknown), `advance` by samples done, `end`."""

    def begin(self, task: str, total: int | None) -> None: ...
    def advance(self, amount: int) -> None: ...
    def end(self) -> None: ...


class SilentProgress:
    """Reports nowhere: the default when the caller draws nothing."""

    def begin(self, task: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def end(self) -> None:
        pass


def _ignore(amount: int) -> None:
    pass


class Stages:
    """The bookkeeping every stage of a run repeats: its progress bar and, when named, its time."""

    def __init__(self, progress: StageProgress | None = None) -> None:
        self.progress: StageProgress = progress or SilentProgress()
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def stage(
        self, task: str | None, total: int | None = None, timing: str | None = None
    ) -> Iterator[ProgressCallback]:
        """Show `task` (with `total` steps; None: no bar) for the block, which advances it; record its
        seconds as `timing`."""
        if task is not None:
            self.progress.begin(task, total)
        tick = time.perf_counter()
        yield self.progress.advance if task is not None else _ignore
        if timing is not None:
            self.timings[timing] = round(time.perf_counter() - tick, 2)
        if task is not None:
            self.progress.end()

    def total(self) -> dict[str, float]:
        """Every recorded timing and the whole run's seconds (`total_s`)."""
        return self.timings | {"total_s": round(time.perf_counter() - self.started, 2)}
