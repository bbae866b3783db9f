"""`edgeres build`: FP32 ONNX -> calibrated INT8 Q/DQ ONNX (+ onnxruntime U8S8 twin) or FP16 ONNX -> fidelity
report -> TensorRT engine when TensorRT and a GPU are present; everything in one output directory.

The calibration source is split once, by a seeded shuffle: a held-out share is never seen by the
calibrator and serves the fidelity report (edgeres.build_holdout), the rest calibrates. INT8 ranges are
kept in `calibration_cache.json` (edgeres.calibcache): a rebuild with identical model, data and settings
reuses them, a changed input is refused by name. With an input contract (camera frames) the FP32 model is
the fused one (YUV 4:2:2 front-end + network), calibration samples are camera-encoded frames, and the
front-end nodes stay float.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic, write_json_atomic
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.build.holdout import HOLDOUT_FRACTION, MAX_HOLDOUT, Holdout, holdout_batches
from edgeres.build.options import BuildOptions
from edgeres.build.quick_profile import quick_profiles
from edgeres.build.source import source_model
from edgeres.engine.builder import EngineOptions
from edgeres.errors import BackendUnavailableError, EdgeresError, UserInputError
from edgeres.progress import SilentProgress, StageProgress
from edgeres.quantize.bias_correction import correct_biases, input_means, weighted_inputs
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
from edgeres.quantize.encoding import encoder_for
from edgeres.quantize.fidelity import FidelityReport, Kernels, check_gate, compare_models
from edgeres.quantize.fp16 import to_fp16
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import insert_qdq, plan_qdq

__all__ = ["BuildOptions", "BuildResult", "Precision", "build", "build_engine_only", "engine_status"]


SUMMARY_NAME = "build_summary.json"


CACHE_NAME = "calibration_cache.json"


TRT_TABLE_NAME = "calibration.table"


ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    artifacts: dict[str, Path]
    fidelity: dict[str, FidelityReport]
    engine_note: str
    summary: dict[str, Any]
    notes: tuple[str, ...] = ()  # what the CLI prints besides the fidelity lines (cache, held-out set)
    profile: tuple[str, ...] = ()  # quick-profile lines, empty with profile_iterations=0


def engine_status() -> str | None:
    """None when TensorRT and a GPU are usable here; otherwise why not, in one line."""
    try:
        from edgeres.engine.target import running_target

        running_target()
    except BackendUnavailableError as exc:
        return str(exc)
    except EdgeresError as exc:
        return f"no usable GPU: {exc}"
    return None


def _write_model(
    path: Path, model: onnx.ModelProto, source: Path, options: dict[str, Any], results: dict[str, Any]
) -> None:
    write_bytes_atomic(path, model.SerializeToString())
    write_sidecar(path, "quantize", {"onnx": str(source), "onnx_sha256": sha256_file(source)}, options, results)


@dataclass(frozen=True)
class Calibrated:
    ranges: dict[str, float]
    summary: dict[str, Any]
    note: str
    seconds: float
    input_means: dict[str, np.ndarray] | None = None  # gathered by the calibration pass, when one ran


def _calibrate(
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
            raise StaleCacheError(f"{exc}, or pass --recalibrate") from None
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


def _quantize_int8(
    options: BuildOptions,
    source: Path,
    calibration: CalibrationSet,
    outdir: Path,
    bar: StageProgress,
    summary: dict[str, Any],
    timings: dict[str, float],
) -> tuple[dict[str, Path], list[str]]:
    """Calibrate (or reuse the cache), write the TensorRT Q/DQ model, its U8S8 twin and the text table."""
    model = load_onnx(source)
    plan = plan_qdq(model, options.keep_float)
    tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
    corrected_inputs = weighted_inputs(model, plan) if options.bias_correction else []
    calibrated = _calibrate(options, source, calibration, tensors, outdir, bar, corrected_inputs)
    timings["calibration_s"] = round(calibrated.seconds, 2)
    ranges = calibrated.ranges
    if options.bias_correction:
        tick = time.perf_counter()
        means = calibrated.input_means
        if means is None:  # ranges came from the cache: one pass of the float model for the means alone
            bar.begin("bias correction", len(calibration))
            means = input_means(model, calibration.batches(options.batch_size), corrected_inputs, bar.advance)
            bar.end()
        model = correct_biases(model, plan, ranges, means)
        timings["bias_correction_s"] = round(time.perf_counter() - tick, 2)
    quant_options = {
        "calib_algo": options.calib_algo.value,
        "keep_float": list(options.keep_float),
        "bias_correction": options.bias_correction,
        "weights": "int8 symmetric per-channel",
        "activations": "int8 symmetric per-tensor",
    }
    trt_path, cpu_path = outdir / "model_int8_qdq.onnx", outdir / "model_int8_u8s8.onnx"
    placement = {
        "quantized_inputs": len(plan.inputs),
        "weights": len(plan.weights),
        "residual_adds": len(plan.residual_adds),
        "kept_float": list(plan.kept_float),
        "frontend_nodes": len(plan.frontend_nodes),
    }
    _write_model(
        trt_path,
        insert_qdq(model, plan, ranges),
        source,
        {**quant_options, "target": "tensorrt (S8S8)"},
        {"placement": placement, "ranges": ranges, "calibration": calibrated.summary},
    )
    cpu_weights = exact_weight_type()
    kernels = "U8S8" if cpu_weights.value == "int8" else "U8U8"
    _write_model(
        cpu_path,
        insert_qdq_cpu(model, plan, ranges, cpu_weights),
        source,
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
        {"int8_tensorrt": trt_path, "int8_onnxruntime": cpu_path, "calibration_cache": outdir / CACHE_NAME,
         "calibration_table": table},
        [calibrated.note, f"TensorRT calibration table (header TRT-{trt_version_number(options.trt_table_version)}) "
         f"for DeepStream int8-calib-file: {table}"],
    )  # fmt: skip


def build(options: BuildOptions, outdir: Path, progress: StageProgress | None = None) -> BuildResult:
    """Run the whole chain; raises FidelityError (after writing the report) when the gate fails."""
    bar = progress or SilentProgress()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = source_model(options.onnx, options, outdir, bar)
    encoder = encoder_for(source.path, source.contract)
    full = CalibrationSet(options.calib, encoder, options.calib_size, options.seed, options.raw)
    calibration, held_items = full.split_holdout(HOLDOUT_FRACTION, MAX_HOLDOUT)
    holdout = Holdout.of(held_items, options.min_holdout_samples)
    artifacts: dict[str, Path] = {"fp32": source.path}
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {
        "precision": options.precision.value,
        "weights": source.weights,
        "random_weights": source.random_weights,
        "input": source.contract.to_dict() if source.contract else None,
    }
    notes: list[str] = []
    if source.contract is not None:
        notes.append(f"input: raw {source.contract.describe()} frames; the front-end stays float")
    if options.precision is Precision.INT8:
        made, made_notes = _quantize_int8(options, source.path, calibration, outdir, bar, summary, timings)
        artifacts |= made
        notes += made_notes
        candidates = {"int8_tensorrt": made["int8_tensorrt"], "int8_onnxruntime": made["int8_onnxruntime"]}
    else:
        fp16_path = outdir / "model_fp16.onnx"
        _write_model(fp16_path, to_fp16(load_onnx(source.path)), source.path, {"keep_io_float": True}, {})
        artifacts["fp16"] = fp16_path
        candidates = {"fp16": fp16_path}
    skipped: list[str] = []
    reports: dict[str, FidelityReport] = {}
    for name, path in candidates.items():
        bar.begin(f"fidelity {name}", holdout.samples)
        tick = time.perf_counter()
        batches = holdout_batches(holdout, encoder, options.raw, options.batch_size, skipped, options.seed)
        precision = options.precision.value
        # The TensorRT model is judged by its Q/DQ arithmetic, not by onnxruntime's x86 integer kernels.
        kernels = Kernels.REFERENCE if name == "int8_tensorrt" else Kernels.RUNTIME
        reports[name] = compare_models(
            source.path,
            path,
            batches,
            precision,
            source.weights,
            source.random_weights,
            progress=bar.advance,
            kernels=kernels,
        )
        timings[f"fidelity_{name}_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
    notes.append(f"fidelity on {holdout.describe()}, none seen by the calibrator")
    summary["holdout"] = holdout.as_dict() | {"skipped": sorted(set(skipped))}
    summary["fidelity"] = {name: report.as_dict() for name, report in reports.items()}
    summary["gate"] = {"min_sqnr_db": options.gate.min_sqnr_db, "min_agreement": options.gate.min_agreement}
    engine_target = artifacts.get("int8_tensorrt", artifacts.get("fp16"))
    assert engine_target is not None
    engine_options = options.engine
    if options.precision is Precision.INT8:
        engine_options = replace(engine_options, calibration_cache=outdir / CACHE_NAME)
    summary["engine_options"] = engine_options.as_dict()
    note = engine_status()
    if note is None:
        from edgeres.engine.builder import build_engine

        engine_path = outdir / f"model_{options.precision.value}.engine"
        bar.begin("TensorRT engine", None)
        build_engine(engine_target, engine_path, engine_options)
        bar.end()
        artifacts["engine"] = engine_path
        note = f"TensorRT engine built: {engine_path.name}"
    else:
        note = (
            f"TensorRT engine not built ({note}). Made here: the ONNX models and the fidelity report. "
            f"On a machine with TensorRT and an NVIDIA GPU (e.g. the Jetson) run "
            f"`edgeres build --engine-only --onnx {engine_target}` to build it."
        )
    profile: tuple[str, ...] = ()
    if options.profile_iterations:
        cpu_name = "int8_onnxruntime" if options.precision is Precision.INT8 else "fp16"
        bar.begin("quick profile", None)
        tick = time.perf_counter()
        profile = quick_profiles(artifacts, ["fp32", cpu_name], options.profile_iterations, source.contract)
        timings["profile_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
    timings["total_s"] = round(time.perf_counter() - started, 2)
    summary |= {
        "artifacts": {k: str(v) for k, v in artifacts.items()},
        "engine": note,
        "profile": list(profile),
        "timings": timings,
        "gate_passed": None,
    }
    summary_path = outdir / SUMMARY_NAME
    try:
        for report in reports.values():
            check_gate(report, options.gate)
        summary["gate_passed"] = True
    except EdgeresError:
        summary["gate_passed"] = False
        write_json_atomic(summary_path, summary)
        raise
    write_json_atomic(summary_path, summary)
    artifacts["summary"] = summary_path
    return BuildResult(outdir, artifacts, reports, note, summary, tuple(notes), profile)


def engine_path_for(onnx_path: Path, output: Path) -> Path:
    """`-o` of `--engine-only`: an .engine/.plan file as given, else a folder that gets `<onnx stem>.engine`."""
    output = Path(output)
    return output if output.suffix.lower() in ENGINE_SUFFIXES else output / f"{Path(onnx_path).stem}.engine"


def build_engine_only(onnx_path: Path, output: Path, options: EngineOptions | None = None) -> Path:
    """TensorRT engine from an existing ONNX; its folder's calibration cache (if any) is hashed into the sidecar."""
    onnx_path, options = Path(onnx_path), options or EngineOptions()
    if not onnx_path.is_file():
        raise UserInputError(f"{onnx_path}: ONNX file not found")
    cache = onnx_path.parent / CACHE_NAME
    if options.calibration_cache is None and cache.is_file() and onnx_path.name.startswith("model_int8"):
        options = replace(options, calibration_cache=cache)
    from edgeres.engine.builder import build_engine

    engine = engine_path_for(onnx_path, output)
    engine.parent.mkdir(parents=True, exist_ok=True)
    build_engine(onnx_path, engine, options)
    return engine

