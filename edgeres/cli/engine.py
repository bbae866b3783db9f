"""`edgeres engine`: the TensorRT engine of an ONNX, on the machine that runs it. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.artifacts.kinds import is_engine_path
from edgeres.cli.args.engine import EngineArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.paths import check_output_dir, check_output_file
from edgeres.cli.reporting import reports_errors, say, warn, wrote
from edgeres.errors import UserInputError


@reports_errors
@takes_groups
def engine(
    model: Annotated[Path, typer.Argument(help="An ONNX from `edgeres build` (INT8 Q/DQ or FP16), or any ONNX.")],
    *,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="An .engine/.plan file, or a folder (the engine named after MODEL).")
    ],
    heldout: Annotated[
        Path | None,
        typer.Option("--heldout", help="The build's heldout.npz to verify with (default: the one beside MODEL)."),
    ] = None,
    options: EngineArgs,
) -> None:
    """Build the TensorRT engine of an ONNX (needs TensorRT and an NVIDIA GPU), then verify it: run it on the
    build's held-out samples and compare with the logits its ONNX gave there. An engine that fails is kept,
    marked failed in its sidecar (runtime and deploy refuse it), and the command exits 2. The calibration
    cache found beside an INT8 ONNX is hashed into the engine's sidecar.

    Examples:\n
      edgeres engine out/build/model_int8_qdq.onnx -o out/model_int8.engine --batch 1:8:32 --timing-cache t.cache\n
      edgeres engine out/r50_fp16/model_fp16.onnx -o out/ --dla 0
    """
    from edgeres.engine.from_onnx import engine_from_onnx
    from edgeres.runtime.verification import verify_new_engine

    if is_engine_path(output):
        check_output_file(output)
    else:
        check_output_dir(output)
    if heldout is not None and not heldout.is_file():
        raise UserInputError(f"{heldout}: held-out set not found")
    built = engine_from_onnx(model, output, options)
    wrote(f"engine: {built}")
    outcome = verify_new_engine(built, heldout)
    if outcome is None:
        warn(
            f"{built}: not verified: no heldout.npz beside {model} (an ONNX from outside a build?); the runtime "
            "refuses it unless told --allow-unverified. Build it from a build folder, or pass --heldout."
        )
    else:
        say(outcome.summary())
