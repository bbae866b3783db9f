"""`edgeres verify`: run an engine (or an ONNX) on its build's held-out samples again. Parsing only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeres.choices import choice_values, parse_choice
from edgeres.cli.reporting import console, reports_errors, say
from edgeres.runtime.kinds import RuntimeKind


@reports_errors
def verify(
    artifact: Annotated[Path, typer.Argument(help="A TensorRT engine (.engine/.plan) or an ONNX of a build.")],
    build_dir: Annotated[
        Path | None,
        typer.Argument(help="The build folder (or its heldout.npz); default: beside ARTIFACT or its ONNX."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    runtime: Annotated[
        str,
        typer.Option(
            "--runtime",
            help=f"{choice_values(RuntimeKind)}: what runs ARTIFACT. auto: TensorRT for an engine, onnxruntime for "
            "an ONNX; openvino: an ONNX of the build on OpenVINO's CPU device (e.g. model_int8_qdq.onnx on "
            "another CPU). Refused if it cannot run the file.",
        ),
    ] = RuntimeKind.AUTO.value,
) -> None:
    """Check that an engine (or an ONNX) still computes what its build measured: run it on the build's
    held-out samples with its runner (TensorRT for an engine, onnxruntime or --runtime openvino for an ONNX)
    and compare with the recorded logits and the build's gate. The outcome names the runner (JSON: "runner").
    Exit code 2 when it fails. Nothing is written.

    Examples:\n
      edgeres verify out/build/model_int8.engine\n
      edgeres verify /opt/app/model_int8.engine out/build\n
      edgeres verify out/build/model_int8_qdq.onnx --runtime openvino
    """
    from edgeres.runtime.verification import VerificationFailed, verify_artifact

    outcome = verify_artifact(artifact, build_dir, parse_choice(RuntimeKind, runtime, "--runtime"))
    if as_json:
        console.print_json(json.dumps(outcome.to_json()))
    else:
        say(f"{artifact} on {outcome.runner}: {outcome.summary()}")
        for failure in outcome.failures[1:]:
            say(f"  also: {failure}")
    if not outcome.passed:
        raise VerificationFailed(f"{artifact} on {outcome.runner}: {outcome.failures[0]}", outcome)
