"""The camera loop: each frame as it arrives through the model, its best classes and inference time out.

The model takes the camera's frame as it is (uint8, 2 bytes per pixel) and converts, resizes and normalises
it itself, so the loop only hands bytes to the runtime.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeres.artifacts.class_names import ClassNames, class_names_for
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.runtime.base import Runner
from edgeres.runtime.topk import Prediction, named, top_k

MOST_FREQUENT = 3  # top-1 classes the summary names


@dataclass(frozen=True)
class FrameResult:
    """One frame's best classes (best first) and the time its inference took."""

    index: int
    latency_ms: float
    top: tuple[Prediction, ...]

    def describe(self) -> str:
        classes = ", ".join(f"{p.name} {p.probability:.0%}" for p in self.top)
        return f"frame {self.index:4d}  {self.latency_ms:7.2f} ms  {classes}"


@dataclass(frozen=True)
class CameraSummary:
    """A run's frames, throughput with reading included, inference latency and most frequent top-1 classes."""

    latency: LatencyStats
    fps: float
    most_frequent: tuple[tuple[str, int], ...]

    def describe(self) -> tuple[str, str]:
        stats = self.latency
        return (
            f"{stats.count} frames, {self.fps:.1f} frames/s including reading; inference mean {stats.mean_ms:.2f} ms, "
            f"median {stats.median_ms:.2f} ms, p95 {stats.p95_ms:.2f} ms",
            "most frequent top-1: " + ", ".join(f"{name} ({count})" for name, count in self.most_frequent),
        )


class CameraLoop:
    """A loaded runner, warmed up once (its first call allocates and is not timed), and its class names."""

    def __init__(
        self, runner: Runner, contract: InputContract, labels: Path | None = None, top: int = 5,
        recorded: tuple[str, ...] | None = None,
    ) -> None:  # fmt: skip
        warm = runner.infer(np.zeros((1, *contract.frame_shape), np.uint8))
        self.runner = runner
        self.names: ClassNames = class_names_for(warm.shape[1], labels, recorded)
        if not 1 <= top <= len(self.names):
            raise UserInputError(f"top {top} classes: the model has {len(self.names)}")
        self.top = top
        self._latencies_ms: list[float] = []
        self._winners: Counter[str] = Counter()
        self._elapsed_s = 0.0

    def classify(self, frames: Iterable[np.ndarray], limit: int | None = None) -> Iterator[FrameResult]:
        """Each frame's result as soon as it is classified; at most `limit` frames (no frame read beyond them)."""
        started = time.perf_counter()
        for index, frame in enumerate(itertools.islice(frames, limit)):
            tick = time.perf_counter()
            logits = self.runner.infer(frame[None])
            latency_ms = (time.perf_counter() - tick) * 1e3
            top = named(top_k(logits, self.top), 0, self.names)
            self._latencies_ms.append(latency_ms)
            self._winners[top[0].name] += 1
            yield FrameResult(index, latency_ms, top)
            self._elapsed_s = time.perf_counter() - started

    def summary(self, source: str) -> CameraSummary:
        """The run so far; a source that gave no frame is refused, naming it."""
        if not self._latencies_ms:
            raise UserInputError(f"{source}: no frame was read")
        return CameraSummary(
            LatencyStats.from_ms(self._latencies_ms),
            frames_per_second(len(self._latencies_ms), self._elapsed_s),
            tuple(self._winners.most_common(MOST_FREQUENT)),
        )
