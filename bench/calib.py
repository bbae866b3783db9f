"""Calibration speed and peak memory: edgeres' streaming calibrator vs onnxruntime's calibrators.

Every measurement runs in a fresh subprocess, so the peak resident set size (ru_maxrss) belongs to
that one calibration. Both sides read the same lazily decoded samples from the shipped calibration/
photographs (crops/flips derived beyond 11), with the same batch size and 2 onnxruntime threads.
onnxruntime's side is its calibrator (create_calibrator -> collect_data -> compute_data, what
quantize_static runs before writing the model) over the same op types, with its default options.

    .venv/bin/python bench/calib.py                       # exports a random-weight ResNet50 if needed
    .venv/bin/python bench/calib.py --onnx /tmp/r50.onnx --sizes 32 128 512 --ort-sizes 16 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ALGOS = ("max", "percentile", "entropy", "mse")
ORT_METHODS = {"max": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def calibration_batches(onnx_path: str, samples: int, batch: int):  # type: ignore[no-untyped-def]
    from edgeres.samples.calibration import CalibrationSet
    from edgeres.samples.encoding import encoder_for

    return CalibrationSet(None, encoder_for(onnx_path), samples, seed=0).batches(batch)


def tensors_like_ort(onnx_path: str) -> list[str]:
    """The tensors onnxruntime's calibrator picks for these op types: float inputs and outputs, not weights."""
    import onnx

    from edgeres.quantize.calibrate import CONSUMER_OPS, FLOAT_TYPES, tensor_types

    model = onnx.load(onnx_path)
    types, weights = tensor_types(model), {init.name for init in model.graph.initializer}
    chosen: dict[str, None] = {}
    for node in model.graph.node:
        if node.op_type in CONSUMER_OPS:
            for name in (*node.input, *node.output):
                if name and name not in weights and types.get(name) in FLOAT_TYPES:
                    chosen[name] = None
    return list(chosen)


def worker_edgeres(onnx_path: str, algo: str, samples: int, batch: int) -> dict[str, float]:
    from edgeres.quantize.calibrate import collect_statistics, ranges_from_statistics
    from edgeres.quantize.histogram import CalibAlgo

    tensors = tensors_like_ort(onnx_path)  # the same work as onnxruntime's side
    start = time.perf_counter()
    chosen = CalibAlgo(algo)
    batches = calibration_batches(onnx_path, samples, batch)
    stats = collect_statistics(onnx_path, batches, tensors, histograms=chosen is not CalibAlgo.MAX)
    ranges = ranges_from_statistics(stats, chosen)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "tensors": len(ranges), "state_bytes": stats.nbytes}


def worker_ort(onnx_path: str, algo: str, samples: int, batch: int) -> dict[str, float]:
    from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

    from edgeres.quantize.calibrate import CONSUMER_OPS

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = calibration_batches(onnx_path, samples, batch)

        def get_next(self) -> dict[str, object] | None:
            return {"input": b} if (b := next(self.batches, None)) is not None else None

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        calibrator = create_calibrator(
            onnx_path,
            list(CONSUMER_OPS),
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod[ORT_METHODS[algo]],
        )
        calibrator.collect_data(Reader())
        ranges = calibrator.compute_data()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "tensors": len(ranges.data), "state_bytes": -1}


def worker_inference(onnx_path: str, algo: str, samples: int, batch: int) -> dict[str, float]:
    """Reference: plain FP32 inference over the same batches (no statistics)."""
    from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session

    session = cpu_session(Path(onnx_path), PASS_THREADS)
    start = time.perf_counter()
    for b in calibration_batches(onnx_path, samples, batch):
        session.run(None, {"input": b})
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), "tensors": 0, "state_bytes": 0}


WORKERS = {"edgeres": worker_edgeres, "ort": worker_ort, "inference": worker_inference}


def measure(tool: str, onnx_path: str, algo: str, samples: int, batch: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", tool, "--onnx", onnx_path, "--algo", algo]
    command += ["--samples", str(samples), "--batch", str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} {algo} {samples}: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    per100 = result["seconds"] * 100 / samples
    print(
        f"  {tool:9s} {algo:10s} n={samples:4d}  {result['seconds']:7.2f} s  ({per100:6.2f} s/100)  "
        f"peak RSS {result['peak_rss_mb']:7.0f} MB  tensors {result['tensors']:.0f}",
        flush=True,
    )
    return result


def ensure_model(path: Path) -> None:
    if not path.exists():
        subprocess.run([str(REPO / ".venv/bin/edgeres"), "export", "-o", str(path)], check=True, cwd=REPO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onnx", default="/tmp/calib_bench_r50.onnx")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512], help="edgeres sample counts")
    parser.add_argument("--ort-sizes", type=int, nargs="+", default=[16, 32], help="onnxruntime sample counts")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--algo", default="entropy")
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.onnx, args.algo, args.samples, args.batch)))
        return

    ensure_model(Path(args.onnx))
    print(
        f"ResNet50 {args.onnx}, batch {args.batch}, 2 onnxruntime threads, {os.cpu_count()} CPUs; "
        f"load average before: {os.getloadavg()[0]:.2f} (other processes share these cores)"
    )
    compare = max(args.ort_sizes)
    print(f"\n1. time and peak memory at {compare} samples, side by side")
    inference = measure("inference", args.onnx, "max", compare, args.batch)
    rows = []
    for algo in ALGOS:
        ours = measure("edgeres", args.onnx, algo, compare, args.batch)
        theirs = measure("ort", args.onnx, algo, compare, args.batch) if algo in ORT_METHODS else None
        rows.append((algo, ours, theirs))
    print("\n2. growth with samples (edgeres, entropy; onnxruntime, entropy)")
    growth = {n: measure("edgeres", args.onnx, "entropy", n, args.batch) for n in args.sizes}
    ort_growth = {n: measure("ort", args.onnx, "entropy", n, args.batch) for n in args.ort_sizes if n != compare}
    ort_growth[compare] = next(t for a, _, t in rows if a == "entropy")  # type: ignore[misc]

    print(
        f"\nsummary (s per 100 samples; plain FP32 inference alone: "
        f"{inference['seconds'] * 100 / compare:.2f} s/100, {inference['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"{'algo':10s} {'edgeres s/100':>14s} {'ort s/100':>10s} {'speedup':>8s} "
        f"{'edgeres MB':>11s} {'ort MB':>8s} {'mem ratio':>9s}"
    )
    for algo, ours, theirs in rows:
        mine = ours["seconds"] * 100 / compare
        if theirs is None:
            print(f"{algo:10s} {mine:14.2f} {'n/a':>10s} {'':>8s} {ours['peak_rss_mb']:11.0f}")
            continue
        other = theirs["seconds"] * 100 / compare
        print(
            f"{algo:10s} {mine:14.2f} {other:10.2f} {other / mine:7.1f}x "
            f"{ours['peak_rss_mb']:11.0f} {theirs['peak_rss_mb']:8.0f} "
            f"{theirs['peak_rss_mb'] / ours['peak_rss_mb']:8.1f}x"
        )
    print(
        "\npeak RSS vs samples, entropy: edgeres "
        + ", ".join(f"{n}: {r['peak_rss_mb']:.0f} MB" for n, r in growth.items())
        + "; onnxruntime "
        + ", ".join(f"{n}: {r['peak_rss_mb']:.0f} MB" for n, r in sorted(ort_growth.items()))
    )
    print(
        f"edgeres statistics state: {growth[args.sizes[0]]['state_bytes'] / 2**20:.1f} MiB at every size "
        f"({', '.join(str(int(r['state_bytes'])) for r in growth.values())} bytes)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
