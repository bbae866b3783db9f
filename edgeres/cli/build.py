"""`edgeres build`: export, calibrate, quantize, check fidelity, build the engine. Parsing and bars only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeres.artifacts.kinds import is_engine_path
from edgeres.artifacts.precision import Precision
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.options import (
    ARCH_DEFAULT,
    ArchOption,
    BiasCorrectionOption,
    CalibAlgoOption,
    CalibFormatOption,
    CalibOption,
    CalibSeedOption,
    CalibSizeOption,
    ClassesOption,
    ColorspaceOption,
    InputOption,
    KeepFloatOption,
    RangeOption,
    ResizeOption,
    WeightsOption,
    parse_arch,
    parse_layers,
    raw_calibration_format,
)
from edgeres.cli.paths import check_output_dir, check_output_file
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.engine.builder import MAX_OPTIMIZATION_LEVEL, BatchProfile, EngineOptions
from edgeres.engine.target import HardwareCompatibility
from edgeres.errors import UserInputError
from edgeres.flow.options import (
    DEFAULT_CALIB_ALGO,
    DEFAULT_CALIB_BATCH,
    DEFAULT_CALIB_SEED,
    DEFAULT_CALIB_SIZE,
    DEFAULT_MAX_FALLBACK,
    DEFAULT_PROFILE_ITERATIONS,
    BuildOptions,
)
from edgeres.frames.contract import DEFAULT_RESIZE, parse_input
from edgeres.frames.yuv import DEFAULT_COLORSPACE, DEFAULT_RANGE
from edgeres.quantize.cache import DEFAULT_TRT_VERSION, StaleCacheError
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.high_precision import HighPrecision
from edgeres.quantize.histogram import CalibAlgo, CalibOptions

if TYPE_CHECKING:
    from edgeres.flow.orchestrator import BuildResult

ENGINE_DEFAULTS = EngineOptions()


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
    frame_input: InputOption = None,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
    resize: ResizeOption = DEFAULT_RESIZE.value,
    calib: CalibOption = None,
    eval_csv: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="A labelled path,label CSV evaluated whole (every row once) for fidelity and accuracy; "
            "--calib then calibrates on all of itself.",
        ),
    ] = None,
    calib_format: CalibFormatOption = None,
    calib_algo: CalibAlgoOption = DEFAULT_CALIB_ALGO.value,
    calib_size: CalibSizeOption = DEFAULT_CALIB_SIZE,
    calib_batch: Annotated[
        int, typer.Option("--calib-batch", help="Samples per calibration batch.", min=1)
    ] = DEFAULT_CALIB_BATCH,
    calib_seed: CalibSeedOption = DEFAULT_CALIB_SEED,
    percentile: Annotated[
        float, typer.Option("--percentile", help="With --calib-algo percentile: the percentile kept (0..100].")
    ] = CalibOptions().percentile,
    recalibrate: Annotated[
        bool, typer.Option("--recalibrate", help="Replace a calibration cache made from other inputs.")
    ] = False,
    trt_table_version: Annotated[
        str, typer.Option("--trt-table-version", help="TensorRT version in the calibration.table header.")
    ] = DEFAULT_TRT_VERSION,
    min_sqnr: Annotated[
        float | None, typer.Option("--min-sqnr", help="Fail unless logits SQNR (dB) on held-out samples reaches this.")
    ] = None,
    min_agreement: Annotated[
        float | None, typer.Option("--min-agreement", help="Fail unless top-1 agreement (0..1) reaches this.")
    ] = None,
    min_accuracy: Annotated[
        float | None,
        typer.Option(
            "--min-accuracy", help="Fail unless top-1 accuracy (0..1) on labelled (CSV) held-out samples reaches this."
        ),
    ] = None,
    keep_float: KeepFloatOption = "",
    auto_fallback: Annotated[
        bool,
        typer.Option(
            "--auto-fallback", help="Keep the fewest extra layers in float that meet --min-sqnr/-agreement/-accuracy."
        ),
    ] = False,
    max_fallback: Annotated[
        int, typer.Option("--max-fallback", help="Most layers --auto-fallback may keep in float.", min=1)
    ] = DEFAULT_MAX_FALLBACK,
    sensitivity: Annotated[
        bool, typer.Option("--sensitivity", help="Measure which layers INT8 hurts: sensitivity.json and .png.")
    ] = False,
    bias_correction: BiasCorrectionOption = True,
    high_precision: Annotated[
        str,
        typer.Option(
            "--high-precision",
            help=f"{choice_values(HighPrecision)}: what the TensorRT INT8 model runs outside INT8 (fp16 needs "
            "TensorRT 10+).",
        ),
    ] = BuildOptions.high_precision.value,
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = ARCH_DEFAULT,
    batch: Annotated[str, typer.Option("--batch", help="Engine batch profile N or MIN:OPT:MAX, e.g. 1:8:32.")] = str(
        ENGINE_DEFAULTS.batch
    ),
    workspace: Annotated[int | None, typer.Option("--workspace", help="Engine builder workspace limit, MiB.")] = None,
    opt_level: Annotated[
        int | None,
        typer.Option("--opt-level", help=f"TensorRT builder optimisation level 0..{MAX_OPTIMIZATION_LEVEL}."),
    ] = None,
    timing_cache: Annotated[
        Path | None, typer.Option("--timing-cache", help="TensorRT timing cache file, loaded and saved.")
    ] = None,
    dla: Annotated[int | None, typer.Option("--dla", help="DLA core (Jetson), GPU fallback for the rest.")] = None,
    version_compatible: Annotated[
        bool, typer.Option("--version-compatible", help="Engine runs on later TensorRT of the same major.")
    ] = False,
    hardware_compat: Annotated[
        str, typer.Option("--hardware-compat", help=f"{choice_values(HardwareCompatibility)}.")
    ] = ENGINE_DEFAULTS.hardware_compatibility.value,
    engine_only: Annotated[
        bool, typer.Option("--engine-only", help="Only build the TensorRT engine from --onnx (needs TensorRT + GPU).")
    ] = False,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the short CPU profile after the build.")
    ] = False,
) -> None:
    """Export (or take --onnx), calibrate, write the INT8 Q/DQ or FP16 ONNX, check fidelity on held-out
    samples, and build the TensorRT engine when TensorRT and a GPU are present. With --input, calibration
    photographs are encoded as that camera sends frames.

    Examples:\n
      edgeres build --int8\n
      edgeres build --int8 --calib photos/ --calib-algo percentile --calib-size 500 -o out/r50\n
      edgeres build --int8 --input yuyv:1920x1080 --colorspace bt709 -o out/r50_yuyv\n
      edgeres build --int8 --input uyvy:1280x720 --calib frames/ --calib-format uyvy\n
      edgeres build --int8 --onnx r50_yuyv.onnx --calib frames/ --calib-format yuyv:1920x1080\n
      edgeres build --int8 --weights product.pth --num-classes 51 --calib labels.csv --min-agreement 0.99\n
      edgeres build --int8 --weights ft/model.pth --num-classes 51 --calib ft/train.csv --eval ft/val.csv\n
      edgeres build --int8 --onnx model.onnx --keep-float conv1,fc --min-sqnr 25\n
      edgeres build --int8 --onnx model.onnx --min-sqnr 25 --auto-fallback --max-fallback 4 --sensitivity\n
      edgeres build --engine-only --onnx out/build/model_int8_qdq.onnx --batch 1:8:32 --timing-cache t.cache\n
      edgeres build --fp16 -o out/r50_fp16
    """
    from edgeres.flow.orchestrator import build as run_build
    from edgeres.flow.orchestrator import build_engine_only

    if int8 and fp16:
        raise UserInputError("--int8 and --fp16 exclude each other: run build twice")
    if engine_only and is_engine_path(output):
        check_output_file(output)
    else:
        check_output_dir(output)
    engine_options = EngineOptions(
        batch=BatchProfile.parse(batch), workspace_mib=workspace, optimization_level=opt_level,
        timing_cache=timing_cache, dla_core=dla, version_compatible=version_compatible,
        hardware_compatibility=parse_choice(HardwareCompatibility, hardware_compat, "--hardware-compat"),
    )  # fmt: skip
    if engine_only:
        if onnx_path is None:
            raise UserInputError("--engine-only needs --onnx MODEL.onnx (e.g. out/build/model_int8_qdq.onnx)")
        engine = build_engine_only(onnx_path, output, engine_options)
        wrote(f"engine: {engine}")
        return
    algo = parse_choice(CalibAlgo, calib_algo, "--calib-algo")
    contract = parse_input(frame_input, colorspace, color_range, resize) if frame_input else None
    raw = raw_calibration_format(calib_format, contract)
    options = BuildOptions(
        precision=Precision.FP16 if fp16 else Precision.INT8,
        onnx=onnx_path,
        arch=parse_arch(arch),
        weights=weights,
        num_classes=num_classes,
        calib=calib,
        eval_csv=eval_csv,
        calib_algo=algo,
        calib_size=calib_size,
        batch_size=calib_batch,
        seed=calib_seed,
        percentile=percentile,
        keep_float=parse_layers(keep_float),
        sensitivity=sensitivity,
        auto_fallback=auto_fallback,
        max_fallback=max_fallback,
        bias_correction=bias_correction,
        high_precision=parse_choice(HighPrecision, high_precision, "--high-precision"),
        gate=FidelityGate(min_sqnr_db=min_sqnr, min_agreement=min_agreement, min_accuracy=min_accuracy),
        raw=raw,
        contract=contract,
        recalibrate=recalibrate,
        trt_table_version=trt_table_version,
        engine=engine_options,
        profile_iterations=0 if no_profile else DEFAULT_PROFILE_ITERATIONS,
    )
    try:
        with StageBars() as bars:
            result = run_build(options, output, bars)
    except StaleCacheError as exc:
        raise StaleCacheError(f"{exc} (--recalibrate)") from None
    for name, path in result.artifacts.items():
        wrote(f"{name}: {path}")
    for note in result.notes:
        say(note)
    print_fidelity(result)


def print_fidelity(result: BuildResult) -> None:
    """The fidelity line of each model, the profile lines and the engine note."""
    for name, report in result.fidelity.items():
        say(
            f"{name}: logits SQNR {report.sqnr_db:.1f} dB, top-1 agreement {report.top1_agreement:.0%}, "
            f"top-5 overlap {report.top5_overlap:.0%}, min cosine {report.cosine_min:.4f} "
            f"on {report.samples} held-out samples ({report.note})"
        )
        if report.accuracy is not None:
            accuracy = report.accuracy
            say(f"{name}: top-1 accuracy {accuracy.candidate_top1:.1%} (FP32 {accuracy.reference_top1:.1%})")
    for line in result.profile:
        say(f"profile {line}")
    say(result.engine_note)
