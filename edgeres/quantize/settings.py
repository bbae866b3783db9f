"""What the INT8 stage is asked to do, light to import (the command line builds it before any work)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.quantize.tensorrt_qdq import HighPrecision


@dataclass(frozen=True)
class Int8Settings:
    """How to calibrate and quantize: the INT8 part of a build's options."""

    calib_algo: CalibAlgo
    calib_options: CalibOptions
    batch_size: int
    keep_float: tuple[str, ...]
    bias_correction: bool
    high_precision: HighPrecision
    trt_table_version: str
    recalibrate: bool = False
