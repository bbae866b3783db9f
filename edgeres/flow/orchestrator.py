"""`edgeres build`: FP32 ONNX -> calibrated INT8 Q/DQ ONNX (+ onnxruntime U8S8 twin) or FP16 ONNX -> fidelity
report -> TensorRT engine when TensorRT and a GPU are present; everything in one output directory.

The calibration source is split once, by a seeded shuffle: a held-out share is never seen by the
calibrator and serves the fidelity report (edgeres.flow.holdout), the rest calibrates (edgeres.flow.int8).
With an input contract (camera frames) the FP32 model is
the fused one (YUV 4:2:2 front-end + network), calibration samples are camera-encoded frames, and the
front-end nodes stay float.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts.completion import SUMMARY_NAME as SUMMARY_NAME
from edgeres.artifacts.completion import BuildSet, build_set
from edgeres.artifacts.kinds import ENGINE_SUFFIX, ArtifactRole, is_engine_path
from edgeres.artifacts.onnx import graph_output, load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.staging import rollback_on_failure
from edgeres.engine.builder import EngineOptions, build_engine
from edgeres.engine.target import running_target
from edgeres.errors import BackendUnavailableError, EdgeresError, FidelityError, UserInputError
from edgeres.flow.holdout import HOLDOUT_FRACTION, MAX_HOLDOUT, Holdout, evaluation_holdout, holdout_batches
from edgeres.flow.int8 import CACHE_NAME, quantize_int8, write_quantized
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import source_model
from edgeres.profile.quick import quick_profiles
from edgeres.progress import SilentProgress, StageProgress
from edgeres.quantize.calibration_data import CalibrationSet
from edgeres.quantize.encoding import encoder_for
from edgeres.quantize.fidelity import FidelityReport, Kernels, compare_models
from edgeres.quantize.fp16 import to_fp16
from edgeres.quantize.gate import check_gate

FP16_MODEL_NAME = "model_fp16.onnx"


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    artifacts: dict[ArtifactRole, Path]
    fidelity: dict[ArtifactRole, FidelityReport]
    engine_note: str
    summary: dict[str, Any]
    notes: tuple[str, ...] = ()  # what the CLI prints besides the fidelity lines (cache, held-out set)
    profile: tuple[str, ...] = ()  # quick-profile lines, empty with profile_iterations=0


def engine_status() -> str | None:
    """None when TensorRT and a GPU are usable here; otherwise why not, in one line."""
    try:
        running_target()
    except BackendUnavailableError as exc:
        return str(exc)
    except EdgeresError as exc:
        return f"no usable GPU: {exc}"
    return None


def build(options: BuildOptions, outdir: Path, progress: StageProgress | None = None) -> BuildResult:
    """Run the whole chain; raises FidelityError (after writing the report) when the gate fails.

    The folder is a set finished by its summary (edgeres.artifacts.completion): until the summary lands
    it is marked in progress, and a failure or interrupt before then removes every file this run wrote.
    """
    outdir = Path(outdir)
    with build_set(outdir) as current:
        return _build(options, outdir, progress or SilentProgress(), current)


def _build(options: BuildOptions, outdir: Path, bar: StageProgress, current: BuildSet) -> BuildResult:
    started = time.perf_counter()
    source = source_model(options.onnx, options, outdir, bar)
    structure = load_onnx(source.path, weights=False)  # read once for the input encoding and the class count
    encoder = encoder_for(structure, source.contract)
    classes = graph_output(structure, source.path).shape[-1]
    full = CalibrationSet(options.calib, encoder, options.calib_size, options.seed, options.raw, classes)
    if options.eval_csv is not None:
        calibration, holdout = full, evaluation_holdout(options.eval_csv, classes)
    else:
        calibration, held_items = full.split_holdout(HOLDOUT_FRACTION, MAX_HOLDOUT)
        holdout = Holdout.of(held_items, options.min_holdout_samples)
    if options.gate.min_accuracy is not None and not holdout.labelled:
        raise UserInputError(
            f"a minimum top-1 accuracy needs labelled held-out samples: {full.source} is not a path,label CSV "
            "with integer labels"
        )
    artifacts: dict[ArtifactRole, Path] = {ArtifactRole.FP32: source.path}
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {
        "precision": options.precision.value,
        "options": options.recipe(),
        "weights": source.weights,
        "random_weights": source.random_weights,
        "input": source.contract.to_dict() if source.contract else None,
    }
    notes: list[str] = []
    skipped: list[str] = []  # held-out files that could not be read (every pass over them adds; reported once)
    if source.contract is not None:
        notes.append(f"input: raw {source.contract.describe()} frames; the front-end stays float")
    if options.precision is Precision.INT8:

        def analysis_batches() -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
            return holdout_batches(holdout, encoder, options.raw, options.batch_size, skipped, options.seed)

        made, made_notes = quantize_int8(
            options, source.path, calibration, outdir, bar, summary, timings, analysis_batches
        )
        artifacts |= made
        notes += made_notes
        models: tuple[ArtifactRole, ...] = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    else:
        fp16_path = outdir / FP16_MODEL_NAME
        fp16 = to_fp16(load_onnx(source.path))
        write_quantized(fp16_path, fp16, source.path, ArtifactRole.FP16, {"keep_io_float": True}, {})
        artifacts[ArtifactRole.FP16] = fp16_path
        models = (ArtifactRole.FP16,)
    reports: dict[ArtifactRole, FidelityReport] = {}
    for name in models:
        path = artifacts[name]
        bar.begin(f"fidelity {name.value}", holdout.samples)
        tick = time.perf_counter()
        batches = holdout_batches(holdout, encoder, options.raw, options.batch_size, skipped, options.seed)
        precision = options.precision.value
        # The TensorRT model is judged by its Q/DQ arithmetic, not by onnxruntime's x86 integer kernels.
        kernels = Kernels.REFERENCE if name is ArtifactRole.INT8_TENSORRT else Kernels.RUNTIME
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
        timings[f"fidelity_{name.value}_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
    if options.eval_csv is not None:
        notes.append(f"fidelity and accuracy on every row of {options.eval_csv} ({holdout.samples} samples)")
    else:
        notes.append(f"fidelity on {holdout.describe()}, none seen by the calibrator")
    summary["holdout"] = holdout.as_dict() | {"skipped": sorted(set(skipped))}
    summary["fidelity"] = {name.value: report.as_dict() for name, report in reports.items()}
    summary["gate"] = options.gate.as_dict()
    engine_target = artifacts[models[0]]  # the TensorRT Q/DQ model, or the FP16 one
    engine_options = options.engine
    if options.precision is Precision.INT8:
        engine_options = replace(engine_options, calibration_cache=outdir / CACHE_NAME)
    summary["engine_options"] = engine_options.as_dict()
    note = engine_status() if options.build_engine else "not asked for"
    if note is None:
        engine_path = outdir / f"model_{options.precision.value}{ENGINE_SUFFIX}"
        bar.begin("TensorRT engine", None)
        build_engine(engine_target, engine_path, engine_options)
        bar.end()
        artifacts[ArtifactRole.ENGINE] = engine_path
        note = f"TensorRT engine built: {engine_path.name}"
    else:
        note = (
            f"TensorRT engine not built ({note}). Made here: the ONNX models and the fidelity report. "
            f"On a machine with TensorRT and an NVIDIA GPU (e.g. the Jetson) run "
            f"`edgeres build --engine-only --onnx {engine_target}` to build it."
        )
    profile: tuple[str, ...] = ()
    if options.profile_iterations:
        cpu_model = models[-1]  # what runs on this CPU: the twin, or the FP16 model
        bar.begin("quick profile", None)
        tick = time.perf_counter()
        profile = quick_profiles(artifacts, [ArtifactRole.FP32, cpu_model], options.profile_iterations, source.contract)
        timings["profile_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
    timings["total_s"] = round(time.perf_counter() - started, 2)
    summary |= {
        "artifacts": {k.value: str(v) for k, v in artifacts.items()},
        "engine": note,
        "profile": list(profile),
        "timings": timings,
        "gate_passed": None,
    }
    try:
        for report in reports.values():
            check_gate(report, options.gate)
        summary["gate_passed"] = True
    except EdgeresError as exc:
        summary["gate_passed"] = False
        current.finish(summary, artifacts.values())  # a finished set whose report says why it fails
        fallback = summary.get("fallback")
        if fallback is not None:
            kept = len(fallback["keep_float"])
            raise FidelityError(
                f"{exc}; automatic fallback wrote its best candidate ({kept} layer(s) in float, "
                f"{fallback['keep_float_option']}) but could not meet the gate within {fallback['max_fallback']} layers"
                if not fallback["met"]
                else f"{exc} (with the {kept} layer(s) automatic fallback kept in float: "
                f"{fallback['keep_float_option']})"
            ) from None
        raise
    summary_path = current.finish(summary, artifacts.values())
    artifacts[ArtifactRole.SUMMARY] = summary_path
    return BuildResult(outdir, artifacts, reports, note, summary, tuple(notes), profile)


def engine_path_for(onnx_path: Path, output: Path) -> Path:
    """`-o` of `--engine-only`: an .engine/.plan file as given, else a folder that gets `<onnx stem>.engine`."""
    output = Path(output)
    return output if is_engine_path(output) else output / f"{Path(onnx_path).stem}{ENGINE_SUFFIX}"


def build_engine_only(onnx_path: Path, output: Path, options: EngineOptions | None = None) -> Path:
    """TensorRT engine from an existing ONNX; its folder's calibration cache (if any) is hashed into the sidecar."""
    onnx_path, options = Path(onnx_path), options or EngineOptions()
    if not onnx_path.is_file():
        raise UserInputError(f"{onnx_path}: ONNX file not found")
    cache = onnx_path.parent / CACHE_NAME
    if options.calibration_cache is None and cache.is_file() and onnx_path.name.startswith("model_int8"):
        options = replace(options, calibration_cache=cache)
    engine = engine_path_for(onnx_path, output)
    with rollback_on_failure(engine.parent):  # never an engine without its sidecar
        build_engine(onnx_path, engine, options)
    return engine
