"""Layer by layer: edgeres's onnxruntime INT8 twin against OpenVINO on the same calibrated ResNet50, CPU, batch 1.

onnxruntime's own profiler (per node kernel time) times the twin; OpenVINO's performance counters time
its compile of the TensorRT Q/DQ ONNX (FP32 remainder, f32 inference precision: the same arithmetic);
the two run in alternating blocks.
Convolutions are matched by their ONNX node name and grouped by shape (kernel, stride); for each group
the table gives both engines' time, their multiply-accumulate rates and the ratio, then the rest of the
network (residual Adds, ReLU/Clip, pooling, layout changes, the classifier) per engine, and the kernels
OpenVINO chose. Needs `pip install openvino` (for this benchmark only).

    .venv/bin/python bench/cpu_layers.py [--runs 30] [--arch resnet50]
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from _models import bench_start, openvino_cpu

from edgeres.artifacts.ort_session import session_options
from edgeres.quantize.qdq import insert_qdq
from edgeres.quantize.sensitivity import layer_macs

THREADS = 2
ROUNDS = 5  # alternating blocks of runs per engine


def conv_kinds(model: onnx.ModelProto) -> dict[str, str]:
    """Conv node name -> 'kxk/s' (kernel and stride), the stem named apart."""
    kinds = {}
    for node in (n for n in model.graph.node if n.op_type == "Conv"):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        kernel, stride = attrs.get("kernel_shape", [1])[0], attrs.get("strides", [1])[0]
        kinds[node.name] = "stem 7x7/2" if kernel == 7 else f"{kernel}x{kernel}/{stride}"
    return kinds


def interleaved_times(
    twin: Path, qdq: Path, batch: np.ndarray, runs: int, work: Path
) -> tuple[dict[str, float], dict[str, float], Counter[str]]:
    """Mean milliseconds per run of each node: onnxruntime's twin (its profiler; fused nodes named after
    their first node) and OpenVINO's compile of the Q/DQ model (its counters), plus OpenVINO's time per
    kernel type. The engines alternate in blocks of runs, so a change of load on the machine hits both alike."""
    options = session_options(THREADS)
    options.enable_profiling = True
    options.profile_file_prefix = str(work / "ort")
    session = ort.InferenceSession(str(twin), options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": batch})  # profiled too: counted in the mean, as one more run
    request = openvino_cpu(qdq, list(batch.shape), THREADS, "f32", perf_count=True).create_infer_request()
    for _ in range(3):
        request.infer([batch])
    ov_ms: dict[str, float] = defaultdict(float)
    kernels: Counter[str] = Counter()
    block = max(1, runs // ROUNDS)
    runs = block * ROUNDS
    for _ in range(ROUNDS):  # blocks, not single runs: each engine's weights stay in cache within its block
        for _ in range(block):
            session.run(None, {"input": batch})
        for _ in range(block):
            request.infer([batch])
            for info in request.profiling_info:
                ms = info.real_time.total_seconds() * 1e3 / runs
                ov_ms[info.node_name.split("/WithoutBiases")[0]] += ms
                kernels[info.exec_type] += ms
    ort_ms: dict[str, float] = defaultdict(float)
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            ort_ms[re.sub(r"(_token_\d+)?_kernel_time$", "", event["name"])] += event["dur"] / 1e3 / (runs + 1)
    return dict(ort_ms), dict(ov_ms), kernels


def main() -> None:
    args, work, built = bench_start(__doc__ or "", "runs", 30, "edgeres-layers-")
    twin, qdq = work / "twin.onnx", work / "qdq.onnx"
    onnx.save(built.u8s8, twin)
    onnx.save(insert_qdq(built.fp32, built.plan, built.ranges), qdq)
    batch = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    ort_ms, ov_ms, kernels = interleaved_times(twin, qdq, batch, args.runs, work)
    kinds, macs = conv_kinds(built.fp32), layer_macs(built.fp32)
    print(f"{args.arch} batch 1, {THREADS} threads, mean of {args.runs} runs; onnxruntime {ort.__version__} "
          f"(CPU twin), OpenVINO (Q/DQ ONNX, f32 rest)")  # fmt: skip
    print(f"{'convolutions':14s} {'n':>3s} {'GMAC':>6s} {'ORT ms':>8s} {'OV ms':>8s} {'ORT GMAC/s':>11s} "
          f"{'OV GMAC/s':>10s} {'ORT/OV':>7s}")  # fmt: skip
    conv_ort = conv_ov = 0.0
    for kind in sorted(set(kinds.values())):
        names = [n for n, k in kinds.items() if k == kind]
        gmac = sum(macs[n] for n in names) / 1e9
        a, b = sum(ort_ms.get(n, 0.0) for n in names), sum(ov_ms.get(n, 0.0) for n in names)
        conv_ort, conv_ov = conv_ort + a, conv_ov + b
        print(f"{kind:14s} {len(names):3d} {gmac:6.3f} {a:8.2f} {b:8.2f} {gmac / a * 1e3:11.0f} "
              f"{gmac / b * 1e3:10.0f} {a / b:7.2f}")  # fmt: skip
    rest_ort, rest_ov = sum(ort_ms.values()) - conv_ort, sum(ov_ms.values()) - conv_ov
    print(f"{'all convs':14s} {len(kinds):3d} {sum(macs[n] for n in kinds) / 1e9:6.3f} {conv_ort:8.2f} {conv_ov:8.2f}"
          f" {'':11s} {'':10s} {conv_ort / conv_ov:7.2f}")  # fmt: skip
    print(f"{'everything else':18s} {'':6s} {rest_ort:8.2f} {rest_ov:8.2f} {'':22s} {rest_ort / rest_ov:7.2f}")
    others = Counter({n: t for n, t in ort_ms.items() if n not in kinds})
    print("onnxruntime, slowest other nodes:", ", ".join(f"{n} {t:.2f} ms" for n, t in others.most_common(5)))
    print("OpenVINO kernels:", ", ".join(f"{k} {t:.2f} ms" for k, t in kernels.most_common(6)))


if __name__ == "__main__":
    main()
