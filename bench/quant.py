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
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from _models import fp32_and_u8s8

from edgeres.artifacts.ort_session import cpu_session
from edgeres.model.arch import Arch
from edgeres.quantize.qdq import insert_qdq

TARGET_SPEEDUP = 2.5
THREADS = 2


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
    built = fp32_and_u8s8(work, Arch(args.arch))
    models = {"fp32": built.fp32, "int8 S8S8 (TensorRT model)": insert_qdq(built.fp32, built.plan, built.ranges)}
    models["int8 U8S8 (onnxruntime twin)"] = built.u8s8
    sessions = {name: cpu_session(m, THREADS) for name, m in models.items()}
    cpu_session(models["int8 U8S8 (onnxruntime twin)"], THREADS, optimized_to=work / "u8s8_optimized.onnx")
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
