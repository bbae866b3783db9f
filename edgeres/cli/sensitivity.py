"""`edgeres sensitivity`: which layers INT8 hurts, for a finished build or a model. Parsing and printing only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeres.artifacts.completion import SUMMARY_NAME, build_status
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.build.options import DEFAULT_CALIB_ALGO, DEFAULT_CALIB_SEED, DEFAULT_CALIB_SIZE, BuildOptions
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.build import parse_layers
from edgeres.cli.options import (
    ARCH_DEFAULT,
    FRAME_FORMAT_HELP,
    ArchOption,
    ClassesOption,
    ColorspaceOption,
    InputOption,
    RangeOption,
    ResizeOption,
    WeightsOption,
    parse_arch,
    parse_frame_format,
)
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.errors import UserInputError
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
    calib: Annotated[
        Path | None, typer.Option("--calib", help="Images, raw .yuv frames or a path,label CSV. Default: calibration/.")
    ] = None,
    calib_format: Annotated[
        str | None, typer.Option("--calib-format", help=f"--calib holds raw .yuv frames: {FRAME_FORMAT_HELP}.")
    ] = None,
    calib_algo: Annotated[
        str, typer.Option("--calib-algo", help=f"{choice_values(CalibAlgo)}.")
    ] = DEFAULT_CALIB_ALGO.value,
    calib_size: Annotated[int, typer.Option("--calib-size", help="Calibration samples.", min=1)] = DEFAULT_CALIB_SIZE,
    calib_seed: Annotated[
        int, typer.Option("--calib-seed", help="Seed of the shuffle and the held-out split.")
    ] = DEFAULT_CALIB_SEED,
    keep_float: Annotated[str, typer.Option("--keep-float", help="Layers already kept out of INT8.")] = "",
    bias_correction: Annotated[
        bool, typer.Option("--bias-correction/--no-bias-correction", help="As for build.")
    ] = True,
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
    from edgeres.build.orchestrator import build as run_build

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
        raw = None
        if calib_format is not None:
            size = (contract.width, contract.height) if contract is not None else None
            raw = parse_frame_format(calib_format, "--calib-format", size)
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
