"""The `edgeres` command: a thin typer layer over the library. Only this module prints and exits."""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from edgeres.errors import EdgeresError

app = typer.Typer(
    help="Put ResNet50 on NVIDIA edge hardware: PyTorch -> ONNX -> INT8/FP16 -> TensorRT engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn library errors into one red line on stderr and exit code 2; show warnings loudly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
            err_console.print(f"[bold yellow]warning:[/] {message}")

        previous = warnings.showwarning
        warnings.showwarning = show_warning
        try:
            return func(*args, **kwargs)
        except EdgeresError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]: no partial artifact was left behind")
            raise typer.Exit(130) from None
        finally:
            warnings.showwarning = previous

    return wrapper  # type: ignore[return-value]


ArchOption = Annotated[str, typer.Option("--arch", help="resnet18|resnet34|resnet50|resnet101|resnet152.")]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Checkpoint (.pth state_dict or .safetensors) with torchvision parameter names. "
        "Default: torchvision's local cache if present, else random weights (with a warning).",
    ),
]
ClassesOption = Annotated[
    int | None, typer.Option("--num-classes", help="Classes of the final layer (default 1000).", min=1)
]


def parse_arch(value: str) -> Any:
    from edgeres.choices import parse_choice
    from edgeres.model import Arch

    return parse_choice(Arch, value, "--arch")


@app.command()
@reports_errors
def export(
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.")] = Path("out/model.onnx"),
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = "resnet50",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset, 17..20.")] = 17,
    frame_input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="Take raw camera frames instead of RGB floats: FORMAT:WIDTHxHEIGHT with FORMAT yuyv|uyvy|i422|nv16, "
            "e.g. yuyv:1920x1080. Unpacking, colour conversion, resize and normalisation run inside the model.",
        ),
    ] = None,
    colorspace: Annotated[
        str, typer.Option("--colorspace", help="With --input: bt601|bt709. Default bt601 (UVC/V4L2 camera default).")
    ] = "bt601",
    color_range: Annotated[
        str, typer.Option("--range", help="With --input: limited|full. Default limited (Y 16-235), as cameras send.")
    ] = "limited",
    resize: Annotated[
        str,
        typer.Option("--resize", help="With --input: center-crop (default)|stretch|letterbox, to the 224x224 input."),
    ] = "center-crop",
) -> None:
    """Export the model to ONNX and check it against PyTorch in onnxruntime.

    Examples:\n
      edgeres export -o r50.onnx\n
      edgeres export --weights resnet50-11ad3fa6.pth -o r50.onnx\n
      edgeres export --weights product.pth --num-classes 51 -o product.onnx\n
      edgeres export --input yuyv:1920x1080 --colorspace bt709 -o r50_yuyv.onnx
    """
    from edgeres.frontend import parse_input
    from edgeres.pipeline import export_default

    contract = parse_input(frame_input, colorspace, color_range, resize) if frame_input else None
    result = export_default(output, parse_arch(arch), weights, num_classes, opset, contract)
    if contract is not None:
        c, f = contract, result.sidecar["results"]["frontend_parity"]
        console.print(
            f"input: raw {c.layout.value} {c.width}x{c.height} uint8 {list(c.frame_shape)}, {c.colorspace.value} "
            f"{c.color_range.value} range, {c.resize.value}; fused vs host path on {f['samples']} frames: "
            f"max abs {f['max_abs_error']:.2e}, top-1 agreement {f['top1_agreement']:.0%}"
        )
    p = result.parity
    console.print(f"[green]wrote[/] {result.path} ({result.path.stat().st_size / 1e6:.1f} MB, opset {opset})")
    console.print(
        f"parity vs PyTorch on {p.samples} inputs: max abs {p.max_abs_error:.2e}, "
        f"max rel {p.max_rel_error:.2e}, min cosine {p.min_cosine:.7f}, top-1 agreement {p.top1_agreement:.0%}"
    )


@app.command()
@reports_errors
def info(artifact: Annotated[Path, typer.Argument(help="An artifact made by edgeres (.onnx, .engine).")]) -> None:
    """Show how an artifact was made (its sidecar) and, for ONNX, its inputs, outputs and opset.

    Example:\n
      edgeres info out/model.onnx
    """
    from edgeres.inspect import describe_artifact

    description = describe_artifact(artifact)
    console.print_json(json.dumps(description, default=str))


@app.command()
@reports_errors
def summary(
    arch: ArchOption = "resnet50",
    num_classes: ClassesOption = None,
    size: Annotated[int, typer.Option("--size", help="Input height and width.", min=32)] = 224,
) -> None:
    """Print the network stage by stage: output shape, parameters, multiply-accumulates.

    Example:\n
      edgeres summary --arch resnet50
    """
    from edgeres.model import build_model
    from edgeres.summary import summarize

    model = build_model(parse_arch(arch), num_classes or 1000)
    rows = summarize(model, size)
    table = Table(title=f"{model.arch.value}, {size}x{size} input, batch 1")
    for column in ("stage", "output (C, H, W)", "parameters", "MACs"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for row in rows:
        shape = " x ".join(map(str, row.output_shape))
        table.add_row(row.name, shape, f"{row.parameters:,}", f"{row.macs / 1e6:,.1f} M")
    total_params, total_macs = sum(r.parameters for r in rows), sum(r.macs for r in rows)
    table.add_section()
    table.add_row("total", "", f"{total_params:,} ({total_params / 1e6:.2f} M)", f"{total_macs / 1e9:.2f} G")
    console.print(table)


@app.command()
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
    comparison table.

    Examples:\n
      edgeres profile out/model.onnx\n
      edgeres profile fp32.onnx int8.onnx --batch 1,8 --plot out/ --json out/profile.json\n
      edgeres profile r50.engine --batch 1,8,32 --duration 10\n
      edgeres profile r50.onnx --from-frames clip.yuv --frame-size 1920x1080 --frame-format uyvy
    """
    from edgeres.frames import ColorRange, ColorSpace, parse_choice, parse_layout, parse_size
    from edgeres.profile import FrameClip, ProfileOptions, RunLength, machine_info, parse_batches, profile_artifacts
    from edgeres.report import all_tables, machine_line, report_json, validate_report, write_report
    from edgeres.stats import PERCENTILE_DEFINITION

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
        from edgeres.report_plots import write_plots

        for written in write_plots(profiles, plot):
            console.print(f"[green]wrote[/] {written}")


from edgeres.cli_deploy import deploy_app  # noqa: E402  (it uses reports_errors and console from above)

app.add_typer(deploy_app, name="deploy")
from edgeres.cli_frames import frames_app  # noqa: E402

app.add_typer(frames_app, name="frames")


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


@app.command()
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
    from edgeres.build import DEFAULT_PROFILE_ITERATIONS, BuildOptions, Precision, build_engine_only
    from edgeres.build import build as run_build
    from edgeres.calibdata import RawFrames
    from edgeres.calibrate import CalibAlgo
    from edgeres.engine import BatchProfile, HardwareCompatibility
    from edgeres.engine import BuildOptions as EngineOptions
    from edgeres.errors import UserInputError
    from edgeres.fidelity import FidelityGate
    from edgeres.frames import parse_layout, parse_size
    from edgeres.frontend import parse_input

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


def main() -> None:
    """Console entry point."""
    app(prog_name="edgeres")


if __name__ == "__main__":
    main()
