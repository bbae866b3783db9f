"""YUV 4:2:2 front-end cost, measured side by side in one run (1080p YUYV -> normalised 224x224).

1. Host path (numpy, what the runtime and calibration use): edgeres `reference_input` vs OpenCV
   (cvtColor YUV2RGB_YUYV + resize INTER_AREA + ImageNet normalisation), same crop. Target: not slower.
2. onnxruntime CPU, 2 threads, batch 1: the fused model (raw uint8 frame in) vs the plain RGB-float
   model, FP32 and the INT8 U8S8 twin edgeres ships for onnxruntime. The front-end's overhead is
   fused - plain, in % of the plain model. Target: <= 5% of the FP32 model.

Other processes may share the CPU: everything is timed in interleaved rounds (a load change hits
all variants alike) and medians are reported. Each block starts with an untimed run, so the spinning
pool threads of the session timed before it have gone idle. (Turning spinning off instead doubled
ResNet50's FP32 latency, which would flatter the front-end's share.)

    .venv/bin/python bench/frames.py [--rounds 7] [--arch resnet50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from _models import fp32_and_u8s8

from edgeres.artifacts.ort_session import cpu_session
from edgeres.frames.contract import FRAME_INPUT, InputContract, ResizeMode
from edgeres.frames.images import default_calibration_dir, list_images, read_rgb
from edgeres.frames.normalization import IMAGENET_RGB
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422
from edgeres.frontend.graph import attach_frontend, frontend_graph
from edgeres.frontend.host import reference_input
from edgeres.model.arch import Arch

THREADS = 2
WIDTH, HEIGHT = 1920, 1080
BUDGET = 0.05


def interleaved(runs: dict[str, Callable[[], object]], rounds: int, repeats: int) -> dict[str, float]:
    """Median milliseconds of each callable, timed in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(rounds):
        for name, run in runs.items():
            run()  # untimed: lets the previous session's spinning pool threads go idle
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(values)) for name, values in samples.items()}


def opencv_path(frame: np.ndarray, contract: InputContract) -> np.ndarray:
    """The usual host preprocessing: convert the whole frame, then resize and normalise."""
    rgb = cv2.cvtColor(frame.reshape(HEIGHT, WIDTH, 2), cv2.COLOR_YUV2RGB_YUYV)
    if contract.resize is ResizeMode.CENTER_CROP:
        left = (WIDTH - HEIGHT) // 2
        rgb = rgb[:, left : left + HEIGHT]
    return IMAGENET_RGB.apply(cv2.resize(rgb, (contract.size, contract.size), interpolation=cv2.INTER_AREA))[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--arch", default="resnet50")
    args = parser.parse_args()
    photo = cv2.resize(read_rgb(list_images(default_calibration_dir())[0]), (WIDTH, HEIGHT))
    frame = rgb_to_yuv422(photo, YuvLayout.YUYV)[None]
    contracts = {mode: InputContract(YuvLayout.YUYV, WIDTH, HEIGHT, resize=mode) for mode in ResizeMode}
    print(f"YUYV {WIDTH}x{HEIGHT} -> 224x224; onnxruntime {ort.__version__} CPU, {THREADS} threads; "
          f"{args.rounds} interleaved rounds, medians")  # fmt: skip

    print("\n1. host path, one frame -> normalised float32 [1, 3, 224, 224]")
    for mode in (ResizeMode.STRETCH, ResizeMode.CENTER_CROP):
        contract = contracts[mode]
        host = interleaved(
            {
                "edgeres": lambda c=contract: reference_input(frame, c),
                "opencv": lambda c=contract: opencv_path(frame, c),
            },
            args.rounds,
            20,
        )
        print(f"   {mode.value:12s} edgeres {host['edgeres']:6.2f} ms   OpenCV {host['opencv']:6.2f} ms   "
              f"edgeres/OpenCV {host['edgeres'] / host['opencv']:.2f}x")  # fmt: skip

    print(f"\n2. onnxruntime, batch 1, {args.arch}")
    work = Path(tempfile.mkdtemp(prefix="edgeres-bench-frames-"))
    models = fp32_and_u8s8(work, Arch(args.arch))
    fp32, int8 = models.fp32, models.u8s8
    default = contracts[ResizeMode.CENTER_CROP]
    rgb_input = reference_input(frame, default)
    sessions = {
        "front-end alone (stretch)": (cpu_session(frontend_graph(contracts[ResizeMode.STRETCH]), THREADS), frame),
        "front-end alone (center-crop)": (cpu_session(frontend_graph(default), THREADS), frame),
        "fp32 plain": (cpu_session(fp32, THREADS), rgb_input),
        "fp32 fused": (cpu_session(attach_frontend(fp32, default), THREADS), frame),
        "int8 plain": (cpu_session(int8, THREADS), rgb_input),
        "int8 fused": (cpu_session(attach_frontend(int8, default), THREADS), frame),
    }
    runs: dict[str, Callable[[], object]] = {}
    for name, (run, feed) in sessions.items():
        key = FRAME_INPUT if feed.dtype == np.uint8 else run.get_inputs()[0].name
        runs[name] = lambda run=run, key=key, feed=feed: run.run(None, {key: feed})
    latency = interleaved(runs, args.rounds, 10)
    for name, value in latency.items():
        print(f"   {name:30s} {value:7.2f} ms")
    for precision in ("fp32", "int8"):
        plain, fused = latency[f"{precision} plain"], latency[f"{precision} fused"]
        alone = latency["front-end alone (center-crop)"]
        print(f"   {precision}: fused - plain = {fused - plain:5.2f} ms = {100 * (fused - plain) / plain:5.1f}% of the "
              f"plain model; front-end alone = {100 * alone / plain:5.1f}%")  # fmt: skip
    overhead = (latency["fp32 fused"] - latency["fp32 plain"]) / latency["fp32 plain"]
    verdict = "meets" if overhead <= BUDGET else "MISSES"
    print(f"   fused overhead {100 * overhead:.1f}% of FP32 {verdict} the {100 * BUDGET:.0f}% budget")


if __name__ == "__main__":
    main()
