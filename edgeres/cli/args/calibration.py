"""The calibration group: the data, the algorithm and what stays float, as the calibration fields of BuildOptions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeres.choices import choice_values, parse_choice
from edgeres.cli.args.group import OptionGroup, option, switch
from edgeres.cli.options import FRAME_FORMAT_HELP, parse_frame_format
from edgeres.flow.options import BuildOptions
from edgeres.frames.contract import FrameFormat, InputContract, recorded_input
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.tensorrt_qdq import HighPrecision

PANEL = "Calibration"
DEFAULTS = BuildOptions()

CalibOption = Annotated[
    Path | None,
    typer.Option(
        "--calib",
        help="Folder of images (recursive) or raw .yuv frames, or a path,label CSV. Default: calibration/.",
        rich_help_panel=PANEL,
    ),
]
CalibFormatOption = Annotated[
    str | None,
    typer.Option(
        "--calib-format",
        help=f"--calib holds raw .yuv frames of this format: {FRAME_FORMAT_HELP}; a bare FORMAT takes the "
        "--input size.",
        rich_help_panel=PANEL,
    ),
]
CalibAlgoOption = Annotated[
    str, typer.Option("--calib-algo", help=f"{choice_values(CalibAlgo)}.", rich_help_panel=PANEL)
]
CalibSizeOption = Annotated[
    int, typer.Option("--calib-size", help="Calibration samples.", min=1, rich_help_panel=PANEL)
]
CalibBatchOption = Annotated[
    int, typer.Option("--calib-batch", help="Samples per calibration batch.", min=1, rich_help_panel=PANEL)
]
CalibSeedOption = Annotated[
    int, typer.Option("--calib-seed", help="Seed of the shuffle and the held-out split.", rich_help_panel=PANEL)
]
PercentileOption = Annotated[
    float,
    typer.Option(
        "--percentile", help="With --calib-algo percentile: the percentile kept (0..100].", rich_help_panel=PANEL
    ),
]
KeepFloatOption = Annotated[
    str,
    typer.Option(
        "--keep-float",
        help="Comma-separated layers kept out of INT8, e.g. conv1,fc,layer1.0.conv1.",
        rich_help_panel=PANEL,
    ),
]
BiasCorrectionOption = Annotated[
    bool,
    typer.Option(
        "--bias-correction/--no-bias-correction",
        help="INT8: fold each layer's weight-rounding mean shift, measured on the calibration data, into its bias.",
        rich_help_panel=PANEL,
    ),
]
HighPrecisionOption = Annotated[
    str,
    typer.Option(
        "--high-precision",
        help=f"{choice_values(HighPrecision)}: what the TensorRT INT8 model runs outside INT8 (fp16 needs "
        "TensorRT 10+).",
        rich_help_panel=PANEL,
    ),
]
RecalibrateOption = Annotated[
    bool,
    typer.Option("--recalibrate", help="Replace a calibration cache made from other inputs.", rich_help_panel=PANEL),
]
TrtTableVersionOption = Annotated[
    str,
    typer.Option(
        "--trt-table-version", help="TensorRT version in the calibration.table header.", rich_help_panel=PANEL
    ),
]


def parse_layers(text: str) -> tuple[str, ...]:
    """`--keep-float conv1,fc` -> ('conv1', 'fc')."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def raw_calibration_format(calib_format: str | None, contract: InputContract | None) -> FrameFormat | None:
    """`--calib-format`: FORMAT:WIDTHxHEIGHT, or a bare FORMAT taking the size of `contract`."""
    if calib_format is None:
        return None
    size = (contract.width, contract.height) if contract is not None else None
    return parse_frame_format(calib_format, "--calib-format", size)


@dataclass(frozen=True)
class Calibration:
    """BuildOptions' calibration fields, named as there; the raw-frame format stays text until the input
    contract is known, since a bare FORMAT takes the --input size."""

    calib: Path | None
    calib_format: str | None
    calib_algo: CalibAlgo
    calib_size: int
    batch_size: int
    seed: int
    percentile: float
    keep_float: tuple[str, ...]
    bias_correction: bool
    high_precision: HighPrecision
    recalibrate: bool
    trt_table_version: str

    def build_options(self, contract: InputContract | None, **others: Any) -> BuildOptions:
        """BuildOptions with these choices, `contract` and `others` (the fields of other groups); a bare
        --calib-format takes the size of --input, else of the raw frames the --onnx model records it takes."""
        sized_by = contract
        given = others.get("onnx")
        if sized_by is None and self.calib_format is not None and given is not None and Path(given).is_file():
            recorded = recorded_input(Path(given))
            sized_by = recorded.contract if recorded is not None else None
        return BuildOptions(
            calib=self.calib, raw=raw_calibration_format(self.calib_format, sized_by), contract=contract,
            calib_algo=self.calib_algo, calib_size=self.calib_size, batch_size=self.batch_size, seed=self.seed,
            percentile=self.percentile, keep_float=self.keep_float, bias_correction=self.bias_correction,
            high_precision=self.high_precision, recalibrate=self.recalibrate,
            trt_table_version=self.trt_table_version, **others,
        )  # fmt: skip

    @classmethod
    def of(cls, options: BuildOptions) -> Calibration:
        """ValueError for a calibration source given as an object: only a path has an option."""
        if options.calib is not None and not isinstance(options.calib, Path):
            raise ValueError(f"calibration source {options.calib.name}: not a path, no option gives it")
        return cls(
            calib=options.calib, calib_format=None if options.raw is None else str(options.raw),
            calib_algo=options.calib_algo, calib_size=options.calib_size, batch_size=options.batch_size,
            seed=options.seed, percentile=options.percentile, keep_float=options.keep_float,
            bias_correction=options.bias_correction, high_precision=options.high_precision,
            recalibrate=options.recalibrate, trt_table_version=options.trt_table_version,
        )  # fmt: skip


def parse_calibration(
    calib: CalibOption = None,
    calib_format: CalibFormatOption = None,
    calib_algo: CalibAlgoOption = DEFAULTS.calib_algo.value,
    calib_size: CalibSizeOption = DEFAULTS.calib_size,
    calib_batch: CalibBatchOption = DEFAULTS.batch_size,
    calib_seed: CalibSeedOption = DEFAULTS.seed,
    percentile: PercentileOption = DEFAULTS.percentile,
    keep_float: KeepFloatOption = "",
    bias_correction: BiasCorrectionOption = DEFAULTS.bias_correction,
    high_precision: HighPrecisionOption = DEFAULTS.high_precision.value,
    recalibrate: RecalibrateOption = False,
    trt_table_version: TrtTableVersionOption = DEFAULTS.trt_table_version,
) -> Calibration:
    return Calibration(
        calib=calib, calib_format=calib_format, calib_algo=parse_choice(CalibAlgo, calib_algo, "--calib-algo"),
        calib_size=calib_size, batch_size=calib_batch, seed=calib_seed, percentile=percentile,
        keep_float=parse_layers(keep_float), bias_correction=bias_correction,
        high_precision=parse_choice(HighPrecision, high_precision, "--high-precision"), recalibrate=recalibrate,
        trt_table_version=trt_table_version,
    )  # fmt: skip


def render_calibration(choices: Calibration) -> list[str]:
    """Only what differs from the defaults, --calib first."""
    default = Calibration.of(DEFAULTS)
    return [
        *option("--calib", choices.calib),
        *option("--calib-format", choices.calib_format),
        *option("--calib-algo", choices.calib_algo, default.calib_algo),
        *option("--calib-size", choices.calib_size, default.calib_size),
        *option("--calib-batch", choices.batch_size, default.batch_size),
        *option("--calib-seed", choices.seed, default.seed),
        *option("--percentile", choices.percentile, default.percentile),
        *option("--keep-float", ",".join(choices.keep_float), ""),
        *switch("--no-bias-correction", not choices.bias_correction),
        *option("--high-precision", choices.high_precision, default.high_precision),
        *switch("--recalibrate", choices.recalibrate),
        *option("--trt-table-version", choices.trt_table_version, default.trt_table_version),
    ]


CALIBRATION = OptionGroup(parse_calibration, render_calibration)
CalibrationArgs = Annotated[Calibration, CALIBRATION]
