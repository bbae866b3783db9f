"""INT8 vs FP32 latency of ResNet50 in onnxruntime on the CPU (2 threads), batch 1 and 8, in one run.

Four models from one export and one calibration: FP32; the TensorRT Q/DQ model (S8S8) as
onnxruntime runs it (for reference: its x86 S8S8 kernels are slow); the CPU twin with int8 weights
(U8S8) and with uint8 weights (U8U8), of which edgeres ships the one onnxruntime computes exactly on
this CPU (U8S8 needs VNNI on x86). Each twin's largest logit difference from the Q/DQ arithmetic is
printed too. Models are timed in interleaved rounds so a load change on the machine hits all of them
alike; the median of each is reported. Target: the shipped twin at least 2.5x faster than FP32.

When the `openvino` package is installed (`pip install -e .[openvino]`; edgeres's own OpenVINO runner is
compared in bench/openvino_runner.py), OpenVINO runs the same TensorRT Q/DQ ONNX (FP32 remainder) on the
CPU, 2 threads, latency hint, compiled for each batch size: with its default inference precision
(bfloat16 for the non-quantized remainder on CPUs with AMX or AVX-512 BF16) and with f32 forced
(the same arithmetic as edgeres's twin). The ratio edgeres INT8 / OpenVINO INT8 is printed per batch.

    .venv/bin/python bench/quant.py [--rounds 5] [--arch resnet50]
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from _models import bench_start, openvino_cpu

from edgeres.artifacts.ort_session import cpu_session
from edgeres.quantize.cpu_twin import WeightType, exact_weight_type, insert_qdq_cpu
from edgeres.quantize.qdq import insert_qdq

TARGET_SPEEDUP = 2.5
THREADS = 2


def time_ms(run: ort.InferenceSession | OpenVinoRun, batch: np.ndarray, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run.run(None, {"input": batch})
        times.append((time.perf_counter() - start) * 1e3)
    return times


class OpenVinoRun:
    """An OpenVINO CPU compile of an ONNX for one batch size, callable like a session for `time_ms`."""

    def __init__(self, path: Path, batch: int, precision: str | None) -> None:
        self.compiled = openvino_cpu(path, [batch, 3, 224, 224], THREADS, precision)
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.request = self.compiled.create_infer_request()

    def run(self, _outputs: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.request.infer([next(iter(feed.values()))])
        return [self.request.get_output_tensor(0).data]


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    args, work, built = bench_start(__doc__ or "", "rounds", 5, "edgeres-bench-")
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
    qdq_path = work / "int8_qdq.onnx"
    onnx.save(qdq, qdq_path)
    vino = openvino_available()
    if not vino:
        print("openvino not installed (pip install openvino): no OpenVINO column")
    for size, repeats in ((1, 10), (8, 3)):
        batch = rng.standard_normal((size, 3, 224, 224)).astype(np.float32)
        runs: dict[str, ort.InferenceSession | OpenVinoRun] = dict(sessions)
        if vino:
            default, forced = OpenVinoRun(qdq_path, size, None), OpenVinoRun(qdq_path, size, "f32")
            runs[f"openvino int8 ({default.precision} rest)"] = default
            runs["openvino int8 (f32 rest)"] = forced
            difference = np.abs(forced.run(None, {"input": probe[:1].repeat(size, 0)})[0] - reference[:1]).max()
            print(f"openvino (f32 rest): max |logit - Q/DQ arithmetic| {difference:.3g}")
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():
            time_ms(run, batch, 2)  # warm-up
        for _ in range(args.rounds):
            for name, run in runs.items():
                samples[name] += time_ms(run, batch, repeats)
        base = float(np.median(samples["fp32"]))
        for name, values in samples.items():
            median = float(np.median(values))
            print(f"batch {size}: {name:30s} median {median:8.2f} ms   speedup vs fp32 {base / median:5.2f}x")
        speedup = base / float(np.median(samples[shipped]))
        verdict = "meets" if speedup >= TARGET_SPEEDUP else "MISSES"
        print(f"batch {size}: shipped twin {speedup:.2f}x {verdict} the {TARGET_SPEEDUP}x target")
        twin_ms = float(np.median(samples[shipped]))
        for name in (n for n in samples if n.startswith("openvino")):
            print(f"batch {size}: edgeres INT8 / {name} latency = {twin_ms / float(np.median(samples[name])):.2f}")


if __name__ == "__main__":
    main()
