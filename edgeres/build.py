"""`edgeres build`: FP32 ONNX -> calibrated INT8 Q/DQ ONNX (+ onnxruntime U8S8 twin) or FP16 ONNX -> fidelity
report -> TensorRT engine when TensorRT and a GPU are present; everything in one output directory.

The calibration source is split once, by a seeded shuffle: a held-out share is never seen by the
calibrator and serves the fidelity report, the rest calibrates.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from edgeres.artifacts import read_sidecar, sha256_file, write_bytes_atomic, write_json_atomic, write_sidecar
from edgeres.calibdata import CalibItem, CalibrationSet, RawFrames
from edgeres.calibencode import CameraEncoding, SampleEncoder, encoder_for
from edgeres.calibrate import CalibAlgo, collect_ranges
from edgeres.errors import BackendUnavailableError, EdgeresError, UserInputError
from edgeres.fidelity import FidelityGate, FidelityReport, check_gate, compare_models
from edgeres.frames import open_yuv
from edgeres.images import read_rgb
from edgeres.model import Arch
from edgeres.quantize import insert_qdq, plan_qdq, to_fp16
from edgeres.quantize_ort import insert_qdq_cpu

HOLDOUT_FRACTION = 0.25  # of the readable candidates, kept away from the calibrator for the fidelity report
MAX_HOLDOUT = 256
SUMMARY_NAME = "build_summary.json"


class Precision(str, enum.Enum):
    INT8 = "int8"
    FP16 = "fp16"


class BuildProgress(Protocol):
    """What the CLI implements to draw bars; the library only calls it."""

    def begin(self, task: str, total: int | None) -> None: ...
    def advance(self, amount: int) -> None: ...
    def end(self) -> None: ...


class _Silent:
    def begin(self, task: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class BuildOptions:
    precision: Precision = Precision.INT8
    onnx: Path | None = None  # an FP32 ONNX to start from instead of exporting
    arch: Arch = Arch.RESNET50
    weights: Path | None = None
    num_classes: int | None = None
    calib: Path | None = None  # folder of images / raw frames, or a path,label CSV; None: calibration/
    # On the trained EfficientNet-Lite0 check MSE and max gave 16.8-18.0 dB logits SQNR, percentile 14.9-17.1,
    # entropy 11.2-11.6; MSE is the default because one outlier frame cannot set its range, as it sets max's.
    calib_algo: CalibAlgo = CalibAlgo.MSE
    calib_size: int = 64
    batch_size: int = 8
    seed: int = 0
    keep_float: tuple[str, ...] = ()
    gate: FidelityGate = field(default_factory=FidelityGate)
    raw: RawFrames | None = None  # layout and size of raw .yuv calibration frames
    camera: CameraEncoding | None = None  # the camera encoding, for a model that takes YUV frames

    def __post_init__(self) -> None:
        if self.calib_size < 1:
            raise UserInputError(f"--calib-size {self.calib_size}: must be at least 1")
        if self.onnx is not None and not Path(self.onnx).is_file():
            raise UserInputError(f"{self.onnx}: ONNX file not found")


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    artifacts: dict[str, Path]
    fidelity: dict[str, FidelityReport]
    engine_note: str
    summary: dict[str, Any]


@dataclass(frozen=True)
class Holdout:
    items: tuple[CalibItem, ...]
    labelled: bool


def split_holdout(calibration: CalibrationSet) -> Holdout:
    """Move the last share of the shuffled candidates out of `calibration`; they become the held-out set."""
    pool = calibration.pool
    if len(pool) < 2:
        raise UserInputError(
            f"{calibration.source}: {len(pool)} calibration item(s); at least 2 are needed to hold one out "
            "for the fidelity report"
        )
    count = min(MAX_HOLDOUT, max(1, round(len(pool) * HOLDOUT_FRACTION)))
    calibration.pool = pool[:-count]
    calibration.summary.candidates = len(calibration.pool)
    held = tuple(pool[-count:])
    return Holdout(held, all(item.label is not None and item.label.strip().isdigit() for item in held))


def holdout_batches(
    holdout: Holdout, encoder: SampleEncoder, raw: RawFrames | None, batch_size: int, skipped: list[str]
) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Encoded held-out samples in batches, with integer labels when every item has one."""
    samples: list[np.ndarray] = []
    labels: list[int] = []

    def flush() -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        batch = np.stack(samples)
        out = (batch, np.array(labels)) if holdout.labelled else batch
        samples.clear()
        labels.clear()
        return out

    for item in holdout.items:
        try:
            if item.frame is not None and raw is not None:
                frame = open_yuv(item.path, raw.layout, raw.width, raw.height).frame(item.frame)
                samples.append(encoder.from_frame(frame, raw.layout))
            else:
                samples.append(encoder.from_rgb(read_rgb(item.path)))
        except (UserInputError, OSError, ValueError) as exc:
            skipped.append(f"{item.path}: {exc}")
            continue
        if holdout.labelled:
            labels.append(int(str(item.label)))
        if len(samples) == batch_size:
            yield flush()
    if samples:
        yield flush()


def engine_status() -> str | None:
    """None when TensorRT and a GPU are usable here; otherwise why not, in one line."""
    try:
        from edgeres.engine import running_target

        running_target()
    except BackendUnavailableError as exc:
        return str(exc)
    except EdgeresError as exc:
        return f"no usable GPU: {exc}"
    return None


def _source_model(options: BuildOptions, outdir: Path, progress: BuildProgress) -> tuple[Path, str, bool | None]:
    """The FP32 ONNX to start from, and which weights it carries (None: unknown)."""
    if options.onnx is not None:
        sidecar = read_sidecar(Path(options.onnx)) or {}
        random = sidecar.get("options", {}).get("random_weights")
        weights = sidecar.get("inputs", {}).get("weights")
        if random is None:
            return Path(options.onnx), f"unknown (no edgeres sidecar beside {options.onnx})", None
        return Path(options.onnx), str(weights) if weights else "random (seeded)", bool(random)
    from edgeres.pipeline import export_default

    progress.begin("export FP32 ONNX", None)
    result = export_default(outdir / "model_fp32.onnx", options.arch, options.weights, options.num_classes)
    progress.end()
    random = bool(result.sidecar["options"]["random_weights"])
    if options.weights:
        return result.path, str(options.weights), random
    return result.path, "random (seeded)" if random else "torchvision cache", random


def _write_model(
    path: Path, model: onnx.ModelProto, source: Path, options: dict[str, Any], results: dict[str, Any]
) -> None:
    write_bytes_atomic(path, model.SerializeToString())
    write_sidecar(path, "quantize", {"onnx": str(source), "onnx_sha256": sha256_file(source)}, options, results)


def build(options: BuildOptions, outdir: Path, progress: BuildProgress | None = None) -> BuildResult:
    """Run the whole chain; raises FidelityError (after writing the report) when the gate fails."""
    bar = progress or _Silent()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source, weights, random = _source_model(options, outdir, bar)
    encoder = encoder_for(source, options.camera)
    calibration = CalibrationSet(options.calib, encoder, options.calib_size, options.seed, options.raw)
    holdout = split_holdout(calibration)
    model = onnx.load(str(source))
    artifacts: dict[str, Path] = {"fp32": source}
    candidates: dict[str, Path] = {}
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"precision": options.precision.value, "weights": weights, "random_weights": random}
    if options.precision is Precision.INT8:
        plan = plan_qdq(model, options.keep_float)
        tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
        bar.begin(f"calibrate ({options.calib_algo.value})", len(calibration))
        tick = time.perf_counter()
        ranges = collect_ranges(
            source, calibration.batches(options.batch_size), options.calib_algo, tensors, progress=bar.advance
        )
        timings["calibration_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
        quant_options = {
            "calib_algo": options.calib_algo.value,
            "keep_float": list(options.keep_float),
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
            {"placement": placement, "ranges": ranges, "calibration": calibration.summary.as_dict()},
        )
        _write_model(
            cpu_path,
            insert_qdq_cpu(model, plan, ranges),
            source,
            {**quant_options, "target": "onnxruntime cpu (U8S8, zero point 128, TensorRT scales)"},
            {"extra_quantized_conv_outputs": len(plan.cpu_extra), "moved_to_conv_outputs": len(plan.cpu_moves)},
        )
        artifacts |= {"int8_tensorrt": trt_path, "int8_onnxruntime": cpu_path}
        candidates = {"int8_tensorrt": trt_path, "int8_onnxruntime": cpu_path}
        summary["calibration"] = calibration.summary.as_dict() | {"algo": options.calib_algo.value}
    else:
        fp16_path = outdir / "model_fp16.onnx"
        _write_model(fp16_path, to_fp16(model), source, {"keep_io_float": True}, {})
        artifacts["fp16"] = fp16_path
        candidates = {"fp16": fp16_path}
    skipped: list[str] = []
    reports: dict[str, FidelityReport] = {}
    for name, path in candidates.items():
        bar.begin(f"fidelity {name}", len(holdout.items))
        tick = time.perf_counter()
        batches = holdout_batches(holdout, encoder, options.raw, options.batch_size, skipped)
        precision = options.precision.value
        reports[name] = compare_models(source, path, batches, precision, weights, random, progress=bar.advance)
        timings[f"fidelity_{name}_s"] = round(time.perf_counter() - tick, 2)
        bar.end()
    summary["holdout"] = {
        "items": len(holdout.items),
        "labelled": holdout.labelled,
        "paths": [str(item.path) for item in holdout.items],
        "skipped": sorted(set(skipped)),
    }
    summary["fidelity"] = {name: report.as_dict() for name, report in reports.items()}
    summary["gate"] = {"min_sqnr_db": options.gate.min_sqnr_db, "min_agreement": options.gate.min_agreement}
    engine_target = artifacts.get("int8_tensorrt", artifacts.get("fp16"))
    note = engine_status()
    if note is None:
        from edgeres.engine import build_engine

        assert engine_target is not None
        engine_path = outdir / f"model_{options.precision.value}.engine"
        bar.begin("TensorRT engine", None)
        build_engine(engine_target, engine_path)
        bar.end()
        artifacts["engine"] = engine_path
        note = f"TensorRT engine built: {engine_path.name}"
    else:
        note = (
            f"TensorRT engine not built ({note}). Made here: the ONNX models and the fidelity report. "
            f"On a machine with TensorRT and an NVIDIA GPU (e.g. the Jetson) build the engine from "
            f"{engine_target.name if engine_target else 'the ONNX'}."
        )
    timings["total_s"] = round(time.perf_counter() - started, 2)
    summary |= {
        "artifacts": {k: str(v) for k, v in artifacts.items()},
        "engine": note,
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
    return BuildResult(outdir, artifacts, reports, note, summary)
