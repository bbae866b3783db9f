"""The INT8 quantize stage: calibrate (or reuse the matching cache), correct biases, then write the TensorRT
Q/DQ model, its onnxruntime CPU twin and TensorRT's text calibration table, each with its sidecar.

INT8 ranges are kept in `calibration_cache.json` (edgeres.quantize.cache): a rebuild with identical model,
data and settings reuses them, a changed input is refused by name. Between calibration and writing, the
caller may analyse the calibration and keep more layers in float (edgeres.quantize.sensitivity, .fallback).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.quantize_record import QuantizeRecord
from edgeres.progress import Stages
from edgeres.quantize.artifacts import (
    CACHE_NAME,
    CPU_MODEL_NAME,
    TENSORRT_MODEL_NAME,
    TRT_TABLE_NAME,
    write_quantized,
)
from edgeres.quantize.bias_correction import corrected_biases, input_means, weighted_inputs, with_biases
from edgeres.quantize.cache import (
    CalibCache,
    StaleCacheError,
    cache_key,
    load_matching,
    trt_version_number,
    write_cache,
    write_trt_table,
)
from edgeres.quantize.calibrate import collect_statistics, ranges_from_statistics
from edgeres.quantize.calibration_evidence import TensorEvidence, calibration_evidence
from edgeres.quantize.cpu_twin import exact_weight_type, insert_qdq_cpu
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import QdqPlan, ScaleGrid, plan_qdq
from edgeres.quantize.sensitivity import QuantizedVariants
from edgeres.quantize.settings import Int8Settings
from edgeres.quantize.tensorrt_qdq import HIGH_PRECISION_GRID, tensorrt_qdq_model
from edgeres.samples.calibration import CalibrationSet, CalibSummary


@dataclass(frozen=True)
class CalibrationRecord:
    """Where a build's ranges came from: a calibration pass (`summary`), or the matching cache."""

    algo: CalibAlgo
    percentile: float
    cache: Path
    tensors: int
    samples: int
    summary: CalibSummary | None = None  # None: the ranges were reused from `cache`, or trained
    trained: str | None = None  # the quantization-aware-trained model whose own ranges these are

    def describe(self) -> str:
        if self.trained is not None:
            return (f"ranges and weight scales as trained, carried by {self.trained} ({self.tensors} tensors, "
                    "not recalibrated)")
        if self.summary is None:
            return f"reused calibration cache {self.cache} ({self.tensors} tensors, {self.samples} samples)"
        return f"{self.summary.describe()}; ranges cached in {self.cache}"

    def as_dict(self) -> dict[str, object]:
        algo = {"algo": self.algo.value, "percentile": self.percentile}
        if self.trained is not None:
            return {"trained": self.trained, "tensors": self.tensors, "cache": str(self.cache)}
        if self.summary is None:
            return {"reused_cache": str(self.cache), "samples": self.samples, **algo}
        return self.summary.as_dict() | algo | {"cache": str(self.cache)}


@dataclass(frozen=True)
class Calibrated:
    """Ranges of the calibrated tensors, and where they came from."""

    ranges: dict[str, float]
    record: CalibrationRecord
    input_means: dict[str, np.ndarray] | None = None  # gathered by the calibration pass, when one ran
    evidence: Mapping[str, TensorEvidence] | None = None  # what the pass saw (None: reused ranges, or max)


@dataclass(frozen=True)
class Int8Calibration:
    """One calibration of a float model: its placement, ranges and corrected biases, from which every
    INT8 variant (the written models, sensitivity and fallback candidates) is made."""

    model: onnx.ModelProto
    plan: QdqPlan
    calibrated: Calibrated
    biases: Mapping[str, np.ndarray] | None  # for the CPU twin (FP32 scale grid)
    tensorrt_biases: Mapping[str, np.ndarray] | None  # for the TensorRT model, on its own scale grid
    settings: Int8Settings
    # Per-channel weight scales quantization-aware training fixed (None: computed from the weights); every
    # variant and written model keeps them (edgeres.qat).
    weight_scales: Mapping[str, np.ndarray] | None = None

    def corrected_model(self) -> onnx.ModelProto:
        """The float model with the bias-corrected biases (FP32 grid) where bias correction ran: post-training
        quantization's best start, where quantization-aware training begins."""
        if self.biases is None:
            return self.model
        return with_biases(self.model, self.biases, [w.node for w in self.plan.weights])

    def variants(self) -> QuantizedVariants:
        return QuantizedVariants(
            self.model, self.plan, self.calibrated.ranges, self.biases, exact_weight_type(),
            self.settings.high_precision, self.tensorrt_biases, self.weight_scales,
        )  # fmt: skip


@dataclass(frozen=True)
class Int8Models:
    """What the quantize stage wrote."""

    artifacts: dict[ArtifactRole, Path]
    plan: QdqPlan  # the placement written (the user's and the analysis' float layers left out)
    table_header: int  # TensorRT version number in calibration.table's header


def calibrate_or_reuse(
    source: Path, model: onnx.ModelProto, calibration: CalibrationSet, tensors: list[str], settings: Int8Settings,
    outdir: Path, stages: Stages, means_for: Sequence[str] = (),
) -> Calibrated:  # fmt: skip
    """Ranges from the matching calibration cache in `outdir` (keyed by the file `source` that holds
    `model`), else a calibration pass (then cached)."""
    cache_path = outdir / CACHE_NAME
    key = cache_key(source, calibration.fingerprint(), settings.calib_algo, settings.calib_options, tensors)
    record = partial(CalibrationRecord, settings.calib_algo, settings.calib_options.percentile, cache_path)
    if not settings.recalibrate:
        try:
            cached = load_matching(cache_path, key)
        except StaleCacheError as exc:
            raise StaleCacheError(f"{exc}, or recalibrate over it") from None
        if cached is not None:
            stages.timings["calibration_s"] = 0.0
            return Calibrated(cached.ranges, record(len(cached.ranges), cached.samples))
    with stages.stage(f"calibrate ({settings.calib_algo.value})", len(calibration), "calibration_s") as advance:
        stats = collect_statistics(
            model, calibration.batches(settings.batch_size), tensors, settings.calib_options, advance,
            histograms=settings.calib_algo is not CalibAlgo.MAX, means_for=means_for,
        )  # fmt: skip
        ranges = ranges_from_statistics(stats, settings.calib_algo, settings.calib_options)
    write_cache(cache_path, CalibCache(key, ranges, calibration.summary.samples))
    means = {name: stream.mean for name, stream in stats.means.items()}
    made = record(len(ranges), calibration.summary.samples, copy.deepcopy(calibration.summary))
    evidence = calibration_evidence(stats.histograms, ranges, settings.calib_options)
    return Calibrated(ranges, made, means, evidence or None)


def calibrate_int8(
    source: Path, model: onnx.ModelProto, calibration: CalibrationSet, settings: Int8Settings, outdir: Path,
    stages: Stages,
) -> Int8Calibration:  # fmt: skip
    """Place Q/DQ, calibrate its tensors (or reuse the cache) and correct the biases of the quantized layers."""
    plan = plan_qdq(model, settings.keep_float)
    tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
    corrected = weighted_inputs(model, plan) if settings.bias_correction else []
    calibrated = calibrate_or_reuse(source, model, calibration, tensors, settings, outdir, stages, corrected)
    if not settings.bias_correction:
        return Int8Calibration(model, plan, calibrated, None, None, settings)
    means = calibrated.input_means  # None when the ranges came from the cache: one float pass for the means
    task = "bias correction" if means is None else None
    with stages.stage(task, len(calibration), "bias_correction_s") as advance:
        if means is None:
            means = input_means(model, calibration.batches(settings.batch_size), corrected, advance)
        biases = corrected_biases(model, plan, calibrated.ranges, means)
        grid = HIGH_PRECISION_GRID[settings.high_precision]
        trt_biases = None
        if grid is not ScaleGrid.FP32:  # the TensorRT model's weights are rounded on its own scale grid
            trt_biases = corrected_biases(model, plan, calibrated.ranges, means, grid)
    return Int8Calibration(model, plan, calibrated, biases, trt_biases, settings)


def placement_record(plan: QdqPlan) -> dict[str, Any]:
    return {
        "quantized_inputs": len(plan.inputs),
        "weights": len(plan.weights),
        "residual_adds": len(plan.residual_adds),
        "kept_float": list(plan.kept_float),
        "frontend_nodes": len(plan.frontend_nodes),
    }


def write_int8_models(
    source: Path,
    calibration: Int8Calibration,
    outdir: Path,
    extra_float: tuple[str, ...] = (),
    model_input: Mapping[str, Any] | None = None,
    trained: Mapping[str, Any] | None = None,
) -> Int8Models:
    """The TensorRT Q/DQ model, the CPU twin and the text table, with `extra_float` layers also kept in float;
    both models record `model_input` (what the FP32 model takes, as its sidecar's options["input"])."""
    settings, model, ranges = calibration.settings, calibration.model, calibration.calibrated.ranges
    weight_scales = calibration.weight_scales
    keep_float = tuple(dict.fromkeys(settings.keep_float + extra_float))
    plan = plan_qdq(model, keep_float) if extra_float else calibration.plan
    quantized = [w.node for w in plan.weights]
    trt_model = cpu_model = model
    if calibration.biases is not None:
        trt_biases = calibration.tensorrt_biases
        trt_model = with_biases(model, trt_biases if trt_biases is not None else calibration.biases, quantized)
        cpu_model = with_biases(model, calibration.biases, quantized)
    common = QuantizeRecord(
        ArtifactRole.INT8_TENSORRT, source, calib_algo=settings.calib_algo.value, keep_float=keep_float,
        bias_correction=settings.bias_correction, weights="int8 symmetric per-channel",
        activations="int8 symmetric per-tensor", input=model_input,
    )  # fmt: skip
    placement = placement_record(plan)
    trt_record = replace(
        common, target="tensorrt (S8S8)", high_precision=settings.high_precision.value, ranges=ranges,
        report={"placement": placement, "calibration": calibration.calibrated.record.as_dict()}
        | ({} if trained is None else {"quantization_aware_training": dict(trained)}),
    )  # fmt: skip
    trt_model = tensorrt_qdq_model(trt_model, plan, ranges, settings.high_precision, weight_scales=weight_scales)
    trt_path = write_quantized(outdir / TENSORRT_MODEL_NAME, trt_model, trt_record)
    weights = exact_weight_type()
    cpu_record = replace(
        common, role=ArtifactRole.INT8_ONNXRUNTIME,
        target=f"onnxruntime cpu ({weights.kernels}, zero point 128, TensorRT scales)", cpu_weights=weights.value,
        report={"extra_quantized_conv_outputs": len(plan.cpu_extra), "moved_to_conv_outputs": len(plan.cpu_moves)}
        | ({} if trained is None else {"quantization_aware_training": dict(trained)}),
    )  # fmt: skip
    cpu_twin = insert_qdq_cpu(cpu_model, plan, ranges, weights, weight_scales)
    cpu_path = write_quantized(outdir / CPU_MODEL_NAME, cpu_twin, cpu_record)
    table = outdir / TRT_TABLE_NAME
    activations = {name: ranges[name] for name in plan.activations if name in ranges}
    write_trt_table(table, activations, settings.trt_table_version)
    artifacts = {
        ArtifactRole.INT8_TENSORRT: trt_path, ArtifactRole.INT8_ONNXRUNTIME: cpu_path,
        ArtifactRole.CALIBRATION_CACHE: outdir / CACHE_NAME, ArtifactRole.CALIBRATION_TABLE: table,
    }  # fmt: skip
    return Int8Models(artifacts, plan, trt_version_number(settings.trt_table_version))
