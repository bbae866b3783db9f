"""The timing passes every back-end shares: synthetic input batches, synchronous latency, pipelined throughput.

`measure_batch` times one batch size (warm-up, synchronous calls, then the same number of calls kept in
flight); `time_runner` runs it for each batch size on a loaded runner, then the clip end to end when one is
given. Back-ends pass their own per-batch measurement where they add to it (TensorRT: stages, CUDA graphs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.errors import UserInputError
from edgeres.profile.end_to_end import ClipFrames, run_end_to_end
from edgeres.profile.memory import FrameBytes
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import BatchResult, EndToEndResult, PipelineMode
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.runtime.base import Runner
from edgeres.timing import RunLength, timed_calls


def pipelined_fps(call: Callable[[], object], frames_per_call: int, calls: int, in_flight: int) -> float:
    """Frames per second with `in_flight` calls running concurrently on a thread pool.

    ONNX Runtime releases the GIL inside `run`, so the calls really overlap.
    """
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="edgeres-pipe") as pool:
        start = time.perf_counter()
        futures = [pool.submit(call) for _ in range(calls)]
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - start
    return frames_per_second(frames_per_call * len(futures), elapsed)


def input_batch(shape: Sequence[int | None], dtype: np.dtype[Any], batch: int, artifact: Path) -> np.ndarray:
    """A seeded input of the model's shape with batch `batch` (timing does not depend on the values)."""
    fixed_batch = shape[0]
    if fixed_batch is not None and fixed_batch != batch:
        raise UserInputError(f"{artifact}: the model takes batch {fixed_batch} only, so batch size {batch} cannot run")
    if any(d is None for d in shape[1:]):
        raise UserInputError(f"{artifact}: input shape {list(shape)} has free non-batch axes; profile needs them fixed")
    full = (batch, *(int(d) for d in shape[1:] if d is not None))
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=full, endpoint=True).astype(dtype)
    return rng.standard_normal(full).astype(dtype)


def measure_batch(
    infer: Callable[[np.ndarray], object],
    batch_input: np.ndarray,
    options: ProfileOptions,
    queued_fps: Callable[[np.ndarray, int], float] | None = None,
) -> BatchResult:
    """Warm up, then synchronous latency, then pipelined throughput over the same number of calls.

    `queued_fps(batch, calls)` replaces the thread pool where a backend queues work itself (CUDA).
    """
    batch = int(batch_input.shape[0])
    for _ in range(options.warmup):
        infer(batch_input)
    seconds = timed_calls(lambda: infer(batch_input), options.run_length)
    sync = LatencyStats.from_seconds(seconds)
    calls = max(len(seconds), options.in_flight)
    if queued_fps is None:
        mode, in_flight = PipelineMode.THREADS, options.in_flight
        piped = pipelined_fps(lambda: infer(batch_input), batch, calls, in_flight)
    else:
        mode, in_flight = PipelineMode.STREAM_QUEUE, calls
        piped = queued_fps(batch_input, calls)
    return BatchResult(
        batch=batch,
        sync=sync,
        sync_fps=frames_per_second(batch * len(seconds), float(seconds.sum())),
        pipelined_fps=piped,
        in_flight=in_flight,
        pipeline_mode=mode,
        unstable=sync.is_unstable(options.cv_warn),
        samples_ms=tuple(float(s * 1e3) for s in seconds),
    )


def frame_bytes_for(shape: Sequence[int | None], options: ProfileOptions) -> FrameBytes:
    """Bytes per frame at the clip's size (end-to-end mode) or else at the network's input size."""
    image_input = len(shape) == 4 and all(isinstance(d, int) for d in shape[1:])
    chw = (int(shape[1] or 0), int(shape[2] or 0), int(shape[3] or 0)) if image_input else None
    if options.clip is not None:
        frames = options.clip.frames
        return FrameBytes.for_frame(frames.width, frames.height, chw)
    if chw is None:
        raise UserInputError(
            f"input shape {list(shape)} is not [N, C, H, W]: the frame size must come from a clip of camera frames"
        )
    return FrameBytes.for_frame(chw[2], chw[1], chw)


def unstable_warning(path: Path, result: BatchResult, threshold: float) -> str:
    return (
        f"{path.name} batch {result.batch}: latency varies by CV {result.sync.cv:.0%} (> {threshold:.0%}); "
        "other load, frequency scaling or throttling - rerun on an idle machine or for a fixed duration"
    )


@dataclass(frozen=True)
class RunnerTimings:
    """What the timing passes over one loaded runner give: per-batch results, the end-to-end result
    (only with a clip) and a warning per batch whose latency was unstable."""

    batches: tuple[BatchResult, ...]
    end_to_end: EndToEndResult | None
    warnings: tuple[str, ...]


def time_runner(
    runner: Runner,
    path: Path,
    options: ProfileOptions,
    measure: Callable[[np.ndarray], BatchResult],
    clip_frames: ClipFrames | None = None,
) -> RunnerTimings:
    """Time each of `options.batches` with `measure` on a synthetic input, then the clip end to end if its frames
    are given.

    `measure` is the backend's own per-batch measurement (TensorRT adds stages and CUDA-graph replay)."""
    spec = runner.input_spec
    batches: list[BatchResult] = []
    warnings: list[str] = []
    for batch in options.batches:
        result = measure(input_batch(spec.shape, spec.dtype, batch, path))
        batches.append(result)
        if result.unstable:
            warnings.append(unstable_warning(path, result, options.cv_warn))
    end_to_end = None
    if clip_frames is not None:
        end_to_end = run_end_to_end(runner, clip_frames, options.run_length, options.warmup)
        warnings.extend(stream_end_warnings(path, clip_frames, end_to_end, options.run_length))
    return RunnerTimings(tuple(batches), end_to_end, tuple(warnings))


def stream_end_warnings(
    path: Path, frames: ClipFrames, result: EndToEndResult | None, run_length: RunLength
) -> tuple[str, ...]:
    """What a stream that ended before the run length cost this model's end-to-end run."""
    if result is None:
        return (
            f"{path.name}: not timed end to end: {frames.name} ended after {frames.frames_read} frame(s) in all, "
            "none left to time for it",
        )
    if frames.ended and run_length.iterations is not None and result.frames < run_length.iterations:
        timed = f"{result.frames} of {run_length.iterations}"
        return (f"{path.name}: end to end timed {timed} frame(s): {frames.name} ended",)
    return ()
