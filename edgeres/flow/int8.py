"""The INT8 half of `edgeres build`: calibrate (or reuse the matching cache), correct biases, write the
TensorRT Q/DQ model, its onnxruntime CPU twin and TensorRT's text calibration table.

INT8 ranges are kept in `calibration_cache.json` (edgeres.quantize.cache): a rebuild with identical model,
data and settings reuses them, a changed input is refused by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import BuildOptions
from edgeres.progress import StageProgress
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
from edgeres.quantize.calibration_data import CalibrationSet
from edgeres.quantize.cpu_twin import exact_weight_type, insert_qdq_cpu
from edgeres.quantize.high_precision import HIGH_PRECISION_GRID, tensorrt_qdq_model
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import ScaleGrid, plan_qdq

CACHE_NAME = "calibration_cache.json"
TRT_TABLE_NAME = "calibration.table"
TENSORRT_MODEL_NAME = "model_int8_qdq.onnx"
CPU_MODEL_NAME = "model_int8_u8s8.onnx"


def write_quantized(
    path: Path,
    model: onnx.ModelProto,
    source: Path,
    role: ArtifactRole,
    options: dict[str, Any],
    results: dict[str, Any],
) -> None:
    """Write a model made from `source` and its sidecar (which names the source and the model's role)."""
    options = {"role": role.value, **options}
    write_bytes_atomic(path, model.SerializeToString())
    write_sidecar(path, "quantize", {"onnx": str(source), "onnx_sha256": sha256_file(source)}, options, results)


@dataclass(frozen=True)
class Calibrated:
    ranges: dict[str, float]
    summary: dict[str, Any]
    note: str
    seconds: float
    input_means: dict[str, np.ndarray] | None = None  # gathered by the calibration pass, when one ran


def calibrate_or_reuse(
    options: BuildOptions,
    source: Path,
    calibration: CalibrationSet,
    tensors: list[str],
    outdir: Path,
    bar: StageProgress,
    means_for: Sequence[str] = (),
) -> Calibrated:
    """Ranges from the matching calibration cache in `outdir`, else a calibration pass (then cached)."""
    cache_path = outdir / CACHE_NAME
    key = cache_key(source, calibration.fingerprint(), options.calib_algo, options.calib_options, tensors)
    algo = {"algo": options.calib_algo.value, "percentile": options.percentile}
    if not options.recalibrate:
        try:
            cached = load_matching(cache_path, key)
        except StaleCacheError as exc:
            raise StaleCacheError(f"{exc}, or recalibrate over it") from None
        if cached is not None:
            note = f"reused calibration cache {cache_path} ({len(cached.ranges)} tensors, {cached.samples} samples)"
            reused = {"reused_cache": str(cache_path), "samples": cached.samples, **algo}
            return Calibrated(cached.ranges, reused, note, 0.0)
    bar.begin(f"calibrate ({options.calib_algo.value})", len(calibration))
    tick = time.perf_counter()
    batches = calibration.batches(options.batch_size)
    histograms = options.calib_algo is not CalibAlgo.MAX
    stats = collect_statistics(
        source, batches, tensors, options.calib_options, bar.advance, histograms=histograms, means_for=means_for
    )
    ranges = ranges_from_statistics(stats, options.calib_algo, options.calib_options)
    seconds = time.perf_counter() - tick
    bar.end()
    write_cache(cache_path, CalibCache(key, ranges, calibration.summary.samples))
    note = f"{calibration.summary.describe()}; ranges cached in {cache_path}"
    means = {name: stream.mean for name, stream in stats.means.items()}
    summary = calibration.summary.as_dict() | algo | {"cache": str(cache_path)}
    return Calibrated(ranges, summary, note, seconds, means)


def quantize_int8(
    options: BuildOptions,
    source: Path,
    calibration: CalibrationSet,
    outdir: Path,
    bar: StageProgress,
    summary: dict[str, Any],
    timings: dict[str, float],
    held_out: Callable[[], Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]]],
) -> tuple[dict[ArtifactRole, Path], list[str]]:
    """Calibrate (or reuse the cache), analyse and fall back when asked (on the `held_out` batches), write
    the TensorRT Q/DQ model, its CPU twin and the text table."""
    model = load_onnx(source)
    plan = plan_qdq(model, options.keep_float)
    tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
    corrected_inputs = weighted_inputs(model, plan) if options.bias_correction else []
    calibrated = calibrate_or_reuse(options, source, calibration, tensors, outdir, bar, corrected_inputs)
    timings["calibration_s"] = round(calibrated.seconds, 2)
    ranges = calibrated.ranges
    biases = trt_biases = None
    if options.bias_correction:
        tick = time.perf_counter()
        means = calibrated.input_means
        if means is None:  # ranges came from the cache: one pass of the float model for the means alone
            bar.begin("bias correction", len(calibration))
            means = input_means(model, calibration.batches(options.batch_size), corrected_inputs, bar.advance)
            bar.end()
        biases = corrected_biases(model, plan, ranges, means)
        grid = HIGH_PRECISION_GRID[options.high_precision]
        if grid is not ScaleGrid.FP32:  # the TensorRT model's weights are rounded on its own scale grid
            trt_biases = corrected_biases(model, plan, ranges, means, grid)
        timings["bias_correction_s"] = round(time.perf_counter() - tick, 2)
    analysis = Int8Analysis()
    if options.sensitivity or options.auto_fallback:
        tick = time.perf_counter()
        analysis = analyse_int8(options, model, plan, ranges, biases, trt_biases, held_out(), outdir, bar)
        timings["int8_analysis_s"] = round(time.perf_counter() - tick, 2)
        summary |= analysis.summary
    keep_float = tuple(dict.fromkeys(options.keep_float + analysis.keep_float))
    if analysis.keep_float:
        plan = plan_qdq(model, keep_float)
    quantized = [w.node for w in plan.weights]
    trt_model = model
    if biases is not None:
        trt_model = with_biases(model, trt_biases if trt_biases is not None else biases, quantized)
        model = with_biases(model, biases, quantized)
    quant_options = {
        "calib_algo": options.calib_algo.value,
        "keep_float": list(keep_float),
        "bias_correction": options.bias_correction,
        "weights": "int8 symmetric per-channel",
        "activations": "int8 symmetric per-tensor",
    }
    trt_path, cpu_path = outdir / TENSORRT_MODEL_NAME, outdir / CPU_MODEL_NAME
    placement = {
        "quantized_inputs": len(plan.inputs),
        "weights": len(plan.weights),
        "residual_adds": len(plan.residual_adds),
        "kept_float": list(plan.kept_float),
        "frontend_nodes": len(plan.frontend_nodes),
    }
    write_quantized(
        trt_path,
        tensorrt_qdq_model(trt_model, plan, ranges, options.high_precision),
        source,
        ArtifactRole.INT8_TENSORRT,
        {**quant_options, "target": "tensorrt (S8S8)", "high_precision": options.high_precision.value},
        {"placement": placement, "ranges": ranges, "calibration": calibrated.summary},
    )
    cpu_weights = exact_weight_type()
    kernels = cpu_weights.kernels
    write_quantized(
        cpu_path,
        insert_qdq_cpu(model, plan, ranges, cpu_weights),
        source,
        ArtifactRole.INT8_ONNXRUNTIME,
        {
            **quant_options,
            "target": f"onnxruntime cpu ({kernels}, zero point 128, TensorRT scales)",
            "cpu_weights": cpu_weights.value,
        },
        {"extra_quantized_conv_outputs": len(plan.cpu_extra), "moved_to_conv_outputs": len(plan.cpu_moves)},
    )
    table = outdir / TRT_TABLE_NAME
    write_trt_table(
        table, {name: ranges[name] for name in plan.activations if name in ranges}, options.trt_table_version
    )
    summary["calibration"] = calibrated.summary
    summary["placement"] = placement
    summary["bias_correction"] = options.bias_correction
    return (
        {ArtifactRole.INT8_TENSORRT: trt_path, ArtifactRole.INT8_ONNXRUNTIME: cpu_path,
         ArtifactRole.CALIBRATION_CACHE: outdir / CACHE_NAME, ArtifactRole.CALIBRATION_TABLE: table,
         **analysis.artifacts},
        [calibrated.note, *analysis.notes,
         f"TensorRT calibration table (header TRT-{trt_version_number(options.trt_table_version)}) "
         f"for DeepStream int8-calib-file: {table}"],
    )  # fmt: skip
