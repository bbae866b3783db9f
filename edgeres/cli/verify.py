"""`edgeres verify`: run an engine (or an ONNX) on its build's held-out samples again. Parsing only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeres.cli.reporting import console, reports_errors, say


@reports_errors
def verify(
    artifact: Annotated[Path, typer.Argument(help="A TensorRT engine (.engine/.plan) or an ONNX of a build.")],
    build_dir: Annotated[
        Path | None,
        typer.Argument(help="The build folder (or its heldout.npz); default: beside ARTIFACT or its ONNX."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Check that an engine (or an ONNX) still computes what its build measured: run it on the build's
    held-out samples with its runner (TensorRT for an engine, onnxruntime for an ONNX) and compare with the
    recorded logits and the build's gate. Exit code 2 when it fails. Nothing is written.

    Examples:\n
      edgeres verify out/build/model_int8.engine\n
      edgeres verify /opt/app/model_int8.engine out/build
    """
    from edgeres.runtime.verification import VerificationFailed, verify_artifact

    outcome = verify_artifact(artifact, build_dir)
    if as_json:
        console.print_json(json.dumps(outcome.to_json()))
    else:
        say(f"{artifact}: {outcome.summary()}")
        for failure in outcome.failures[1:]:
            say(f"  also: {failure}")
    if not outcome.passed:
        raise VerificationFailed(f"{artifact}: {outcome.failures[0]}", outcome)
