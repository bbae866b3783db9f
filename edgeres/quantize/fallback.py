"""Automatic fallback: the fewest layers kept out of INT8 that make the fidelity gate pass.

Greedy forward selection, re-measured at every step because the layers' effects are not additive: the
first pick is the layer whose float restoration alone helps most, by exhaustive leave-one-out over every
quantized layer; each later step tries the best-ranked remaining layers of that leave-one-out on top of
the layers already kept and keeps the one that helps most. Each step records the layers kept, the
measures, the share of the network's multiply-accumulates left out of INT8 (a cost that does not depend
on the hardware) and the measured onnxruntime CPU latency of that candidate. Candidates are compared as
the onnxruntime CPU twin (fast integer kernels); a step whose twin meets the gate is confirmed on the
TensorRT Q/DQ model too (its own arithmetic, its FP16 or FP32 remainder), since the build gates both, and
the search goes on while that one falls short. It stops when both pass or the budget of layers is spent;
then the best candidate is the one to write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback
from edgeres.quantize.fidelity import FidelityReport, HeldOutEvaluation, Kernels
from edgeres.quantize.gate import DEFAULT_MAX_FALLBACK, FidelityGate, check_fallback_budget, check_fallback_target
from edgeres.quantize.sensitivity import NetworkLayer, QuantizedVariants
from edgeres.timing import RunLength, timed_calls

CANDIDATES_PER_STEP = 6  # after the first step: best-ranked remaining layers tried on top of those kept
LATENCY_CALLS = 20  # batch-1 calls timed per candidate (after LATENCY_WARMUP untimed ones)
LATENCY_WARMUP = 3

Candidate = Sequence[str]  # node names kept out of INT8, in the order they were added


@dataclass(frozen=True)
class FallbackMetrics:
    """How the search measures a candidate, injected so the search is only the strategy.

    `twin`: the fast model every candidate is compared on; `confirm`: the model the build ships, measured
    where the twin meets the gate; `latency_ms`: what the candidate costs at run time (reported, not optimised).
    """

    twin: Callable[[Candidate], FidelityReport]
    confirm: Callable[[Candidate], FidelityReport]
    latency_ms: Callable[[Candidate], float]
    best_possible: FidelityReport  # the FP32 model against itself


@dataclass(frozen=True)
class FallbackStep:
    kept: tuple[str, ...]  # keep_float names, in the order they were added
    measure: FidelityReport  # the onnxruntime CPU twin
    tensorrt: FidelityReport | None  # the TensorRT Q/DQ model, measured where the twin meets the gate
    mac_share: float  # of the quantized network's multiply-accumulates now left in higher precision
    latency_ms: float  # median onnxruntime CPU latency, batch 1
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "kept": list(self.kept),
            "count": len(self.kept),
            **self.measure.measures(),
            "tensorrt": None if self.tensorrt is None else self.tensorrt.measures(),
            "mac_share": self.mac_share,
            "latency_ms": self.latency_ms,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class FallbackSearch:
    steps: tuple[FallbackStep, ...]
    chosen: int  # index into steps
    max_fallback: int  # the budget the search had: --max-fallback, or fewer when the network has fewer layers
    evaluations: int  # candidate models measured

    @property
    def met(self) -> bool:
        return self.steps[self.chosen].passed

    @property
    def keep_float(self) -> tuple[str, ...]:
        return self.steps[self.chosen].kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "keep_float": list(self.keep_float),
            "keep_float_option": keep_float_option(self.keep_float),
            "max_fallback": self.max_fallback,
            "evaluations": self.evaluations,
            "curve": [step.as_dict() for step in self.steps],
            "measured_on": "onnxruntime CPU twin (integer kernels) against FP32 logits, held-out samples; "
            "a step whose twin meets the gate also as the TensorRT Q/DQ model (its Q/DQ arithmetic)",
        }


def keep_float_option(names: Sequence[str]) -> str:
    """The `--keep-float` argument that reproduces a set of layers."""
    return "--keep-float " + ",".join(names) if names else "(no layer kept in float)"


def check_reachable(gate: FidelityGate, best_possible: FidelityReport) -> None:
    """Refuse a target FP32 itself misses: no placement can meet it."""
    unreachable = gate.failures(best_possible)
    if unreachable:
        raise UserInputError(f"no placement can meet the gate: on the FP32 model itself, {unreachable[0]}")


class _Search:
    """The bookkeeping of one search: what was measured, and each step as the curve records it."""

    def __init__(self, metrics: FallbackMetrics, layers: Sequence[NetworkLayer], gate: FidelityGate,
                 progress: ProgressCallback | None) -> None:  # fmt: skip
        self.metrics, self.gate, self.progress = metrics, gate, progress
        self.by_node = {layer.node: layer for layer in layers}
        self.total_macs = sum(layer.macs for layer in layers) or 1
        self.evaluations = 0

    def measured(self, kept: Candidate) -> FidelityReport:
        self.evaluations += 1
        result = self.metrics.twin(kept)
        if self.progress is not None:
            self.progress(1)
        return result

    def step(self, kept: Candidate, measure: FidelityReport) -> FallbackStep:
        tensorrt = None if self.gate.failures(measure) else self.metrics.confirm(kept)
        share = sum(self.by_node[node].macs for node in kept) / self.total_macs
        names = tuple(self.by_node[node].name for node in kept)
        passed = tensorrt is not None and not self.gate.failures(tensorrt)
        return FallbackStep(names, measure, tensorrt, share, self.metrics.latency_ms(kept), passed)


def search_fallback(
    metrics: FallbackMetrics,
    layers: Sequence[NetworkLayer],
    gate: FidelityGate,
    max_fallback: int = DEFAULT_MAX_FALLBACK,
    leave_one_out: Mapping[str, FidelityReport] | None = None,
    progress: ProgressCallback | None = None,
) -> FallbackSearch:
    """Search as the module docstring says; `leave_one_out` (node -> report) reuses a sensitivity pass."""
    check_fallback_target(gate)
    check_fallback_budget(max_fallback)
    check_reachable(gate, metrics.best_possible)
    search, budget = _Search(metrics, layers, gate, progress), min(max_fallback, len(layers))
    steps = [search.step((), search.measured(()))]
    if not steps[0].passed and layers:
        single = dict(leave_one_out or {})
        single |= {layer.node: search.measured([layer.node]) for layer in layers if layer.node not in single}
        ranking = sorted(search.by_node, key=lambda node: gate.score(single[node]), reverse=True)
        kept = [ranking[0]]
        steps.append(search.step(kept, single[ranking[0]]))
        while not steps[-1].passed and len(kept) < budget:
            tried = [node for node in ranking if node not in kept][:CANDIDATES_PER_STEP]
            trials = {node: search.measured([*kept, node]) for node in tried}
            kept.append(max(trials, key=lambda node: gate.score(trials[node])))
            steps.append(search.step(kept, trials[kept[-1]]))
    passing = [index for index, s in enumerate(steps) if s.passed]
    chosen = passing[0] if passing else max(range(len(steps)), key=lambda i: gate.score(steps[i].measure))
    return FallbackSearch(tuple(steps), chosen, budget, search.evaluations)


def fallback_evaluations(layers: Sequence[NetworkLayer], max_fallback: int, reused: bool) -> int:
    """The most candidate models `search_fallback` measures (for a progress bar)."""
    return 1 + (0 if reused else len(layers)) + CANDIDATES_PER_STEP * max(0, min(max_fallback, len(layers)) - 1)


def twin_latency_ms(model: onnx.ModelProto, sample: np.ndarray, threads: int = PASS_THREADS) -> float:
    """Median batch-1 latency of `model` on onnxruntime CPU, `LATENCY_CALLS` calls after a warm-up."""
    session = cpu_session(model, threads)
    feed = {session.get_inputs()[0].name: sample}
    for _ in range(LATENCY_WARMUP):
        session.run(None, feed)
    return float(np.median(timed_calls(lambda: session.run(None, feed), RunLength(iterations=LATENCY_CALLS)))) * 1e3


def fallback_metrics(variants: QuantizedVariants, evaluation: HeldOutEvaluation) -> FallbackMetrics:
    """Candidates as the build makes them: compared as the CPU twin, confirmed as the TensorRT Q/DQ model
    (its own arithmetic), timed as the twin at batch 1."""
    return FallbackMetrics(
        twin=lambda kept: evaluation.measure(variants.keeping(kept)),
        confirm=lambda kept: evaluation.measure(variants.tensorrt(kept), kernels=Kernels.REFERENCE),
        latency_ms=lambda kept: twin_latency_ms(variants.keeping(kept), evaluation.first_sample, evaluation.threads),
        best_possible=evaluation.reference_report(),
    )
