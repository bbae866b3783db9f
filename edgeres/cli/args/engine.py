"""The TensorRT-engine group: batch profile, builder limits, timing cache, DLA and compatibility, as EngineOptions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.choices import choice_values, parse_choice
from edgeres.cli.args.group import OptionGroup, option, switch
from edgeres.engine.options import MAX_OPTIMIZATION_LEVEL, BatchProfile, EngineOptions
from edgeres.engine.target import HardwareCompatibility

PANEL = "TensorRT engine"
DEFAULTS = EngineOptions()

BatchOption = Annotated[
    str, typer.Option("--batch", help="Engine batch profile N or MIN:OPT:MAX, e.g. 1:8:32.", rich_help_panel=PANEL)
]
WorkspaceOption = Annotated[
    int | None, typer.Option("--workspace", help="Engine builder workspace limit, MiB.", rich_help_panel=PANEL)
]
OptLevelOption = Annotated[
    int | None,
    typer.Option(
        "--opt-level", help=f"TensorRT builder optimisation level 0..{MAX_OPTIMIZATION_LEVEL}.", rich_help_panel=PANEL
    ),
]
TimingCacheOption = Annotated[
    Path | None,
    typer.Option("--timing-cache", help="TensorRT timing cache file, loaded and saved.", rich_help_panel=PANEL),
]
DlaOption = Annotated[
    int | None, typer.Option("--dla", help="DLA core (Jetson), GPU fallback for the rest.", rich_help_panel=PANEL)
]
VersionCompatibleOption = Annotated[
    bool,
    typer.Option(
        "--version-compatible", help="Engine runs on later TensorRT of the same major.", rich_help_panel=PANEL
    ),
]
HardwareCompatOption = Annotated[
    str,
    typer.Option("--hardware-compat", help=f"{choice_values(HardwareCompatibility)}.", rich_help_panel=PANEL),
]


def parse_engine(
    batch: BatchOption = str(DEFAULTS.batch),
    workspace: WorkspaceOption = None,
    opt_level: OptLevelOption = None,
    timing_cache: TimingCacheOption = None,
    dla: DlaOption = None,
    version_compatible: VersionCompatibleOption = False,
    hardware_compat: HardwareCompatOption = DEFAULTS.hardware_compatibility.value,
) -> EngineOptions:
    return EngineOptions(
        batch=BatchProfile.parse(batch), workspace_mib=workspace, optimization_level=opt_level,
        timing_cache=timing_cache, dla_core=dla, version_compatible=version_compatible,
        hardware_compatibility=parse_choice(HardwareCompatibility, hardware_compat, "--hardware-compat"),
    )  # fmt: skip


def render_engine(options: EngineOptions) -> list[str]:
    """Only what differs from the defaults; the calibration cache is found beside the ONNX, never given."""
    if options.calibration_cache is not None:
        raise ValueError(f"calibration cache {options.calibration_cache}: no option gives it; it lies beside the ONNX")
    return [
        *option("--batch", options.batch, DEFAULTS.batch),
        *option("--workspace", options.workspace_mib),
        *option("--opt-level", options.optimization_level),
        *option("--timing-cache", options.timing_cache),
        *option("--dla", options.dla_core),
        *switch("--version-compatible", options.version_compatible),
        *option("--hardware-compat", options.hardware_compatibility, DEFAULTS.hardware_compatibility),
    ]


ENGINE = OptionGroup(parse_engine, render_engine)
EngineArgs = Annotated[EngineOptions, ENGINE]
