"""The CPU runtime step of an INT8 build: the TensorRT Q/DQ model on OpenVINO, measured, then the choice.

OpenVINO runs the TensorRT Q/DQ model as it is, on its own INT8 kernels, which fuse and round differently from
the Q/DQ reference arithmetic; so where OpenVINO is installed the build measures that model on it like the twin:
logits against FP32 (with the build's gate), against the reference arithmetic of the same file, and accuracy.
It counts as verified when it passes the gate and comes within the margin engine verification allows of the
reference arithmetic's own SQNR (edgeres.runtime.verification.required_sqnr). Then both CPU paths are timed at
batch 1, interleaved, and the faster verified one is recorded (edgeres.runtime.cpu_choice) for the camera
command, profile and deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts.fields import json_number
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.errors import UserInputError
from edgeres.progress import Stages
from edgeres.quantize.fidelity import (
    FidelityReport,
    HeldOutEvaluation,
    Kernels,
    compare_logits,
    model_logits,
    sqnr_text,
)
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.base import Runner
from edgeres.runtime.cpu_choice import CpuRuntimeChoice
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import OpenVinoRunner, import_openvino
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.verification import required_sqnr
from edgeres.timing import RunLength, timed_calls

TIMED_ROUNDS = 4  # alternating blocks per runtime, batch 1
CALLS_PER_ROUND = 5
WARMUP_CALLS = 3  # first calls allocate and tune
CPU_THREADS = 2  # as the quick profile and the fidelity passes: what the choice is made at


@dataclass(frozen=True)
class OpenVinoMeasure:
    """The Q/DQ model on OpenVINO: its report against FP32, against the reference arithmetic, and the verdict."""

    version: str
    fidelity: FidelityReport
    vs_reference: FidelityReport
    min_sqnr_db: float  # what the reference arithmetic reaches, less the verification margin
    failures: tuple[str, ...]

    @property
    def verified(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model": ArtifactRole.INT8_TENSORRT.value,
            "fidelity": self.fidelity.as_dict(),
            "vs_reference_arithmetic": {
                "sqnr_db": json_number(self.vs_reference.sqnr_db), "top1_agreement": self.vs_reference.top1_agreement
            },
            "min_sqnr_db": self.min_sqnr_db,
            "verified": self.verified,
            "failures": list(self.failures),
        }


@dataclass(frozen=True)
class CpuRuntimeStep:
    """What the step measured and chose."""

    choice: CpuRuntimeChoice
    openvino: OpenVinoMeasure | None = None
    latency_ms: dict[str, float] | None = None  # batch-1 medians by runtime, when both were timed

    def sections(self) -> dict[str, Any]:
        openvino = None if self.openvino is None else self.openvino.as_dict() | {"latency_ms": self.latency_ms}
        return {"cpu_runtime": self.choice.to_json(), "openvino": openvino}

    def lines(self) -> tuple[str, ...]:
        measured: tuple[str, ...] = ()
        if self.openvino is not None:
            f, r = self.openvino.fidelity, self.openvino.vs_reference
            verdict = "verified" if self.openvino.verified else f"NOT verified: {self.openvino.failures[0]}"
            measured = (
                f"int8_tensorrt on OpenVINO {self.openvino.version}: logits SQNR {f.sqnr_db:.1f} dB, top-1 agreement "
                f"{f.top1_agreement:.0%} against FP32; {sqnr_text(r.sqnr_db)} and {r.top1_agreement:.0%} against "
                f"the reference arithmetic; {verdict}",
            )
        return (*measured, f"CPU runtime: {self.choice.runtime.value} runs {self.choice.model} ({self.choice.reason})")


def measure_openvino(
    runner: Runner, evaluation: HeldOutEvaluation, reference_report: FidelityReport, gate: FidelityGate, version: str
) -> OpenVinoMeasure:
    """The Q/DQ model `runner` (loaded on OpenVINO) runs, against FP32 and against its own reference arithmetic
    (`reference_report`)."""
    inputs = [batch for batch, _ in evaluation.batches]
    logits = [runner.infer(batch).astype(np.float64) for batch in inputs]
    fidelity = evaluation.compare("int8", logits)
    reference = model_logits(runner.artifact, inputs, Kernels.REFERENCE, evaluation.threads)
    labels = [labels for _, labels in evaluation.batches]
    vs_reference = compare_logits(reference, logits, labels, "int8")
    minimum = required_sqnr(reference_report.sqnr_db)
    failures = list(gate.failures(fidelity))
    if fidelity.sqnr_db < minimum:
        failures.append(f"logits SQNR {fidelity.sqnr_db:.1f} dB against FP32 is below the {minimum:.1f} dB its "
                        f"reference arithmetic allows ({reference_report.sqnr_db:.1f} dB less the margin)")  # fmt: skip
    return OpenVinoMeasure(version, fidelity, vs_reference, minimum, tuple(failures))


def median_latencies(
    runners: dict[str, Runner], sample: np.ndarray, rounds: int = TIMED_ROUNDS, calls: int = CALLS_PER_ROUND
) -> dict[str, float]:
    """Batch-1 median milliseconds of each loaded runner, timed `calls` at a time in alternating rounds (a load
    change hits all alike). Each block starts with an untimed call: one runtime's worker threads may still be
    spinning from its last call when the other's block begins."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    calls_of = {name: partial(runner.infer, sample) for name, runner in runners.items()}
    for call in calls_of.values():
        timed_calls(call, RunLength(WARMUP_CALLS))
    for _ in range(rounds):
        for name, call in calls_of.items():
            timed_calls(call, RunLength(1))
            samples[name] += list(timed_calls(call, RunLength(calls)) * 1e3)
    return {name: float(np.median(values)) for name, values in samples.items()}


def _twin(twin: Path, reason: str) -> CpuRuntimeChoice:
    return CpuRuntimeChoice(RuntimeKind.ONNXRUNTIME, twin.name, reason)


def cpu_runtime_step(
    artifacts: dict[ArtifactRole, Path], fidelity: dict[ArtifactRole, FidelityReport], evaluation: HeldOutEvaluation,
    gate: FidelityGate, stages: Stages, openvino: Callable[[], Any] = import_openvino,
) -> CpuRuntimeStep:  # fmt: skip
    """Measure the Q/DQ model on OpenVINO where it is installed, time both CPU paths, and choose."""
    qdq, twin = artifacts[ArtifactRole.INT8_TENSORRT], artifacts[ArtifactRole.INT8_ONNXRUNTIME]
    try:
        version = openvino().get_version()
    except UserInputError as exc:
        return CpuRuntimeStep(_twin(twin, f"OpenVINO not usable here: {exc}"))
    try:  # one compile serves the measurement and the timing
        with OpenVinoRunner(qdq, threads=CPU_THREADS) as ov:
            with stages.stage("fidelity int8_tensorrt on OpenVINO", None, "fidelity_openvino_s"):
                measured = measure_openvino(ov, evaluation, fidelity[ArtifactRole.INT8_TENSORRT], gate, version)
            if not measured.verified:
                return CpuRuntimeStep(_twin(twin, "OpenVINO's run of the Q/DQ model is not verified"), measured)
            ort = OnnxRuntimeRunner(twin, threads=CPU_THREADS)
            with stages.stage("CPU runtimes timed", None, "cpu_runtime_s"), ort:
                latency = median_latencies({"openvino": ov, "onnxruntime": ort}, evaluation.first_sample)
    except UserInputError as exc:  # a model OpenVINO cannot read, compile or run costs the choice, not the build
        return CpuRuntimeStep(_twin(twin, f"OpenVINO {version} cannot run the Q/DQ model: {exc}"))
    faster = latency["openvino"] < latency["onnxruntime"]
    timing = (f"batch 1 on {CPU_THREADS} threads: OpenVINO {latency['openvino']:.2f} ms, the twin on onnxruntime "
              f"{latency['onnxruntime']:.2f} ms; OpenVINO verified")  # fmt: skip
    if not faster:
        return CpuRuntimeStep(_twin(twin, timing), measured, latency)
    return CpuRuntimeStep(CpuRuntimeChoice(RuntimeKind.OPENVINO, qdq.name, timing), measured, latency)
