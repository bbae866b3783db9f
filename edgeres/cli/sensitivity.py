"""`edgeres sensitivity`: which layers INT8 hurts, for a finished build or a model. Parsing and printing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.completion import build_status
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.cli.args.calibration import Calibration, CalibrationArgs
from edgeres.cli.args.frame_input import FrameInputArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.args.normalization import NormalizationArgs
from edgeres.cli.options import ARCH_DEFAULT, ArchOption, ClassesOption, WeightsOption, parse_arch
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions


def _recorded_build(folder: Path) -> BuildSummary:
    """The summary of a finished, unaltered build folder (refused otherwise)."""
    status = build_status(folder)
    if status is not None:
        raise UserInputError(status)
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    if summary.precision is not Precision.INT8 or not summary.recipe:
        raise UserInputError(f"{folder}: not an INT8 build that records its options; use --onnx MODEL instead")
    return summary


def _source_of(folder: Path, summary: BuildSummary) -> Path:
    located = summary.located(ArtifactRole.FP32, folder)
    if located is None:
        raise UserInputError(f"{folder}: its FP32 model {summary.artifacts.get(ArtifactRole.FP32, '')} is not there")
    return located


def check_choices_apply(calibration: Calibration, folder: bool, model_options: bool) -> None:
    """Refuse options this command would ignore: those that shape only written models (it writes none),
    and with a build folder (whose calibration is redone as recorded) every model and calibration option."""
    defaults = Calibration.of(BuildOptions())
    ignored = [
        flag for flag, given, default in (
            ("--high-precision", calibration.high_precision, defaults.high_precision),
            ("--trt-table-version", calibration.trt_table_version, defaults.trt_table_version),
        ) if given != default
    ]  # fmt: skip
    if ignored:
        raise UserInputError(f"{', '.join(ignored)}: shape the written INT8 models; sensitivity writes none")
    if folder and (model_options or calibration != defaults):
        raise UserInputError(
            "a build folder's calibration is redone as recorded: give the model, input and calibration options "
            "with --onnx MODEL instead"
        )


@reports_errors
@takes_groups
def sensitivity(
    artifact_dir: Annotated[
        Path | None, typer.Argument(help="A finished `edgeres build --int8` folder: redo its calibration.")
    ] = None,
    *,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Output folder. Default: ARTIFACT_DIR/sensitivity, else out/sensitivity."),
    ] = None,
    onnx_path: Annotated[Path | None, typer.Option("--onnx", help="An FP32 ONNX instead of a build folder.")] = None,
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = ARCH_DEFAULT,
    normalization: NormalizationArgs,
    contract: FrameInputArgs,
    calibration: CalibrationArgs,
) -> None:
    """For every quantized layer, the held-out logits with only that layer in float and with only that
    layer INT8; the error split into weight rounding and activation quantization. Writes
    sensitivity.json and sensitivity.png, and the calibration cache it made.

    Examples:\n
      edgeres sensitivity out/build\n
      edgeres sensitivity --onnx model.onnx --calib photos/ -o out/sens
    """
    from edgeres.cli.int8_report import analysis_lines
    from edgeres.flow.sensitivity import sensitivity as analyse

    if artifact_dir is not None and onnx_path is not None:
        raise UserInputError("give a build folder or --onnx, not both")
    model_options = (contract, weights, num_classes, normalization) != (None, None, None, None)
    check_choices_apply(calibration, artifact_dir is not None, model_options)
    if artifact_dir is not None:
        summary = _recorded_build(artifact_dir)
        output = output if output is not None else artifact_dir / "sensitivity"
        check_output_dir(output)
        options = BuildOptions.from_recipe(summary.recipe, _source_of(artifact_dir, summary))
    else:
        output = output if output is not None else Path("out/sensitivity")
        check_output_dir(output)
        options = calibration.build_options(
            contract, onnx=onnx_path, arch=parse_arch(arch), weights=weights, num_classes=num_classes,
            normalization=normalization,
        )
    with StageBars() as bars:
        run = analyse(options, output, bars)
    for line in (run.calibration.describe(), *analysis_lines(run.analysis), run.held_out):
        say(line)
    for role, path in run.analysis.artifacts.items():
        wrote(f"{role}: {path}")
