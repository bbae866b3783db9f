"""`edgeres camera`: classify raw camera frames from a file, a pipe or a V4L2 camera. Parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.choices import choice_values, parse_choice
from edgeres.cli.frames import WaitOption
from edgeres.cli.options import FRAME_FORMAT_HELP, parse_frame_format
from edgeres.cli.reporting import reports_errors, say
from edgeres.errors import UserInputError
from edgeres.frames.stream import DEFAULT_WAIT_S
from edgeres.runtime.kinds import RuntimeKind

DEFAULT_TOP = 5


@reports_errors
def camera(
    model: Annotated[
        Path,
        typer.Argument(
            help="A build folder (its engine where TensorRT is installed, else the model and runtime its build "
            "recorded for this CPU), or an .onnx, .engine or .plan file with its sidecar. The model must take raw "
            "frames (built with --input)."
        ),
    ],
    yuv: Annotated[
        Path | None,
        typer.Option(
            "--yuv",
            help="Raw frames back to back in the model's layout and size: a file, or - (standard input) or a FIFO "
            "fed by a capture chain (gst-launch-1.0 ... ! fdsink, ffmpeg ... -f rawvideo -), read as they arrive.",
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--camera", help="V4L2 camera device, e.g. /dev/video0 (YUYV and UYVY models).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels", help="Class names, one per line (default: those recorded with the model, else ImageNet-1k's)."
        ),
    ] = None,
    frames: Annotated[int | None, typer.Option("--frames", min=1, help="Stop after this many frames.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Classes printed per frame.")] = DEFAULT_TOP,
    allow_unverified: Annotated[
        bool,
        typer.Option(
            "--allow-unverified",
            help="Run a TensorRT engine never verified against its ONNX, or that failed (refused otherwise).",
        ),
    ] = False,
    frame_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"What the frames are, {FRAME_FORMAT_HELP}, e.g. yuy2:1920x1080 as a GStreamer caps string says: "
            "refused unless the model takes exactly these. Default: whatever the model takes.",
        ),
    ] = None,
    wait: WaitOption = DEFAULT_WAIT_S,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help=f"{choice_values(RuntimeKind)}: what runs the model. auto: TensorRT for an engine; for an ONNX, "
            "OpenVINO where the build recorded it as this CPU's runtime and it is installed, else onnxruntime. "
            "Named: that runtime (a build folder's model for it); refused if it cannot run the file.",
        ),
    ] = RuntimeKind.AUTO.value,
) -> None:
    """Classify raw camera frames, one line per frame as it arrives, then a summary.

    The model takes the frame as the camera sends it and converts it itself; its recorded input contract says
    the layout and size to read. TensorRT runs an engine, ONNX Runtime or OpenVINO (--runtime) an ONNX model; the
    first line names the file and the runner.

    Examples:\n
      edgeres camera out/r50_yuyv --yuv clip.yuv\n
      edgeres camera out/r50_yuyv --camera /dev/video0 --frames 100\n
      edgeres camera out/r50_yuyv/model_int8_qdq.onnx --runtime openvino --yuv clip.yuv\n
      gst-launch-1.0 -q v4l2src ! video/x-raw,format=YUY2,width=1920,height=1080 ! fdsink | edgeres camera r50/ --yuv -
    """
    from edgeres.camera.capture import camera_frames, frames_name
    from edgeres.camera.classify import CameraLoop
    from edgeres.camera.model import check_onnx, choose_model
    from edgeres.export.record import read_model_spec
    from edgeres.runtime.dispatch import open_runner
    from edgeres.runtime.inputs import frame_contract

    if (yuv is None) == (device is None):
        raise UserInputError("give the frames with --yuv FILE|- or --camera DEVICE, one of them")
    given = parse_frame_format(frame_format, "--format") if frame_format is not None else None
    picked = choose_model(model, parse_choice(RuntimeKind, runtime, "--runtime"))
    chosen = picked.path
    check_onnx(chosen)
    runner = open_runner(chosen, allow_unverified, picked.runtime)  # a runtime that cannot run the file: refused
    contract = frame_contract(chosen)
    source = frames_name(yuv, device)
    if given is not None:
        contract.refuse_other_frames(given, source, str(chosen))
    with camera_frames(contract, yuv, device, wait) as clip, runner:
        spec = read_model_spec(chosen)  # class names recorded with the model (e.g. by finetune -> build)
        loop = CameraLoop(runner, contract, labels, top, spec.class_names if spec is not None else None)
        say(
            f"{chosen.name} on {runner.name}: {contract.layout.value} {contract.width}x{contract.height}, "
            f"{len(loop.names)} classes"
        )
        for result in loop.classify(clip, frames):
            say(result.describe())
    say("")
    for line in loop.summary(source).describe():
        say(line)
