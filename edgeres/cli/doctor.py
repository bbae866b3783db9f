"""`edgeres doctor`: what to run first on a new machine. Prints the report; the checks live in edgeres.doctor."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from edgeres.cli.reporting import console, reports_errors, say

if TYPE_CHECKING:
    from edgeres.doctor.check import Check

STATUS_STYLES = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}


def show_check(check: Check, name_width: int) -> None:
    """`STATUS  name  detail`, and for a FAIL `      fix: ...` below it; the text printed literally."""
    status = check.status.value
    line = Text.assemble((status, STATUS_STYLES[status]), f"  {check.name:<{name_width}}  {check.detail}")
    console.print(line, highlight=False, soft_wrap=True)
    if check.fix is not None:
        say(f"{' ' * (len(status) + 2)}fix: {check.fix}")


@reports_errors
def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON document (for a bug report).")
    ] = False,
) -> None:
    """Check this machine for edgeres: the install, onnxruntime, the shipped data, the temp folder, and where
    TensorRT is installed the GPU, CUDA and tiny FP16 and INT8 engines. Exit code 1 when a check fails.

    Examples:\n
      edgeres doctor\n
      edgeres doctor --json > doctor.json
    """
    from edgeres.doctor.checklist import STEPS, run_doctor  # onnx, numpy: kept out of `edgeres --help`

    width = max(len(step.name) for step in STEPS)
    report = run_doctor(on_check=None if as_json else functools.partial(show_check, name_width=width))
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        say(report.summary())
    if not report.healthy:
        raise typer.Exit(1)
