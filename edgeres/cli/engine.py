"""`edgeres engine`: the TensorRT engine of an ONNX, on the machine that runs it. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.kinds import is_engine_path
from edgeres.cli.args.engine import EngineArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.paths import check_output_dir, check_output_file
from edgeres.cli.reporting import reports_errors, wrote


@reports_errors
@takes_groups
def engine(
    model: Annotated[Path, typer.Argument(help="An ONNX from `edgeres build` (INT8 Q/DQ or FP16), or any ONNX.")],
    *,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="An .engine/.plan file, or a folder (the engine named after MODEL).")
    ],
    options: EngineArgs,
) -> None:
    """Build the TensorRT engine of an ONNX (needs TensorRT and an NVIDIA GPU). The calibration cache found
    beside an INT8 ONNX is hashed into the engine's sidecar.

    Examples:\n
      edgeres engine out/build/model_int8_qdq.onnx -o out/model_int8.engine --batch 1:8:32 --timing-cache t.cache\n
      edgeres engine out/r50_fp16/model_fp16.onnx -o out/ --dla 0
    """
    from edgeres.engine.from_onnx import engine_from_onnx

    if is_engine_path(output):
        check_output_file(output)
    else:
        check_output_dir(output)
    wrote(f"engine: {engine_from_onnx(model, output, options)}")
