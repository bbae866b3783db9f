"""Classify raw camera frames inside your own program: the model, a runner, a loop over the frames.

`edgeres camera` is the command that does this, with the checks and the summary; this is its loop in a few
lines, to copy into an application. The model (from `edgeres build --input yuyv:WxH`) takes the camera's
frame as it arrives (uint8, 2 bytes per pixel) and converts, resizes and normalises it itself, so the loop
only reads bytes and calls the runtime: TensorRT for an engine, ONNX Runtime for an ONNX model.

    python examples/camera_app.py out/r50_yuyv/model_int8.engine clip.yuv
    gst-launch-1.0 -q v4l2src ! video/x-raw,format=YUY2,width=1920,height=1080 ! fdsink \\
        | python examples/camera_app.py out/r50_yuyv/model_fp32.onnx -
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeres.artifacts.class_names import ClassNames, class_names_for
from edgeres.artifacts.kinds import is_engine_path
from edgeres.export.record import read_model_spec
from edgeres.frames.stream import open_frames
from edgeres.runtime.base import Runner
from edgeres.runtime.inputs import frame_contract
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.topk import top_k
from edgeres.runtime.trt_runner import TensorRTRunner


def classify(model: Path, source: Path) -> None:
    contract = frame_contract(model)  # the layout and size the model takes, from its sidecar
    runner: Runner = TensorRTRunner(model) if is_engine_path(model) else OnnxRuntimeRunner(model)
    names: ClassNames | None = None
    spec = read_model_spec(model)  # what the model is, with the class names recorded when it was made
    recorded = spec.class_names if spec is not None else None
    with runner, open_frames(source, contract.layout, contract.width, contract.height) as frames:
        for index, frame in enumerate(frames):  # a file, or `-` / a FIFO frame by frame as they arrive
            logits = runner.infer(frame[None])  # uint8 [1, rows, cols], the camera's bytes unchanged
            names = names or class_names_for(logits.shape[1], recorded=recorded)  # else ImageNet's for 1000
            best = top_k(logits, 1)
            print(f"frame {index}: {names[int(best.indices[0, 0])]} {best.probabilities[0, 0]:.0%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an .onnx or .engine file with its sidecar, built with --input")
    parser.add_argument("frames", type=Path, help="raw frames in the model's layout and size: a file, - or a FIFO")
    args = parser.parse_args()
    classify(args.model, args.frames)
