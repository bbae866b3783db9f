"""`edgeres sensitivity`: which layers INT8 hurts, for a finished build or a model. Parsing and printing only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeres.artifacts.completion import SUMMARY_NAME, build_status
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.choices import parse_choice
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
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.errors import UserInputError
from edgeres.flow.options import DEFAULT_CALIB_ALGO, DEFAULT_CALIB_SEED, DEFAULT_CALIB_SIZE, BuildOptions
from edgeres.frames.contract import DEFAULT_RESIZE, parse_input
from edgeres.frames.yuv import DEFAULT_COLORSPACE, DEFAULT_RANGE
from edgeres.quantize.histogram import CalibAlgo

ANALYSIS_ONLY: dict[str, Any] = {"sensitivity": True, "profile_iterations": 0, "build_engine": False}


def _recorded_build(folder: Path) -> dict[str, Any]:
    """The summary of a finished, unaltered build folder (refused otherwise)."""
    status = build_status(folder)
    if status is not None:
        raise UserInputError(status)
    summary = json.loads((folder / SUMMARY_NAME).read_text())
    if summary.get("precision") != "int8" or "options" not in summary:
        raise UserInputError(f"{folder}: not an INT8 build that records its options; use --onnx MODEL instead")
    return dict(summary)


def _source_of(folder: Path, summary: dict[str, Any]) -> Path:
    recorded = Path(str(summary.get("artifacts", {}).get(ArtifactRole.FP32.value, "")))
    for path in (recorded, folder / recorded.name):
        if path.name and path.is_file():
            return path
    raise UserInputError(f"{folder}: its FP32 model {recorded} is not there")


@reports_errors
def sensitivity(
    artifact_dir: Annotated[
        Path | None, typer.Argument(help="A finished `edgeres build --int8` folder: redo its calibration.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Output folder. Default: ARTIFACT_DIR/sensitivity, else out/sensitivity."),
    ] = None,
    onnx_path: Annotated[Path | None, typer.Option("--onnx", help="An FP32 ONNX instead of a build folder.")] = None,
    frame_input: InputOption = None,
    colorspace: ColorspaceOption = DEFAULT_COLORSPACE.value,
    color_range: RangeOption = DEFAULT_RANGE.value,
    resize: ResizeOption = DEFAULT_RESIZE.value,
    calib: CalibOption = None,
    calib_format: CalibFormatOption = None,
    calib_algo: CalibAlgoOption = DEFAULT_CALIB_ALGO.value,
    calib_size: CalibSizeOption = DEFAULT_CALIB_SIZE,
    calib_seed: CalibSeedOption = DEFAULT_CALIB_SEED,
    keep_float: KeepFloatOption = "",
    bias_correction: BiasCorrectionOption = True,
    weights: WeightsOption = None,
    num_classes: ClassesOption = None,
    arch: ArchOption = ARCH_DEFAULT,
) -> None:
    """For every quantized layer, the held-out logits with only that layer in float and with only that
    layer INT8; the error split into weight rounding and activation quantization. Writes
    sensitivity.json and sensitivity.png (and the build's models, made from the same calibration).

    Examples:\n
      edgeres sensitivity out/build\n
      edgeres sensitivity --onnx model.onnx --calib photos/ -o out/sens
    """
    from edgeres.flow.orchestrator import build as run_build

    if artifact_dir is not None and onnx_path is not None:
        raise UserInputError("give a build folder or --onnx, not both")
    if artifact_dir is not None:
        summary = _recorded_build(artifact_dir)
        output = output if output is not None else artifact_dir / "sensitivity"
        check_output_dir(output)
        options = BuildOptions.from_recipe(summary["options"], _source_of(artifact_dir, summary), **ANALYSIS_ONLY)
    else:
        output = output if output is not None else Path("out/sensitivity")
        check_output_dir(output)
        contract = parse_input(frame_input, colorspace, color_range, resize) if frame_input else None
        raw = raw_calibration_format(calib_format, contract)
        options = BuildOptions(
            onnx=onnx_path,
            arch=parse_arch(arch),
            weights=weights,
            num_classes=num_classes,
            calib=calib,
            calib_algo=parse_choice(CalibAlgo, calib_algo, "--calib-algo"),
            calib_size=calib_size,
            seed=calib_seed,
            keep_float=parse_layers(keep_float),
            bias_correction=bias_correction,
            raw=raw,
            contract=contract,
            **ANALYSIS_ONLY,
        )
    with StageBars() as bars:
        result = run_build(options, output, bars)
    for note in result.notes:
        say(note)
    for role in (ArtifactRole.SENSITIVITY, ArtifactRole.SENSITIVITY_PLOT):
        wrote(f"{role}: {result.artifacts[role]}")
