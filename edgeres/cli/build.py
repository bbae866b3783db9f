"""`edgeres build`: export, calibrate, quantize, check fidelity, build the engine. Parsing and bars only.

The options come in groups (edgeres.cli.args); `build_arguments` renders a BuildOptions back through the same
groups, so a printed build command (finetune's) is spelled as `edgeres build` parses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeres.artifacts.precision import Precision
from edgeres.cli.args import calibration as calibration_args
from edgeres.cli.args import gate as gate_args
from edgeres.cli.args.calibration import CALIBRATION, Calibration, CalibrationArgs
from edgeres.cli.args.engine import ENGINE, EngineArgs
from edgeres.cli.args.frame_input import FRAME_INPUT, FrameInputArgs
from edgeres.cli.args.gate import GATE, GateArgs
from edgeres.cli.args.group import option, switch, takes_groups
from edgeres.cli.args.normalization import NORMALIZATION, NormalizationArgs
from edgeres.cli.options import (
    ARCH_DEFAULT,
    ArchOption,
    ClassesOption,
    WeightsOption,
    names_the_class_count_option,
    parse_arch,
)
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.errors import UserInputError
from edgeres.flow.options import DEFAULT_QAT_LR, BuildOptions
from edgeres.quantize.cache import StaleCacheError
from edgeres.quantize.histogram import CalibAlgo
from edgeres.samples.sources import FrameFormatNeeded

if TYPE_CHECKING:
    from edgeres.flow.orchestrator import BuildResult

FIDELITY = gate_args.PANEL
DEFAULTS = BuildOptions()

EvalOption = Annotated[
    Path | None,
    typer.Option(
        "--eval",
        help="A labelled path,label CSV evaluated whole (every row once) for fidelity and accuracy; "
        "--calib then calibrates on all of itself.",
        rich_help_panel=FIDELITY,
    ),
]
AutoFallbackOption = Annotated[
    bool,
    typer.Option(
        "--auto-fallback",
        help="Keep the fewest extra layers in float that meet --min-sqnr/-agreement/-accuracy.",
        rich_help_panel=FIDELITY,
    ),
]
MaxFallbackOption = Annotated[
    int,
    typer.Option(
        "--max-fallback", help="Most layers --auto-fallback may keep in float.", min=1, rich_help_panel=FIDELITY
    ),
]
QatEpochsOption = Annotated[
    int,
    typer.Option(
        "--qat-epochs",
        help="Then train the INT8 network toward the FP32 logits on the calibration samples this many epochs "
        "(quantization-aware, no labels; ranges and weight scales fixed). 0: none.",
        min=0,
        rich_help_panel=calibration_args.PANEL,
    ),
]
QatLrOption = Annotated[
    float,
    typer.Option("--qat-lr", help="Learning rate of --qat-epochs (Adam).", rich_help_panel=calibration_args.PANEL),
]
SensitivityOption = Annotated[
    bool,
    typer.Option(
        "--sensitivity",
        help="Measure which layers INT8 hurts: sensitivity.json and .png.",
        rich_help_panel=FIDELITY,
    ),
]


@reports_errors
@takes_groups
def build(
    *,
    int8: Annotated[bool, typer.Option("--int8", help="INT8 Q/DQ ONNX for TensorRT + U8S8 twin (default).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 ONNX (weights and compute FP16, float32 I/O).")] = False,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output directory.")] = Path("out/build"),
    onnx_path: Annotated[
        Path | None, typer.Option("--onnx", help="Start from this FP32 ONNX (plain or fused) instead of exporting.")
    ] = None,
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = ARCH_DEFAULT,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Skip the short CPU profile after the build.")
    ] = False,
    normalization: NormalizationArgs,
    contract: FrameInputArgs,
    calibration: CalibrationArgs,
    eval_csv: EvalOption = None,
    gate: GateArgs,
    auto_fallback: AutoFallbackOption = False,
    max_fallback: MaxFallbackOption = DEFAULTS.max_fallback,
    sensitivity: SensitivityOption = False,
    qat_epochs: QatEpochsOption = 0,
    qat_lr: QatLrOption = DEFAULT_QAT_LR,
    engine: EngineArgs,
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
      edgeres build --int8 --onnx caffe.onnx --channel-order bgr --mean 0.406,0.456,0.485 --std 0.0039,0.0039,0.0039\n
      edgeres build --int8 --onnx model.onnx --min-sqnr 25 --auto-fallback --max-fallback 4 --sensitivity\n
      edgeres build --fp16 -o out/r50_fp16
    """
    if int8 and fp16:
        raise UserInputError("--int8 and --fp16 exclude each other: run build twice")
    check_output_dir(output)
    options = calibration.build_options(
        contract, precision=Precision.FP16 if fp16 else Precision.INT8, onnx=onnx_path, arch=parse_arch(arch),
        weights=weights, num_classes=num_classes, normalization=normalization, eval_csv=eval_csv, gate=gate,
        auto_fallback=auto_fallback,
        max_fallback=max_fallback, sensitivity=sensitivity, engine=engine, qat_epochs=qat_epochs, qat_lr=qat_lr,
        profile_iterations=0 if no_profile else DEFAULTS.profile_iterations,
    )  # fmt: skip
    build_and_report(options, output)


def build_arguments(options: BuildOptions, output: Path) -> list[str]:
    """The `edgeres build` arguments that parse back to `options`; the architecture is always named.

    ValueError for a value no option gives (a held-out minimum, no engine, another profile length).
    """
    if (
        options.min_holdout_samples != DEFAULTS.min_holdout_samples
        or not options.build_engine
        or (options.profile_iterations not in (0, DEFAULTS.profile_iterations))
    ):
        raise ValueError("held-out minimum, engine switch and profile length other than the defaults have no option")
    return [
        f"--{options.precision.value}",
        *option("--onnx", options.onnx), "--arch", options.arch.value, *option("--weights", options.weights),
        *option("--num-classes", options.num_classes),
        *NORMALIZATION.render(options.normalization),
        *CALIBRATION.render(Calibration.of(options)),
        *option("--eval", options.eval_csv),
        *FRAME_INPUT.render(options.contract),
        *GATE.render(options.gate),
        *switch("--auto-fallback", options.auto_fallback),
        *option("--max-fallback", options.max_fallback, DEFAULTS.max_fallback),
        *switch("--sensitivity", options.sensitivity),
        *option("--qat-epochs", options.qat_epochs, 0),
        *option("--qat-lr", options.qat_lr, DEFAULT_QAT_LR),
        *ENGINE.render(options.engine),
        *switch("--no-profile", options.profile_iterations == 0),
        "-o", str(output),
    ]  # fmt: skip


def reproducing_command(options: BuildOptions, output: Path) -> list[str] | None:
    """The `edgeres build` command line that makes this build again; None for options no flag gives."""
    try:
        return ["edgeres", "build", *build_arguments(options, output)]
    except ValueError:
        return None


def build_and_report(options: BuildOptions, output: Path) -> None:
    """Run the library's build with progress bars, then print what it wrote and measured: also when a model
    misses the gate (the report is where the numbers are needed), followed by what to try next."""
    from edgeres.flow.orchestrator import GateNotMet
    from edgeres.flow.orchestrator import build as run_build

    try:
        with StageBars() as bars, names_the_class_count_option():
            result = run_build(options, output, bars, reproducing_command(options, output))
    except StaleCacheError as exc:
        raise StaleCacheError(f"{exc} (--recalibrate)") from None
    except FrameFormatNeeded as exc:
        raise FrameFormatNeeded(f"{exc}: --calib-format") from None
    except GateNotMet as exc:
        print_report(exc.result)
        say(next_steps(options, exc.result))
        raise
    print_report(result)


def print_report(result: BuildResult) -> None:
    from edgeres.cli.int8_report import analysis_lines

    for name, path in result.artifacts.items():
        wrote(f"{name}: {path}")
    if result.report is not None:
        wrote(f"report: {result.report}")
    for note in result.notes:
        say(note)
    for line in analysis_lines(result.analysis):
        say(line)
    print_fidelity(result)


def next_steps(options: BuildOptions, result: BuildResult) -> str:
    """What usually moves a model that misses its gate, given what this build already tried."""
    if options.precision is not Precision.INT8:
        return "to try next: an INT8 build with --auto-fallback, or an FP32 engine from model_fp32.onnx"
    search = result.analysis.fallback
    tries = []
    if search is None:
        tries.append("--auto-fallback (keeps the layers INT8 hurts most in float)")
    elif not search.met:
        tries.append(f"a larger --max-fallback (this build allowed {search.max_fallback})")
    others = ", ".join(algo.value for algo in CalibAlgo if algo is not options.calib_algo)
    tries.append(f"another --calib-algo ({others}; this build used {options.calib_algo.value})")
    if not options.sensitivity:
        tries.append("--sensitivity (which layers lose the most)")
    return "to try next: " + "; ".join(tries)


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
