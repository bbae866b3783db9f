"""Classify a camera's raw YUYV frames with a model from `edgeres build --input yuyv:WxH`.

The model takes the camera's frame as it arrives (uint8, 2 bytes per pixel) and does the colour
conversion, resize and normalisation itself, so this loop only reads bytes and calls the runtime:
TensorRT for an engine when TensorRT is installed, ONNX Runtime for the ONNX otherwise.

    python examples/camera_app.py out/r50_yuyv --yuv clip.yuv        # frames from a raw file
    python examples/camera_app.py out/build --camera /dev/video0     # frames from a V4L2 camera
    python examples/camera_app.py model_int8_u8s8.onnx --yuv clip.yuv --labels parts.txt --frames 100

The frame size and YUV layout come from the model's input contract (its sidecar).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np

from edgeres.artifacts.kinds import is_engine_path
from edgeres.artifacts.onnx import load_onnx
from edgeres.cli.reporting import DEBUG_ENV, debugging, expected_failure, sigterm_interrupts
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.yuv import YuvLayout, open_yuv
from edgeres.profile.stats import LatencyStats, frames_per_second
from edgeres.runtime.dispatch import open_runner
from edgeres.runtime.inputs import artifact_input
from edgeres.runtime.labels import class_names_for
from edgeres.runtime.topk import top_k


def pick_model(path: Path) -> Path:
    """A file as given; in a build directory the engine if TensorRT is here, else the ONNX for CPU."""
    if path.is_file():
        return path
    engines = sorted(path.glob("*.engine")) + sorted(path.glob("*.plan"))
    if engines and importlib.util.find_spec("tensorrt") is not None:
        return engines[0]
    # On a CPU onnxruntime runs the U8S8 INT8 twin fastest, then FP32 (FP16 kernels are GPU ones).
    for pattern in ("*_u8s8.onnx", "*_fp32.onnx", "*.onnx"):
        found = sorted(path.glob(pattern))
        if found:
            return found[0]
    raise UserInputError(f"{path}: no model file (.engine, .plan or .onnx)")


def check_onnx(model: Path) -> None:
    """An ONNX model file (not empty, not other bytes); engines are checked by TensorRT itself."""
    if is_engine_path(model):
        return
    if model.stat().st_size == 0:
        raise UserInputError(f"{model}: not an ONNX model (empty file)")
    try:
        proto = load_onnx(model, weights=False)
    except UserInputError as exc:
        raise UserInputError(f"{model}: not an ONNX model ({exc.__cause__.__class__.__name__})") from None
    if not proto.graph.node:
        raise UserInputError(f"{model}: not an ONNX model (no graph)")


def positive_int(text: str) -> int:
    """argparse type of a count: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def model_contract(model: Path) -> InputContract:
    spec = artifact_input(model)
    if spec is None or spec.contract is None:
        raise UserInputError(f"{model}: takes no raw camera frame; build it with --input yuyv:WIDTHxHEIGHT")
    return spec.contract


def frames_from_file(path: Path, contract: InputContract) -> Iterator[np.ndarray]:
    clip = open_yuv(path, contract.layout, contract.width, contract.height)
    for index in range(clip.count):
        yield clip.frame(index)


def frames_from_camera(device: str, contract: InputContract) -> Iterator[np.ndarray]:
    """Raw frames from V4L2 through OpenCV with its RGB conversion switched off."""
    import cv2

    fourcc = {YuvLayout.YUYV: "YUYV", YuvLayout.UYVY: "UYVY"}.get(contract.layout)
    if fourcc is None:
        raise UserInputError(f"V4L2 capture here reads packed YUYV/UYVY; the model takes {contract.layout.value}")
    if not Path(device).exists():
        raise UserInputError(f"{device}: no such camera device")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # its [ WARN ] lines would precede ours
    capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
    if not capture.isOpened():
        raise UserInputError(f"{device}: cannot open the camera")
    capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, contract.width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, contract.height)
    capture.set(cv2.CAP_PROP_CONVERT_RGB, 0)  # hand over the driver's bytes, not BGR
    rows, cols = contract.frame_shape
    try:
        while True:
            ok, raw = capture.read()
            if not ok:
                return
            if raw.size != rows * cols:
                raise UserInputError(f"{device}: a {raw.size}-byte frame, the model takes {rows}x{cols} bytes")
            yield raw.reshape(rows, cols)
    finally:
        capture.release()


def run(
    model_path: Path, frames: Iterator[np.ndarray], labels: Path | None, limit: int | None, top: int,
    allow_unverified: bool = False,
) -> int:  # fmt: skip
    contract = model_contract(model_path)
    latencies_ms: list[float] = []
    winners: Counter[str] = Counter()
    with open_runner(model_path, allow_unverified) as runner:
        warm = runner.infer(np.zeros((1, *contract.frame_shape), np.uint8))  # first call allocates; not timed
        names = class_names_for(warm.shape[1], labels)
        print(
            f"{model_path.name} on {runner.name}: {contract.layout.value} {contract.width}x{contract.height}, "
            f"{len(names)} classes"
        )
        started = time.perf_counter()
        for index, frame in enumerate(frames):
            if limit is not None and index >= limit:
                break
            tick = time.perf_counter()
            logits = runner.infer(frame[None])
            latencies_ms.append((time.perf_counter() - tick) * 1e3)
            best = top_k(logits, top)
            labels_text = ", ".join(
                f"{names[int(i)]} {p:.0%}" for i, p in zip(best.indices[0], best.probabilities[0], strict=True)
            )
            winners[names[int(best.indices[0, 0])]] += 1
            print(f"frame {index:4d}  {latencies_ms[-1]:7.2f} ms  {labels_text}")
        elapsed = time.perf_counter() - started
    if not latencies_ms:
        raise UserInputError("no frames were read")
    stats = LatencyStats.from_ms(latencies_ms)
    print(
        f"\n{stats.count} frames, {frames_per_second(stats.count, elapsed):.1f} frames/s including reading; "
        f"inference mean {stats.mean_ms:.2f} ms, median {stats.median_ms:.2f} ms, p95 {stats.p95_ms:.2f} ms"
    )
    print("most frequent top-1: " + ", ".join(f"{name} ({count})" for name, count in winners.most_common(3)))
    return 0


class OneLineParser(argparse.ArgumentParser):
    """A bad argument is one line `error: ...` and exit code 2, as every other refusal."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a build directory, or an .onnx/.engine file with its sidecar")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--yuv", type=Path, help="raw file of frames back to back, in the model's layout and size")
    source.add_argument("--camera", help="V4L2 device, e.g. /dev/video0")
    parser.add_argument("--labels", type=Path, help="class names, one per line (default: ImageNet-1k)")
    parser.add_argument("--frames", type=positive_int, help="stop after this many frames (at least 1)")
    parser.add_argument("--top", type=positive_int, default=5, help="classes printed per frame (default 5)")
    parser.add_argument(
        "--allow-unverified", action="store_true",
        help="run a TensorRT engine never verified against its ONNX, or that failed (refused otherwise)",
    )  # fmt: skip
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a bad argument already told in one line (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with sigterm_interrupts():
            model = pick_model(args.model)
            check_onnx(model)
            contract = model_contract(model)
            frames = frames_from_file(args.yuv, contract) if args.yuv else frames_from_camera(args.camera, contract)
            return run(model, frames, args.labels, args.frames, args.top, args.allow_unverified)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one error boundary: one line, the traceback only when debugging
        if debugging():
            traceback.print_exception(exc, file=sys.stderr)
        line = expected_failure(exc)
        if line is None:
            message = " ".join(str(exc).split())
            print(f"error: internal error (a bug): {type(exc).__name__}: {message}; rerun with {DEBUG_ENV}=1 "
                  "for the traceback", file=sys.stderr)  # fmt: skip
            return 1
        print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
