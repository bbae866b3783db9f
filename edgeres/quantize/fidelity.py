"""How far a quantized (INT8 or FP16) ONNX strays from its FP32 source, measured on held-out samples.

`HeldOutEvaluation` is the one evaluator: it keeps the held-out samples and computes their FP32 logits
once; every candidate (the TensorRT Q/DQ model, the CPU twin, the FP16 model, each sensitivity variant
and fallback step) is measured against them into one `FidelityReport`, which the gate takes.

Logits: top-1 agreement, top-5 overlap, cosine similarity and SQNR; per layer: SQNR of every Conv/Gemm
output, the worst ten reported. SQNR = 10 log10(sum ref^2 / sum (ref - cand)^2) in dB. With random
weights top-1 agreement is ill-conditioned (logits are nearly tied), so the report names the weights
and SQNR is the measure to gate on there.

The logits come from sessions over the models exactly as shipped. Per-layer SQNR needs every layer
output fetched, and a fetched conv output can no longer be fused by onnxruntime (the U8S8 twin's
DequantizeLinear -> Conv -> QuantizeLinear chains stop becoming QLinearConv, and the logits change). So the
layers are compared in a second pass, on the first `layer_samples` held-out samples only, and they
describe the unfused graph (float convolutions on dequantized values); `layer_samples` says how many.

`Kernels.REFERENCE` runs a model without onnxruntime's Q/DQ fusions, so a Q/DQ model computes exactly
what its Q/DQ nodes say (float operations on dequantized values): the TensorRT model is judged by its
own arithmetic, not by onnxruntime's x86 integer kernels, whose U8S8 products saturate on CPUs
without VNNI. `Kernels.RUNTIME` (the default) runs the model as onnxruntime deploys it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgeres.artifacts.fields import Fields, json_number
from edgeres.artifacts.onnx import as_model, with_outputs
from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback
from edgeres.samples.holdout import HeldOutBatch

WORST_LAYERS = 10
LAYER_SAMPLES = 16  # held-out samples the per-layer pass runs on (kept in memory, one input each)
TOP_K = 5
LAYER_OPS = ("Conv", "Gemm")


class Kernels(str, enum.Enum):
    """Which onnxruntime arithmetic evaluates the candidate (see the module docstring)."""

    RUNTIME = "runtime"
    REFERENCE = "reference"


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """10 log10(signal / noise); infinite when the two agree exactly."""
    if noise_power <= 0.0:
        return math.inf
    if not math.isfinite(noise_power):
        return -math.inf
    return 10.0 * math.log10(max(signal_power, 1e-300) / noise_power)


def sqnr_text(value: float) -> str:
    """An SQNR as shown to people: '23.4 dB', or 'exact' where nothing differs."""
    return f"{value:.1f} dB" if math.isfinite(value) else "exact"


@dataclass(frozen=True)
class LayerSqnr:
    tensor: str
    sqnr_db: float


@dataclass(frozen=True)
class Accuracy:
    """Top-1/top-5 accuracy of the FP32 reference and the candidate against given labels."""

    reference_top1: float
    reference_top5: float
    candidate_top1: float
    candidate_top5: float


ACCURACY_FIELDS = ("reference_top1", "reference_top5", "candidate_top1", "candidate_top5")


@dataclass(frozen=True)
class FidelityReport:
    precision: str
    samples: int
    weights: str
    random_weights: bool | None  # None: not known (an ONNX without its sidecar)
    top1_agreement: float
    top5_overlap: float
    cosine_mean: float
    cosine_min: float
    sqnr_db: float
    worst_layers: tuple[LayerSqnr, ...] = ()
    accuracy: Accuracy | None = None
    layer_samples: int = 0  # how many of the samples the per-layer pass saw
    layers: tuple[LayerSqnr, ...] = ()  # every layer of the per-layer pass, in network order

    @property
    def note(self) -> str:
        if self.random_weights:
            return "random weights: top-1 agreement is ill-conditioned, SQNR is the meaningful measure"
        if self.random_weights is None:
            return "weights unknown: if they are random, top-1 agreement is ill-conditioned and SQNR is the measure"
        return "trained weights"

    @property
    def top1_accuracy(self) -> float | None:
        """The candidate's top-1 accuracy against the labels, when the samples have them."""
        return None if self.accuracy is None else self.accuracy.candidate_top1

    def measures(self) -> dict[str, Any]:
        """The three measures a gate reads, JSON-ready: what sensitivity and fallback record per candidate."""
        sqnr = json_number(self.sqnr_db)
        return {"sqnr_db": sqnr, "top1_agreement": self.top1_agreement, "accuracy": self.top1_accuracy}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: infinities (exact agreement) become the string 'inf'."""
        data = asdict(self)
        data["note"] = self.note

        def finite(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            if isinstance(value, dict):
                return {k: finite(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [finite(v) for v in value]
            return value

        return dict(finite(data))

    @classmethod
    def from_json(cls, value: object, where: str) -> FidelityReport:
        """The one decoder of a report written by `as_dict` (the build summary's fidelity section)."""
        fields = Fields.of(value, where)

        def number(key: str, data: Fields = fields) -> float:
            raw = data.data.get(key)
            if isinstance(raw, str) and raw in ("inf", "-inf", "nan"):
                return float(raw)
            return data.require(key, float)

        def layers(key: str) -> tuple[LayerSqnr, ...]:
            entries = fields.items(key, dict) or ()
            return tuple(
                LayerSqnr(layer.require("tensor", str), number("sqnr_db", layer))
                for layer in (Fields.of(entry, f"{where}.{key}") for entry in entries)
            )

        accuracy = fields.section("accuracy")
        return cls(
            precision=fields.require("precision", str),
            samples=fields.require("samples", int),
            weights=fields.get("weights", str) or "unknown",
            random_weights=fields.get("random_weights", bool),
            top1_agreement=number("top1_agreement"),
            top5_overlap=number("top5_overlap"),
            cosine_mean=number("cosine_mean"),
            cosine_min=number("cosine_min"),
            sqnr_db=number("sqnr_db"),
            worst_layers=layers("worst_layers"),
            accuracy=None if accuracy is None else Accuracy(*(number(k, accuracy) for k in ACCURACY_FIELDS)),
            layer_samples=fields.get("layer_samples", int) or 0,
            layers=layers("layers"),
        )


def layer_tensors(model: onnx.ModelProto) -> list[str]:
    """Outputs of the weighted layers (graph outputs excluded), the tensors compared layer by layer."""
    outputs = {o.name for o in model.graph.output}
    return [n.output[0] for n in model.graph.node if n.op_type in LAYER_OPS and n.output[0] not in outputs]


def exposing_session(
    model: onnx.ModelProto, extra_outputs: list[str], threads: int, kernels: Kernels = Kernels.RUNTIME
) -> ort.InferenceSession:
    """A CPU session; `extra_outputs` become graph outputs of a copy (which changes onnxruntime's fusions)."""
    copy = with_outputs(model, extra_outputs) if extra_outputs else model
    return cpu_session(copy, threads, reference_kernels=kernels is Kernels.REFERENCE)


def layer_sqnr(
    reference: onnx.ModelProto,
    candidate: onnx.ModelProto,
    inputs: list[np.ndarray],
    threads: int = PASS_THREADS,
    kernels: Kernels = Kernels.RUNTIME,
) -> list[LayerSqnr]:
    """SQNR of every Conv/Gemm output both models compute, in network order (sessions with extra outputs);
    the candidate runs on `kernels`."""
    cand_names = {o for n in candidate.graph.node for o in n.output}
    layers = [t for t in layer_tensors(reference) if t in cand_names]
    if not layers or not inputs:
        return []
    ref_run = exposing_session(reference, layers, threads)
    cand_run = exposing_session(candidate, layers, threads, kernels)
    input_name = ref_run.get_inputs()[0].name
    power = {t: [0.0, 0.0] for t in layers}
    for batch in inputs:
        ref_out = ref_run.run(layers, {input_name: batch})
        cand_out = cand_run.run(layers, {input_name: batch})
        for name, r, c in zip(layers, ref_out, cand_out, strict=True):
            r64, c64 = np.asarray(r, np.float64), np.asarray(c, np.float64)
            power[name][0] += float(np.sum(r64**2))
            power[name][1] += float(np.sum((r64 - c64) ** 2))
    return [LayerSqnr(t, sqnr_db(*p)) for t, p in power.items()]


def reference_logits(
    model: onnx.ModelProto, batches: Sequence[HeldOutBatch], threads: int = PASS_THREADS
) -> list[np.ndarray]:
    """The FP32 model's logits of every held-out batch (float64), the reference every candidate meets."""
    return model_logits(model, [inputs for inputs, _ in batches], Kernels.RUNTIME, threads)


class HeldOutEvaluation:
    """The held-out samples and their FP32 logits, computed once; candidates are measured against them."""

    def __init__(
        self,
        reference: onnx.ModelProto | Path,
        batches: Sequence[HeldOutBatch],
        weights: str = "unknown",
        random_weights: bool | None = None,
        threads: int = PASS_THREADS,
    ) -> None:
        if not batches:
            raise UserInputError("fidelity check received no held-out samples")
        self.model = as_model(reference)
        self.batches, self.weights, self.random_weights, self.threads = tuple(batches), weights, random_weights, threads
        self.reference = reference_logits(self.model, self.batches, threads)

    @property
    def samples(self) -> int:
        return sum(len(inputs) for inputs, _ in self.batches)

    @property
    def first_sample(self) -> np.ndarray:
        """One held-out input with its batch axis (for timing a candidate at batch 1)."""
        return self.batches[0][0][:1]

    def reference_report(self) -> FidelityReport:
        """FP32 measured against itself: the best any candidate can reach (its accuracy is FP32's)."""
        return self._report("fp32", self.reference)

    def measure(
        self,
        candidate: onnx.ModelProto | Path,
        precision: str = "int8",
        kernels: Kernels = Kernels.RUNTIME,
        progress: ProgressCallback | None = None,
        layer_samples: int = 0,
    ) -> FidelityReport:
        """The candidate's logits on `kernels` against the FP32 ones; with `layer_samples`, also the
        per-layer pass on that many samples (see the module docstring)."""
        model = as_model(candidate)
        logits = model_logits(model, [inputs for inputs, _ in self.batches], kernels, self.threads, progress)
        report = self._report(precision, logits)
        if layer_samples <= 0:
            return report
        kept, wanted = [], layer_samples
        for inputs, _ in self.batches:
            if wanted > 0:
                kept.append(np.array(inputs[:wanted]))
                wanted -= len(kept[-1])
        per_layer = layer_sqnr(self.model, model, kept, self.threads, kernels)
        worst = sorted(per_layer, key=lambda layer: layer.sqnr_db)[:WORST_LAYERS]
        seen = sum(len(k) for k in kept)
        return replace(report, worst_layers=tuple(worst), layers=tuple(per_layer), layer_samples=seen)

    def compare(self, precision: str, logits: Sequence[np.ndarray]) -> FidelityReport:
        """Logits a candidate produced elsewhere (another runtime), one array per held-out batch, against FP32."""
        return self._report(precision, logits)

    def _report(self, precision: str, logits: Sequence[np.ndarray]) -> FidelityReport:
        labels = [labels for _, labels in self.batches]
        return compare_logits(self.reference, logits, labels, precision, self.weights, self.random_weights)


def model_logits(
    model: onnx.ModelProto | Path,
    batches: Sequence[np.ndarray],
    kernels: Kernels = Kernels.RUNTIME,
    threads: int = PASS_THREADS,
    progress: ProgressCallback | None = None,
) -> list[np.ndarray]:
    """A model's logits (float64) of each input batch, on `kernels`, from one session over the model as shipped."""
    session = exposing_session(as_model(model), [], threads, kernels)
    name = session.get_inputs()[0].name
    logits = []
    for inputs in batches:
        logits.append(np.asarray(session.run(None, {name: inputs})[0], np.float64))
        if progress is not None:
            progress(len(inputs))
    return logits


def compare_logits(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    labels: Sequence[np.ndarray | None],
    precision: str,
    weights: str = "unknown",
    random_weights: bool | None = None,
) -> FidelityReport:
    """The fidelity of `candidate` logits against `reference` ones, batch by batch (accuracy where every
    batch has labels): what the build's held-out evaluation and the device's verification both report."""
    signal = noise = overlap = 0.0
    agree = samples = 0
    cosines: list[float] = []
    hits = np.zeros(4)  # reference top1, top5, candidate top1, top5
    for ref, cand, batch_labels in zip(reference, candidate, labels, strict=True):
        ref, cand = np.asarray(ref, np.float64), np.asarray(cand, np.float64)
        samples += len(ref)
        signal += float(np.sum(ref**2))
        noise += float(np.sum((ref - cand) ** 2))
        k = min(TOP_K, ref.shape[1])
        ref_top, cand_top = np.argsort(-ref, axis=1)[:, :k], np.argsort(-cand, axis=1)[:, :k]
        agree += int(np.sum(ref_top[:, 0] == cand_top[:, 0]))
        overlap += sum(len(set(r) & set(c)) / k for r, c in zip(ref_top, cand_top, strict=True))
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
        cosines += list(np.sum(ref * cand, axis=1) / np.maximum(norms, 1e-300))
        if batch_labels is not None:
            for offset, top in ((0, ref_top), (2, cand_top)):
                hits[offset] += np.sum(top[:, 0] == batch_labels)
                hits[offset + 1] += np.sum(np.any(top == batch_labels[:, None], axis=1))
    if not samples:
        raise UserInputError("fidelity check received no held-out samples")
    labelled = all(batch_labels is not None for batch_labels in labels)
    return FidelityReport(
        precision=precision,
        samples=samples,
        weights=weights,
        random_weights=random_weights,
        top1_agreement=agree / samples,
        top5_overlap=overlap / samples,
        cosine_mean=float(np.mean(cosines)),
        cosine_min=float(np.min(cosines)),
        sqnr_db=sqnr_db(signal, noise),
        accuracy=Accuracy(*(float(h / samples) for h in hits)) if labelled else None,
    )
