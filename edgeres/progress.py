"""Progress reporting: the library calls these hooks; only the CLI draws bars."""

from __future__ import annotations

from collections.abc import Callable
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
