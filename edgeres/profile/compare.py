"""Interleaved comparison of ONNX artifacts: alternate short rounds between them at each batch size.

Artifacts are profiled one after the other, so when the CPU's speed drifts during a run (frequency
scaling, other load on a shared machine) the later artifact is timed on a different machine than the
first, and a speed-up ratio between them mixes the two effects. Alternating rounds spreads the drift
over every artifact alike; the median over all of an artifact's interleaved calls is what the
comparison table divides. TensorRT engines are not part of this pass (one GPU context per engine
would be held at once, and GPU clocks do not drift the way a shared CPU's do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import numpy as np

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.errors import UserInputError
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile, InterleavedLatency
from edgeres.profile.stats import LatencyStats
from edgeres.profile.timing import input_batch
from edgeres.runtime.base import Runner
from edgeres.timing import RunLength, timed_calls

DEFAULT_ROUNDS = 7


def interleaved_seconds(calls: Sequence[Callable[[], object]], rounds: int, calls_per_round: int) -> list[np.ndarray]:
    """Seconds per timed call of each callable over `rounds` rounds.

    In each round every callable runs one untimed call (its caches and threads wake up again after the
    others ran), then `calls_per_round` timed calls. The order reverses every round (A B, B A, ...) so
    neither artifact always follows the other.
    """
    if rounds < 1 or calls_per_round < 1:
        raise UserInputError(f"interleaved pass: rounds {rounds} and calls per round {calls_per_round} must be >= 1")
    run_length = RunLength(iterations=calls_per_round)
    samples: list[list[float]] = [[] for _ in calls]
    for round_index in range(rounds):
        order = range(len(calls)) if round_index % 2 == 0 else range(len(calls) - 1, -1, -1)
        for index in order:
            call = calls[index]
            call()
            samples[index].extend(timed_calls(call, run_length).tolist())
    return [np.asarray(s) for s in samples]


def calls_per_round(profiles: Sequence[ArtifactProfile], batch: int, rounds: int) -> int:
    """Timed calls per round so each artifact's interleaved calls add up to about its main run's count
    (the fewest any artifact made at this batch: the pass costs at most what the main run did)."""
    counts = [len(b.samples_ms) for p in profiles for b in p.batches if b.batch == batch]
    return max(1, min(counts, default=1) // rounds)


def add_interleaved(
    profiles: tuple[ArtifactProfile, ...],
    options: ProfileOptions,
    new_runner: Callable[[ArtifactProfile], Runner],
    rounds: int = DEFAULT_ROUNDS,
) -> tuple[ArtifactProfile, ...]:
    """`profiles` with `BatchResult.interleaved` filled in for every ONNX artifact, when there are two or more.

    One runner per artifact, `new_runner(profile)` (its runtime and thread option as in its main run), is held
    open for the pass. A single artifact, or a single ONNX one among engines, is returned unchanged.
    """
    onnx_at = [i for i, p in enumerate(profiles) if p.kind is ArtifactKind.ONNX]
    if len(onnx_at) < 2:
        return profiles
    chosen = [profiles[i] for i in onnx_at]
    measured: dict[tuple[int, int], InterleavedLatency] = {}
    with ExitStack() as stack:
        runners = [stack.enter_context(new_runner(p)) for p in chosen]
        for batch in options.batches:
            if not all(any(b.batch == batch for b in p.batches) for p in chosen):
                continue
            inputs = [input_batch(r.input_spec.shape, r.input_spec.dtype, batch, r.artifact) for r in runners]
            per_round = calls_per_round(chosen, batch, rounds)
            calls = [_bind(runner, batch_input) for runner, batch_input in zip(runners, inputs, strict=True)]
            for index, seconds in zip(onnx_at, interleaved_seconds(calls, rounds, per_round), strict=True):
                measured[(index, batch)] = InterleavedLatency(LatencyStats.from_seconds(seconds), rounds, per_round)
    updated = list(profiles)
    for index in onnx_at:
        profile = profiles[index]
        batches = tuple(
            dataclasses.replace(b, interleaved=measured.get((index, b.batch), b.interleaved)) for b in profile.batches
        )
        updated[index] = dataclasses.replace(profile, batches=batches)
    return tuple(updated)


def _bind(runner: Runner, batch_input: np.ndarray) -> Callable[[], object]:
    """One inference call on a fixed input (a closure per runner, not one shared loop variable)."""
    return lambda: runner.infer(batch_input)
