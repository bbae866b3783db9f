"""How far a quantized (INT8 or FP16) ONNX strays from its FP32 source, measured on held-out samples.

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
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from edgeres.artifacts.onnx import as_model, with_outputs
from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback

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
    worst_layers: tuple[LayerSqnr, ...]
    accuracy: Accuracy | None = None
    layer_samples: int = 0  # how many of the samples the per-layer pass saw

    @property
    def note(self) -> str:
        if self.random_weights:
            return "random weights: top-1 agreement is ill-conditioned, SQNR is the meaningful measure"
        if self.random_weights is None:
            return "weights unknown: if they are random, top-1 agreement is ill-conditioned and SQNR is the measure"
        return "trained weights"

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


def layer_tensors(model: onnx.ModelProto) -> list[str]:
    """Outputs of the weighted layers (graph outputs excluded), the tensors compared layer by layer."""
    outputs = {o.name for o in model.graph.output}
    return [n.output[0] for n in model.graph.node if n.op_type in LAYER_OPS and n.output[0] not in outputs]


def _session(
    model: onnx.ModelProto, extra_outputs: list[str], threads: int, kernels: Kernels = Kernels.RUNTIME
) -> ort.InferenceSession:
    """A CPU session; `extra_outputs` become graph outputs of a copy (which changes onnxruntime's fusions)."""
    copy = with_outputs(model, extra_outputs) if extra_outputs else model
    return cpu_session(copy, threads, reference_kernels=kernels is Kernels.REFERENCE)


class _Tally:
    """Running sums for the logits, so evaluation streams over any number of batches."""

    def __init__(self) -> None:
        self.logit_power = [0.0, 0.0]
        self.agree = 0
        self.overlap = 0.0
        self.cosines: list[float] = []
        self.hits = np.zeros(4)  # reference top1, top5, candidate top1, top5

    def add(self, ref: np.ndarray, cand: np.ndarray, labels: np.ndarray | None) -> None:
        ref64, cand64 = ref.astype(np.float64), cand.astype(np.float64)
        self.logit_power[0] += float(np.sum(ref64**2))
        self.logit_power[1] += float(np.sum((ref64 - cand64) ** 2))
        k = min(TOP_K, ref.shape[1])
        ref_top, cand_top = np.argsort(-ref64, axis=1)[:, :k], np.argsort(-cand64, axis=1)[:, :k]
        self.agree += int(np.sum(ref_top[:, 0] == cand_top[:, 0]))
        self.overlap += sum(len(set(r) & set(c)) / k for r, c in zip(ref_top, cand_top, strict=True))
        norms = np.linalg.norm(ref64, axis=1) * np.linalg.norm(cand64, axis=1)
        self.cosines += list(np.sum(ref64 * cand64, axis=1) / np.maximum(norms, 1e-300))
        if labels is not None:
            for offset, top in ((0, ref_top), (2, cand_top)):
                self.hits[offset] += np.sum(top[:, 0] == labels)
                self.hits[offset + 1] += np.sum(np.any(top == labels[:, None], axis=1))


def layer_sqnr(
    reference: onnx.ModelProto,
    candidate: onnx.ModelProto,
    inputs: list[np.ndarray],
    threads: int = PASS_THREADS,
    kernels: Kernels = Kernels.RUNTIME,
) -> list[LayerSqnr]:
    """SQNR of every Conv/Gemm output both models compute, worst first (sessions with extra outputs);
    the candidate runs on `kernels`."""
    cand_names = {o for n in candidate.graph.node for o in n.output}
    layers = [t for t in layer_tensors(reference) if t in cand_names]
    if not layers or not inputs:
        return []
    ref_run, cand_run = _session(reference, layers, threads), _session(candidate, layers, threads, kernels)
    input_name = ref_run.get_inputs()[0].name
    power = {t: [0.0, 0.0] for t in layers}
    for batch in inputs:
        ref_out = ref_run.run(layers, {input_name: batch})
        cand_out = cand_run.run(layers, {input_name: batch})
        for name, r, c in zip(layers, ref_out, cand_out, strict=True):
            r64, c64 = np.asarray(r, np.float64), np.asarray(c, np.float64)
            power[name][0] += float(np.sum(r64**2))
            power[name][1] += float(np.sum((r64 - c64) ** 2))
    return sorted((LayerSqnr(t, sqnr_db(*p)) for t, p in power.items()), key=lambda x: x.sqnr_db)


def compare_models(
    reference: onnx.ModelProto | Path,
    candidate: onnx.ModelProto | Path,
    batches: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
    precision: str,
    weights: str,
    random_weights: bool | None,
    threads: int = PASS_THREADS,
    progress: ProgressCallback | None = None,
    layer_samples: int = LAYER_SAMPLES,
    kernels: Kernels = Kernels.RUNTIME,
) -> FidelityReport:
    """Compare logits of both models as shipped on every batch (an input array, or (inputs, labels));
    then compare their layers on the first `layer_samples` samples (see the module docstring)."""
    ref_model, cand_model = as_model(reference), as_model(candidate)
    ref_run, cand_run = _session(ref_model, [], threads), _session(cand_model, [], threads, kernels)
    input_name = ref_run.get_inputs()[0].name
    ref_output, cand_output = ref_run.get_outputs()[0].name, cand_run.get_outputs()[0].name
    tally, samples, labelled = _Tally(), 0, True
    kept: list[np.ndarray] = []  # inputs for the per-layer pass
    for item in batches:
        inputs, labels = item if isinstance(item, tuple) else (item, None)
        labelled = labelled and labels is not None
        ref_out = ref_run.run([ref_output], {input_name: inputs})[0]
        cand_out = cand_run.run([cand_output], {input_name: inputs})[0]
        tally.add(np.asarray(ref_out), np.asarray(cand_out, dtype=np.float32), labels)
        wanted = layer_samples - sum(len(k) for k in kept)
        if wanted > 0:
            kept.append(np.array(inputs[:wanted]))
        samples += len(inputs)
        if progress is not None:
            progress(len(inputs))
    if samples == 0:
        raise UserInputError("fidelity check received no held-out samples")
    del ref_run, cand_run
    per_layer = layer_sqnr(ref_model, cand_model, kept, threads, kernels)
    accuracy = Accuracy(*(float(h / samples) for h in tally.hits)) if labelled else None
    return FidelityReport(
        precision=precision,
        samples=samples,
        weights=weights,
        random_weights=random_weights,
        top1_agreement=tally.agree / samples,
        top5_overlap=tally.overlap / samples,
        cosine_mean=float(np.mean(tally.cosines)),
        cosine_min=float(np.min(tally.cosines)),
        sqnr_db=sqnr_db(*tally.logit_power),
        worst_layers=tuple(per_layer[:WORST_LAYERS]),
        accuracy=accuracy,
        layer_samples=sum(len(k) for k in kept),
    )

