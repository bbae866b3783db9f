"""Models the benchmarks share: one random-weight FP32 export, calibrated once, and its quantized twins.

Imported by the scripts next to it (`python bench/<script>.py` puts bench/ on the import path).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgeres.export.from_weights import export_default
from edgeres.model.arch import Arch
from edgeres.quantize.calibrate import collect_ranges
from edgeres.quantize.cpu_twin import exact_weight_type, insert_qdq_cpu
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import QdqPlan, plan_qdq
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for

CALIB_SAMPLES = 8  # latency does not depend on the weights or ranges: a small MAX calibration will do


@dataclass(frozen=True)
class BenchModels:
    """The FP32 export, its Q/DQ plan and calibrated ranges, and the U8S8 twin edgeres ships for onnxruntime."""

    fp32_path: Path
    fp32: onnx.ModelProto
    plan: QdqPlan
    ranges: dict[str, float]
    u8s8: onnx.ModelProto


def fp32_and_u8s8(work: Path, arch: Arch) -> BenchModels:
    """Export a random-weight FP32 `arch` into `work`, calibrate it with MAX, build the U8S8 twin."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: latency does not depend on them
        fp32_path = export_default(work / "fp32.onnx", arch).path
    fp32 = onnx.load(fp32_path)
    plan = plan_qdq(fp32)
    calibration = CalibrationSet(None, encoder_for(fp32_path), calib_size=CALIB_SAMPLES)
    tensors = list(plan.activations + plan.cpu_extra)
    ranges = collect_ranges(fp32_path, calibration.batches(CALIB_SAMPLES), CalibAlgo.MAX, tensors)
    return BenchModels(fp32_path, fp32, plan, ranges, insert_qdq_cpu(fp32, plan, ranges, exact_weight_type()))


def openvino_cpu(path: Path, batch_shape: list[int], threads: int, precision: str | None = None,
                 perf_count: bool = False) -> Any:  # fmt: skip
    """OpenVINO's CPU compile of an ONNX for one input shape: `threads` threads, latency hint, one stream;
    `precision` forces the inference precision of what is not quantized (None: OpenVINO's default)."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].any_name: batch_shape})
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    if perf_count:
        config["PERF_COUNT"] = True
    return core.compile_model(model, "CPU", config)


def bench_start(doc: str, repeats: str, default: int, prefix: str) -> tuple[argparse.Namespace, Path, BenchModels]:
    """The CPU benches' common start: `--<repeats>` (default `default`) and `--arch` parsed, then the FP32 model
    and its calibration made in a fresh folder."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{repeats}", type=int, default=default)
    parser.add_argument("--arch", default="resnet50")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    return args, work, fp32_and_u8s8(work, Arch(args.arch))

