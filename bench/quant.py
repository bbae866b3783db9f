"""INT8 vs FP32 latency of ResNet50 in onnxruntime on the CPU (2 threads), batch 1 and 8, in one run.

Three models from one export and one calibration: FP32; the TensorRT Q/DQ model (S8S8) as
onnxruntime runs it (for reference: its x86 S8S8 kernels are slow); the U8S8 twin that edgeres ships
for onnxruntime. Models are timed in interleaved rounds so a load change on the machine hits all of
them alike; the median of each is reported. Target: U8S8 at least 2.5x faster than FP32 at both sizes.

    .venv/bin/python bench/quant.py [--rounds 5] [--arch resnet50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgeres.calibdata import CalibrationSet
from edgeres.calibencode import encoder_for
from edgeres.calibrate import CalibAlgo, collect_ranges
from edgeres.model import Arch
from edgeres.pipeline import export_default
from edgeres.quantize import insert_qdq, plan_qdq
from edgeres.quantize_ort import insert_qdq_cpu

TARGET_SPEEDUP = 2.5
THREADS = 2


def session(model: onnx.ModelProto, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def time_ms(run: ort.InferenceSession, batch: np.ndarray, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run.run(None, {"input": batch})
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arch", default="resnet50")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgeres-bench-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: latency does not depend on them
        fp32_path = export_default(work / "fp32.onnx", Arch(args.arch)).path
    model = onnx.load(fp32_path)
    plan = plan_qdq(model)
    calibration = CalibrationSet(None, encoder_for(fp32_path), calib_size=8)
    ranges = collect_ranges(fp32_path, calibration.batches(8), CalibAlgo.MAX, list(plan.activations + plan.cpu_extra))
    models = {"fp32": model, "int8 S8S8 (TensorRT model)": insert_qdq(model, plan, ranges)}
    models["int8 U8S8 (onnxruntime twin)"] = insert_qdq_cpu(model, plan, ranges)
    sessions = {name: session(m) for name, m in models.items()}
    session(models["int8 U8S8 (onnxruntime twin)"], work / "u8s8_optimized.onnx")
    fused = Counter(n.op_type for n in onnx.load(work / "u8s8_optimized.onnx").graph.node)
    print(f"{args.arch}, onnxruntime {ort.__version__} CPU, {THREADS} threads, {args.rounds} interleaved rounds")
    print(f"U8S8 optimized graph: {fused['QLinearConv']} QLinearConv, {fused['Conv'] + fused['FusedConv']} float Conv")
    rng = np.random.default_rng(0)
    for size, repeats in ((1, 10), (8, 3)):
        batch = rng.standard_normal((size, 3, 224, 224)).astype(np.float32)
        samples: dict[str, list[float]] = {name: [] for name in sessions}
        for run in sessions.values():
            time_ms(run, batch, 2)  # warm-up
        for _ in range(args.rounds):
            for name, run in sessions.items():
                samples[name] += time_ms(run, batch, repeats)
        base = float(np.median(samples["fp32"]))
        for name, values in samples.items():
            median = float(np.median(values))
            print(f"batch {size}: {name:30s} median {median:8.2f} ms   speedup vs fp32 {base / median:5.2f}x")
        speedup = base / float(np.median(samples["int8 U8S8 (onnxruntime twin)"]))
        verdict = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
        print(f"batch {size}: U8S8 {speedup:.2f}x {verdict} the {TARGET_SPEEDUP}x target")


if __name__ == "__main__":
    main()
