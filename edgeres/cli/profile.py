"""`edgeres profile`: latency, throughput, slowest layers and memory of artifacts. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.cli.reporting import console, err_console, reports_errors


@reports_errors
def profile(
    artifacts: Annotated[list[Path], typer.Argument(help="ONNX models (.onnx) and TensorRT engines (.engine, .plan).")],
    batch: Annotated[str, typer.Option("--batch", help="Batch sizes to sweep, comma-separated.")] = "1",
    iterations: Annotated[int | None, typer.Option("--iterations", help="Timed calls per batch (default 50).")] = None,
    duration: Annotated[float | None, typer.Option("--duration", help="Seconds per batch, not a count.")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed calls before each measurement.")] = 5,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for onnxruntime; 0: its default.")] = 0,
    in_flight: Annotated[int, typer.Option("--in-flight", help="Concurrent requests for pipelined throughput.")] = 2,
    no_layers: Annotated[bool, typer.Option("--no-layers", help="Skip the per-layer profiling pass.")] = False,
    cv_warn: Annotated[float, typer.Option("--cv-warn", help="Warn when latency std/mean exceeds this.")] = 0.10,
    from_frames: Annotated[
        Path | None, typer.Option("--from-frames", help="Raw YUV 4:2:2 clip: also time frame -> top-k end to end.")
    ] = None,
    frame_size: Annotated[str, typer.Option("--frame-size", help="WIDTHxHEIGHT of the clip's frames.")] = "1920x1080",
    frame_format: Annotated[str, typer.Option("--frame-format", help="yuyv|uyvy|i422|nv16.")] = "yuyv",
    colorspace: Annotated[str, typer.Option("--colorspace", help="bt601|bt709.")] = "bt601",
    color_range: Annotated[str, typer.Option("--range", help="limited|full.")] = "limited",
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
      edgeres profile r50.onnx --from-frames clip.yuv --frame-size 1920x1080 --frame-format uyvy
    """
    from edgeres.choices import parse_choice
    from edgeres.frames.yuv import ColorRange, ColorSpace, parse_layout, parse_size
    from edgeres.profile.dispatch import profile_artifacts
    from edgeres.profile.machine import machine_info
    from edgeres.profile.options import FrameClip, ProfileOptions, RunLength, parse_batches
    from edgeres.profile.report import all_tables, machine_line, report_json, validate_report, write_report
    from edgeres.profile.stats import PERCENTILE_DEFINITION

    clip = None
    if from_frames is not None:
        width, height = parse_size(frame_size)
        clip = FrameClip(
            from_frames, width, height, parse_layout(frame_format),
            parse_choice(ColorSpace, colorspace, "colorspace"), parse_choice(ColorRange, color_range, "range"),
        )  # fmt: skip
    run_length = RunLength(iterations if iterations is not None or duration is not None else 50, duration)
    options = ProfileOptions(
        batches=parse_batches(batch), run_length=run_length, warmup=warmup, threads=threads, in_flight=in_flight,
        layers=not no_layers, cv_warn=cv_warn, clip=clip,
    )  # fmt: skip
    machine = machine_info()
    with err_console.status(f"profiling {len(artifacts)} artifact(s), {run_length.describe()} per batch size"):
        profiles = profile_artifacts(artifacts, options)
    console.print(f"[dim]{machine_line(machine, options)}[/]")
    for table in all_tables(profiles):
        console.print(table)
    console.print(f"[dim]percentiles: {PERCENTILE_DEFINITION}; CV = std / mean[/]")
    for profile_result in profiles:
        for warning in profile_result.warnings:
            err_console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    if json_path is not None:
        document = report_json(profiles, options, machine)
        validate_report(document)
        write_report(json_path, document)
        console.print(f"[green]wrote[/] {json_path}")
    if plot is not None:
        from edgeres.profile.plots import write_plots

        for written in write_plots(profiles, plot):
            console.print(f"[green]wrote[/] {written}")

