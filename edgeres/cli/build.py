"""`edgeres build`: export, calibrate, quantize, check fidelity, build the engine. Parsing and bars only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeres.cli.options import ArchOption, ClassesOption, WeightsOption, parse_arch
from edgeres.cli.reporting import console, err_console, reports_errors


class _RichBuildProgress:
    """Draws edgeres.build's progress callbacks as rich bars (one bar per stage)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=err_console)
        self.task: Any = None

    def begin(self, task: str, total: int | None) -> None:
        self.task = self.progress.add_task(task, total=total)

    def advance(self, amount: int) -> None:
        self.progress.advance(self.task, amount)

    def end(self) -> None:
        task = self.progress.tasks[-1]
        self.progress.update(self.task, total=task.completed or 1, completed=task.completed or 1)


@reports_errors
def build(
    int8: Annotated[bool, typer.Option("--int8", help="INT8 Q/DQ ONNX for TensorRT + U8S8 twin (default).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 ONNX (weights and compute FP16, float32 I/O).")] = False,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Output directory (with --engine-only: a folder or an .engine file).")
    ] = Path("out/build"),
    onnx_path: Annotated[
        Path | None, typer.Option("--onnx", help="Start from this FP32 ONNX (plain or fused) instead of exporting.")
    ] = None,
    frame_input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="Camera-frame model: FORMAT:WIDTHxHEIGHT, FORMAT yuyv|uyvy|i422|nv16 (e.g. yuyv:1920x1080). The FP32 "
            "model gets the YUV 4:2:2 front-end fused in; calibration frames are encoded as this camera does.",
        ),
    ] = None,
    colorspace: Annotated[str, typer.Option("--colorspace", help="With --input: bt601 (default)|bt709.")] = "bt601",
    color_range: Annotated[str, typer.Option("--range", help="With --input: limited (default)|full.")] = "limited",
    resize: Annotated[
        str, typer.Option("--resize", help="With --input: center-crop (default)|stretch|letterbox.")
    ] = "center-crop",
    calib: Annotated[
        Path | None,
        typer.Option(
            "--calib",
            help="Folder of images (recursive) or raw .yuv frames, or a path,label CSV. Default: calibration/.",
        ),
    ] = None,
    calib_format: Annotated[
        str | None,
        typer.Option("--calib-format", help="--calib holds raw .yuv frames of this layout: yuyv|uyvy|i422|nv16."),
    ] = None,
    calib_frame_size: Annotated[
        str | None,
        typer.Option("--calib-frame-size", help="WIDTHxHEIGHT of the raw .yuv frames (default: the --input size)."),
    ] = None,
    calib_algo: Annotated[str, typer.Option("--calib-algo", help="mse|entropy|percentile|max.")] = "mse",
    calib_size: Annotated[int, typer.Option("--calib-size", help="Calibration samples.", min=1)] = 64,
    calib_batch: Annotated[int, typer.Option("--calib-batch", help="Samples per calibration batch.", min=1)] = 8,
    calib_seed: Annotated[int, typer.Option("--calib-seed", help="Seed of the shuffle and the held-out split.")] = 0,
    percentile: Annotated[
        float, typer.Option("--percentile", help="With --calib-algo percentile: the percentile kept (0..100].")
    ] = 99.99,
    recalibrate: Annotated[
        bool, typer.Option("--recalibrate", help="Replace a calibration cache made from other inputs.")
    ] = False,
    trt_table_version: Annotated[
        str, typer.Option("--trt-table-version", help="TensorRT version in the calibration.table header.")
    ] = "8.6.2",
    min_sqnr: Annotated[
        float | None, typer.Option("--min-sqnr", help="Fail unless logits SQNR (dB) on held-out samples reaches this.")
    ] = None,
    min_agreement: Annotated[
        float | None, typer.Option("--min-agreement", help="Fail unless top-1 agreement (0..1) reaches this.")
    ] = None,
    keep_float: Annotated[
        str, typer.Option("--keep-float", help="Comma-separated layers kept out of INT8, e.g. conv1,fc.")
    ] = "",
    bias_correction: Annotated[
        bool,
        typer.Option(
            "--bias-correction/--no-bias-correction",
            help="INT8: fold each layer's weight-rounding mean shift, measured on the calibration data, into its bias.",
        ),
    ] = True,
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = "resnet50",
    batch: Annotated[str, typer.Option("--batch", help="Engine batch profile N or MIN:OPT:MAX, e.g. 1:8:32.")] = "1",
    workspace: Annotated[int | None, typer.Option("--workspace", help="Engine builder workspace limit, MiB.")] = None,
    opt_level: Annotated[
        int | None, typer.Option("--opt-level", help="TensorRT builder optimisation level 0..5.")
    ] = None,
    timing_cache: Annotated[
        Path | None, typer.Option("--timing-cache", help="TensorRT timing cache file, loaded and saved.")
    ] = None,
    dla: Annotated[int | None, typer.Option("--dla", help="DLA core (Jetson), GPU fallback for the rest.")] = None,
    version_compatible: Annotated[
        bool, typer.Option("--version-compatible", help="Engine runs on later TensorRT of the same major.")
    ] = False,
    hardware_compat: Annotated[
        str, typer.Option("--hardware-compat", help="none|ampere-plus|same-compute-capability.")
    ] = "none",
    engine_only: Annotated[
        bool, typer.Option("--engine-only", help="Only build the TensorRT engine from --onnx (needs TensorRT + GPU).")
    ] = False,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the short CPU profile after the build.")
    ] = False,
) -> None:
    """Export (or take --onnx), calibrate, write the INT8 Q/DQ or FP16 ONNX, check fidelity on held-out
    samples, and build the TensorRT engine when TensorRT and a GPU are present.

    Examples:\n
      edgeres build --int8\n
      edgeres build --int8 --calib photos/ --calib-algo percentile --calib-size 500 -o out/r50\n
      edgeres build --int8 --input yuyv:1920x1080 --colorspace bt709 -o out/r50_yuyv\n
      edgeres build --int8 --input uyvy:1280x720 --calib frames/ --calib-format uyvy\n
      edgeres build --int8 --weights product.pth --num-classes 51 --calib labels.csv --min-agreement 0.99\n
      edgeres build --int8 --onnx model.onnx --keep-float conv1,fc --min-sqnr 25\n
      edgeres build --engine-only --onnx out/build/model_int8_qdq.onnx --batch 1:8:32 --timing-cache t.cache\n
      edgeres build --fp16 -o out/r50_fp16
    """
    from edgeres.artifacts.precision import Precision
    from edgeres.build.options import DEFAULT_PROFILE_ITERATIONS, BuildOptions
    from edgeres.build.orchestrator import build as run_build
    from edgeres.build.orchestrator import build_engine_only
    from edgeres.engine.builder import BatchProfile
    from edgeres.engine.builder import BuildOptions as EngineOptions
    from edgeres.engine.target import HardwareCompatibility
    from edgeres.errors import UserInputError
    from edgeres.frames.contract import parse_input
    from edgeres.frames.yuv import parse_layout, parse_size
    from edgeres.quantize.calibration_data import RawFrames
    from edgeres.quantize.fidelity import FidelityGate
    from edgeres.quantize.histogram import CalibAlgo

    if int8 and fp16:
        raise UserInputError("--int8 and --fp16 exclude each other: run build twice")
    engine_options = EngineOptions(
        batch=BatchProfile.parse(batch), workspace_mib=workspace, optimization_level=opt_level,
        timing_cache=timing_cache, dla_core=dla, version_compatible=version_compatible,
        hardware_compatibility=HardwareCompatibility.parse(hardware_compat),
    )  # fmt: skip
    if engine_only:
        if onnx_path is None:
            raise UserInputError("--engine-only needs --onnx MODEL.onnx (e.g. out/build/model_int8_qdq.onnx)")
        engine = build_engine_only(onnx_path, output, engine_options)
        console.print(f"[green]wrote[/] engine: {engine}")
        return
    try:
        algo = CalibAlgo(calib_algo.lower())
    except ValueError:
        raise UserInputError(f"unknown --calib-algo '{calib_algo}': choose entropy, percentile, max or mse") from None
    contract = parse_input(frame_input, colorspace, color_range, resize) if frame_input else None
    raw = None
    if calib_format is not None:
        if calib_frame_size is None and contract is None:
            raise UserInputError("--calib-format needs --calib-frame-size WIDTHxHEIGHT (or --input to take its size)")
        if calib_frame_size is not None:
            width, height = parse_size(calib_frame_size)
        else:
            assert contract is not None
            width, height = contract.width, contract.height
        raw = RawFrames(parse_layout(calib_format), width, height)
    elif calib_frame_size is not None:
        raise UserInputError("--calib-frame-size needs --calib-format (the layout of the raw .yuv frames)")
    options = BuildOptions(
        precision=Precision.FP16 if fp16 else Precision.INT8,
        onnx=onnx_path,
        arch=parse_arch(arch),
        weights=weights,
        num_classes=num_classes,
        calib=calib,
        calib_algo=algo,
        calib_size=calib_size,
        batch_size=calib_batch,
        seed=calib_seed,
        percentile=percentile,
        keep_float=tuple(name.strip() for name in keep_float.split(",") if name.strip()),
        bias_correction=bias_correction,
        gate=FidelityGate(min_sqnr_db=min_sqnr, min_agreement=min_agreement),
        raw=raw,
        contract=contract,
        recalibrate=recalibrate,
        trt_table_version=trt_table_version,
        engine=engine_options,
        profile_iterations=0 if no_profile else DEFAULT_PROFILE_ITERATIONS,
    )
    bars = _RichBuildProgress()
    with bars.progress:
        result = run_build(options, output, bars)
    for name, path in result.artifacts.items():
        console.print(f"[green]wrote[/] {name}: {path}")
    for note in result.notes:
        console.print(note, highlight=False)
    for name, report in result.fidelity.items():
        console.print(
            f"{name}: logits SQNR {report.sqnr_db:.1f} dB, top-1 agreement {report.top1_agreement:.0%}, "
            f"top-5 overlap {report.top5_overlap:.0%}, min cosine {report.cosine_min:.4f} "
            f"on {report.samples} held-out samples ({report.note})"
        )
    for line in result.profile:
        console.print(f"profile {line}", highlight=False)
    console.print(result.engine_note)

