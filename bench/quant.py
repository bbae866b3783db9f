"""INT8 vs FP32 latency of ResNet50 in onnxruntime on the CPU (2 threads), batch 1 and 8, in one run.

Four models from one export and one calibration: FP32; the TensorRT Q/DQ model (S8S8) as
onnxruntime runs it (for reference: its x86 S8S8 kernels are slow); the CPU twin with int8 weights
(U8S8) and with uint8 weights (U8U8), of which edgeres ships the one onnxruntime computes exactly on
this CPU (U8S8 needs VNNI on x86). Each twin's largest logit difference from the Q/DQ arithmetic is
printed too. Models are timed in interleaved rounds so a load change on the machine hits all of them
alike; the median of each is reported. Target: the shipped twin at least 2.5x faster than FP32.

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
from edgeres.quantize.cpu_twin import WeightType, exact_weight_type, insert_qdq_cpu
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
    qdq = insert_qdq(built.fp32, built.plan, built.ranges)
    models = {"fp32": built.fp32, "int8 S8S8 (TensorRT model)": qdq}
    twins = {weights: f"int8 twin, {weights.value} weights" for weights in WeightType}
    for weights, name in twins.items():
        models[name] = insert_qdq_cpu(built.fp32, built.plan, built.ranges, weights)
    shipped = twins[exact_weight_type()]
    sessions = {name: cpu_session(m, THREADS) for name, m in models.items()}
    cpu_session(models[shipped], THREADS, optimized_to=work / "twin_optimized.onnx")
    fused = Counter(n.op_type for n in onnx.load(work / "twin_optimized.onnx").graph.node)
    print(f"{args.arch}, onnxruntime {ort.__version__} CPU, {THREADS} threads, {args.rounds} interleaved rounds")
    print(f"shipped on this CPU: {shipped}; its optimized graph: {fused['QLinearConv']} QLinearConv, "
          f"{fused['Conv'] + fused['FusedConv']} float Conv")  # fmt: skip
    rng = np.random.default_rng(0)
    probe = rng.standard_normal((2, 3, 224, 224)).astype(np.float32)
    reference = cpu_session(qdq, THREADS, reference_kernels=True).run(None, {"input": probe})[0]
    for name in twins.values():
        difference = np.abs(sessions[name].run(None, {"input": probe})[0] - reference).max()
        print(f"{name}: max |logit - Q/DQ arithmetic| {difference:.3g} (logits span {np.ptp(reference):.3g})")
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
        speedup = base / float(np.median(samples[shipped]))
        verdict = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
        print(f"batch {size}: shipped twin {speedup:.2f}x {verdict} the {TARGET_SPEEDUP}x target")


if __name__ == "__main__":
    main()
