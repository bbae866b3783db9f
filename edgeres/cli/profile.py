"""`edgeres profile`: latency, throughput, slowest layers and memory of artifacts. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.completion import build_status
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.options import (
    COLORSPACE_HELP,
    FRAME_FORMAT_HELP,
    RANGE_HELP,
    parse_colorspace,
    parse_frame_format,
    parse_range,
)
from edgeres.cli.paths import check_output_dir, check_output_file
from edgeres.cli.reporting import console, err_console, reports_errors, say, warn, wrote
from edgeres.errors import UserInputError
from edgeres.frames.stream import DEFAULT_WAIT_S
from edgeres.profile.options import (
    DEFAULT_CLIP_FORMAT,
    DEFAULT_IN_FLIGHT,
    DEFAULT_WARMUP,
    FrameClip,
    ProfileOptions,
    parse_batches,
)
from edgeres.profile.stats import DEFAULT_CV_WARN, PERCENTILE_DEFINITION
from edgeres.runtime.cpu_choice import recorded_cpu_runtime
from edgeres.runtime.kinds import RuntimeKind
from edgeres.timing import DEFAULT_ITERATIONS, RunLength

PROFILE_DEFAULTS = ProfileOptions()  # for the defaults that have no constant of their own
BATCHES_DEFAULT = ",".join(map(str, PROFILE_DEFAULTS.batches))


# A build's models each runtime profiles. onnxruntime runs the U8S8 twin (the TensorRT Q/DQ model says nothing of
# its speed on the GPU it is made for); OpenVINO runs the Q/DQ model itself on its INT8 kernels.
PROFILED_ROLES = {
    RuntimeKind.AUTO: (ArtifactRole.FP32, ArtifactRole.INT8_ONNXRUNTIME, ArtifactRole.FP16, ArtifactRole.ENGINE),
    RuntimeKind.ONNXRUNTIME: (ArtifactRole.FP32, ArtifactRole.INT8_ONNXRUNTIME, ArtifactRole.FP16),
    RuntimeKind.OPENVINO: (ArtifactRole.FP32, ArtifactRole.INT8_TENSORRT, ArtifactRole.FP16),
    RuntimeKind.TENSORRT: (ArtifactRole.ENGINE,),
}
RUNTIME_HELP = (
    f"{choice_values(RuntimeKind)}: what runs the models. auto: onnxruntime for an ONNX, TensorRT for an engine; "
    "openvino: ONNX models on OpenVINO's CPU device (a build folder's Q/DQ model on its INT8 kernels)."
)


def models_to_profile(path: Path, runtime: RuntimeKind = RuntimeKind.AUTO) -> list[tuple[Path, RuntimeKind]]:
    """A model as given; a finished build folder as the models `runtime` runs of it (PROFILED_ROLES): with auto,
    its FP32 model, its CPU model on the CPU runtime the build chose (edgeres.runtime.cpu_choice) and its
    engine. Each with the runtime that profiles it."""
    if not Path(path).is_dir():
        return [(path, runtime)]
    status = build_status(path)
    if status is not None:
        raise UserInputError(status)
    where = Path(path) / SUMMARY_NAME
    summary = BuildSummary.read(where)
    built = summary.artifacts
    roles = list(PROFILED_ROLES[runtime])
    runtimes = dict.fromkeys(roles, runtime)
    choice = recorded_cpu_runtime(summary, str(where)) if runtime is RuntimeKind.AUTO else None
    if choice is not None and choice.runtime is RuntimeKind.OPENVINO:  # the Q/DQ model on OpenVINO, not the twin
        roles[roles.index(ArtifactRole.INT8_ONNXRUNTIME)] = ArtifactRole.INT8_TENSORRT
        runtimes[ArtifactRole.INT8_TENSORRT] = RuntimeKind.OPENVINO
    recorded = [(built[role], runtimes[role]) for role in roles if role in built]
    if not recorded:
        raise UserInputError(f"{path}: this build has no model that {runtime.value} runs")
    return [(model if model.is_file() else Path(path) / model.name, kind) for model, kind in recorded]


@reports_errors
def profile(
    artifacts: Annotated[
        list[Path],
        typer.Argument(
            help="ONNX models (.onnx), TensorRT engines (.engine, .plan), or build folders (their FP32 model, "
            "the model that runs on this CPU, and the engine when there is one)."
        ),
    ],
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes to sweep, comma-separated.")] = BATCHES_DEFAULT,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help=f"Timed calls per batch (default {DEFAULT_ITERATIONS}).")
    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Seconds per batch, not a count.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls before each measurement.")] = DEFAULT_WARMUP,
    runtime: Annotated[str, typer.Option("--runtime", help=RUNTIME_HELP)] = RuntimeKind.AUTO.value,
    threads: Annotated[
        int, typer.Option("--threads", help="CPU threads for onnxruntime or OpenVINO; 0: its default.")
    ] = PROFILE_DEFAULTS.threads,
    in_flight: Annotated[
        int, typer.Option("--in-flight", help="Concurrent requests for pipelined throughput.")
    ] = DEFAULT_IN_FLIGHT,
    no_layers: Annotated[bool, typer.Option("--no-layers", help="Skip the per-layer profiling pass.")] = False,
    cv_warn: Annotated[
        float, typer.Option("--cv-warn", help="Warn when latency std/mean exceeds this.")
    ] = DEFAULT_CV_WARN,
    from_frames: Annotated[
        Path | None,
        typer.Option(
            "--from-frames",
            help="Raw YUV 4:2:2 frames of --format: also time frame -> top-k end to end. A file, or - (standard "
            "input) or a FIFO fed by a capture chain (gst-launch-1.0 ... ! fdsink, ffmpeg ... -f rawvideo -), read "
            "as they arrive; with several models, each takes the next frames.",
        ),
    ] = None,
    frame_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"The frames of --from-frames: {FRAME_FORMAT_HELP}. Default: the model's recorded camera input, "
            f"else {DEFAULT_CLIP_FORMAT}. Refused when a camera model takes another.",
        ),
    ] = None,
    colorspace: Annotated[
        str | None, typer.Option("--colorspace", help=f"{COLORSPACE_HELP} Default: the model's, else bt601.")
    ] = None,
    color_range: Annotated[
        str | None, typer.Option("--range", help=f"{RANGE_HELP} Default: the model's, else limited.")
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds a pipe or FIFO of --from-frames may send nothing before giving up.")
    ] = DEFAULT_WAIT_S,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report here (versioned schema).")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write PNG plots into this folder.")] = None,
) -> None:
    """Latency, throughput, slowest layers and memory of one or more artifacts, side by side.

    Latency is synchronous (one call at a time, as a camera loop runs); throughput is also shown
    pipelined (several calls in flight). With several artifacts, the first is the baseline of a
    comparison table; with two or more ONNX models its median speed-up comes from an extra pass whose
    rounds alternate between them, so drift in CPU speed hits all alike (TensorRT engines not included).

    Examples:\n
      edgeres profile out/model.onnx\n
      edgeres profile fp32.onnx int8.onnx --batch 1,8 --plot out/ --json out/profile.json\n
      edgeres profile r50.engine --batch 1,8,32 --duration 10\n
      edgeres profile out/build/model_int8_qdq.onnx --runtime openvino --json out/openvino.json\n
      edgeres profile r50.onnx --from-frames clip.yuv --format uyvy:1920x1080\n
      gst-launch-1.0 -q v4l2src ! video/x-raw,format=YUY2 ! fdsink | edgeres profile r50_yuyv.onnx --from-frames -
    """
    from edgeres.profile.dispatch import profile_artifacts
    from edgeres.profile.machine import machine_info
    from edgeres.profile.report import (
        all_tables,
        machine_line,
        report_json,
        require_validator,
        validate_report,
        write_report,
    )

    chosen_runtime = parse_choice(RuntimeKind, runtime, "--runtime")
    if json_path is not None:
        check_output_file(json_path)
        require_validator()
    if plot is not None:
        check_output_dir(plot)
    chosen = [entry for path in artifacts for entry in models_to_profile(path, chosen_runtime)]
    models = [model for model, _ in chosen]
    clip = None
    if from_frames is not None:
        clip = FrameClip.for_models(
            from_frames,
            models,
            parse_frame_format(frame_format, "--format") if frame_format is not None else None,
            parse_colorspace(colorspace) if colorspace is not None else None,
            parse_range(color_range) if color_range is not None else None,
            wait,
        )
    run_length = RunLength(DEFAULT_ITERATIONS if iterations is None and duration is None else iterations, duration)
    options = ProfileOptions(
        batches=parse_batches(batch), run_length=run_length, warmup=warmup, threads=threads, in_flight=in_flight,
        layers=not no_layers, cv_warn=cv_warn, clip=clip, runtime=chosen_runtime,
    )  # fmt: skip
    machine = machine_info()
    with err_console.status(Text(f"profiling {len(artifacts)} artifact(s), {run_length.describe()} per batch size")):
        profiles = profile_artifacts(models, options, [kind for _, kind in chosen])
    say(machine_line(machine, options), style="dim")
    for table in all_tables(profiles):
        console.print(table)
    say(f"percentiles: {PERCENTILE_DEFINITION}; CV = std / mean", style="dim")
    for profile_result in profiles:
        for warning in profile_result.warnings:
            warn(warning)
    if json_path is not None:
        document = report_json(profiles, options, machine)
        validate_report(document)
        write_report(json_path, document)
        wrote(json_path)
    if plot is not None:
        from edgeres.profile.plots import write_plots

        for written in write_plots(profiles, plot):
            wrote(written)
