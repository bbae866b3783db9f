"""edgeres's OpenVINO runner against OpenVINO called directly, the onnxruntime twin and FP32: ResNet50, CPU.

Named apart from the `openvino` package, which a script called openvino.py in bench/ would shadow.

One export, one calibration (bench/_models.py), two INT8 files as `edgeres build` writes them: the TensorRT
Q/DQ model (FP16 remainder, `model_int8_qdq.onnx`) and the onnxruntime twin (`model_int8_u8s8.onnx` or the
weight type this CPU computes exactly). Four runs, 2 threads each, batch 1 and 8, timed in interleaved
rounds so a load change on the machine hits them alike; the median of each is reported:

  (a) edgeres's `OpenVinoRunner` on the Q/DQ file (one compile, dynamic batch, latency hint, f32 float part);
  (b) OpenVINO's own `compile_model` on the same file with the same properties, its infer request called
      with shared input and output memory;
  (c) the twin on onnxruntime; (d) the FP32 model on onnxruntime;
  (e) for the cost of the dynamic batch axis: OpenVINO compiled for each batch size (bench/_models.py
      `openvino_cpu`: reshaped, one stream, f32 float part).

Printed: ours / direct (goal: within 5%, no overhead of ours), the speed-up of (a) over the twin and over
FP32, the CPU and its ISA (AMX, AVX-512 VNNI, AVX-VNNI, AVX2) since the speed-up depends on it. Then
fidelity on the shipped photographs: logits SQNR and top-1 agreement of (a) against onnxruntime's
reference arithmetic of the same Q/DQ file and against FP32, next to the reference's and the twin's.
Needs `pip install -e .[openvino]`.

    .venv/bin/python bench/openvino_runner.py [--rounds 5] [--arch resnet50]
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
from _models import bench_start, openvino_cpu

from edgeres.artifacts.ort_session import cpu_session
from edgeres.frames.images import default_calibration_dir, list_images, read_batch
from edgeres.quantize.cpu_twin import cpu_flags, exact_weight_type
from edgeres.quantize.fidelity import Kernels, compare_logits, model_logits
from edgeres.quantize.tensorrt_qdq import tensorrt_qdq_model
from edgeres.runtime.openvino_runner import OpenVinoRunner
from edgeres.timing import RunLength, timed_calls

THREADS = 2
# What the runner sets (edgeres.runtime.openvino_runner), written out as a user of OpenVINO would.
DIRECT_PROPERTIES = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": THREADS, "INFERENCE_PRECISION_HINT": "f32"}
GOAL_OVERHEAD = 1.05  # ours / direct
BATCHES = ((1, 10), (8, 3))  # batch size, calls per round
ISA_FLAGS = (("AMX-INT8", "amx_int8"), ("AVX512-VNNI", "avx512_vnni"), ("AVX-VNNI", "avx_vnni"), ("AVX2", "avx2"))

Run = Callable[[np.ndarray], object]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def isa_line() -> str:
    flags = cpu_flags()
    return ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for name, flag in ISA_FLAGS)


def request_run(compiled: ov.CompiledModel) -> Run:
    """OpenVINO as a user would call it: one infer request, inputs and outputs shared, not copied."""
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x}, share_inputs=True, share_outputs=True)


def onnxruntime_run(model: onnx.ModelProto) -> Run:
    session = cpu_session(model, THREADS)
    return lambda x: session.run(None, {"input": x})


def time_interleaved(runs: dict[str, Run], batch: np.ndarray, calls: int, rounds: int) -> dict[str, float]:
    """Median milliseconds per call of each run, timed `calls` at a time in `rounds` alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    calls_of = {name: partial(run, batch) for name, run in runs.items()}
    for call in calls_of.values():
        timed_calls(call, RunLength(2))  # warm-up
    for _ in range(rounds):
        for name, call in calls_of.items():
            samples[name] += list(timed_calls(call, RunLength(calls)) * 1e3)
    return {name: float(np.median(values)) for name, values in samples.items()}


def print_fidelity(qdq: Path, fp32: onnx.ModelProto, twin: onnx.ModelProto, runner: OpenVinoRunner) -> None:
    photos = read_batch(list_images(default_calibration_dir()))
    fp32_logits = model_logits(fp32, [photos])
    reference = model_logits(qdq, [photos], Kernels.REFERENCE)
    twin_logits = model_logits(twin, [photos])
    ours = [np.asarray(runner.infer(photos), np.float64)]
    print(f"fidelity on the {len(photos)} shipped photographs (random weights: SQNR is the measure that counts)")
    for name, base, candidate in (
        ("openvino vs Q/DQ reference", reference, ours),
        ("openvino vs fp32", fp32_logits, ours),
        ("Q/DQ reference vs fp32", fp32_logits, reference),
        ("twin vs fp32", fp32_logits, twin_logits),
    ):
        report = compare_logits(base, candidate, [None], "int8")
        print(f"  {name:28s} logits SQNR {report.sqnr_db:6.2f} dB   top-1 agreement {report.top1_agreement:6.1%}")


def main() -> None:
    args, work, built = bench_start(__doc__ or "", "rounds", 5, "edgeres-bench-")
    qdq = work / "model_int8_qdq.onnx"
    onnx.save(tensorrt_qdq_model(built.fp32, built.plan, built.ranges), qdq)
    print(f"{args.arch}, random weights, {THREADS} threads, {args.rounds} interleaved rounds")
    print(f"CPU: {cpu_name()}; {isa_line()}")
    print(f"OpenVINO {ov.get_version()}; twin weights {exact_weight_type().value}")
    direct = request_run(ov.Core().compile_model(str(qdq), "CPU", DIRECT_PROPERTIES))
    with OpenVinoRunner(qdq, threads=THREADS) as runner:
        print(f"edgeres runner: float part in {runner.inference_precision}, input {runner.input_spec.describe()}")
        for size, calls in BATCHES:
            batch = np.random.default_rng(size).standard_normal((size, 3, 224, 224)).astype(np.float32)
            reshaped = request_run(openvino_cpu(qdq, list(batch.shape), THREADS, "f32"))
            runs: dict[str, Run] = {
                "edgeres OpenVinoRunner (int8)": runner.infer,
                "openvino compile_model (int8)": direct,
                "onnxruntime twin (int8)": onnxruntime_run(built.u8s8),
                "onnxruntime fp32": onnxruntime_run(built.fp32),
                f"openvino reshaped to {size} (int8)": reshaped,
            }
            medians = time_interleaved(runs, batch, calls, args.rounds)
            for name, median in medians.items():
                print(f"batch {size}: {name:32s} median {median:8.2f} ms")
            ours, direct_ms, twin, fp32, reshaped_ms = medians.values()
            verdict = "meets" if ours / direct_ms <= GOAL_OVERHEAD else "MISSES"
            print(f"batch {size}: ours / direct {ours / direct_ms:.3f} ({verdict} the {GOAL_OVERHEAD:.2f} goal); "
                  f"speed-up over the twin {twin / ours:.2f}x, over fp32 {fp32 / ours:.2f}x; "
                  f"dynamic / reshaped batch {direct_ms / reshaped_ms:.3f}")  # fmt: skip
        print_fidelity(qdq, built.fp32, built.u8s8, runner)


if __name__ == "__main__":
    main()
