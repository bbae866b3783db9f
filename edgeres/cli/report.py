"""`edgeres report`: the build folder's report.html, made again from the folder alone. Parsing only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeres.cli.reporting import reports_errors, wrote
from edgeres.errors import UserInputError


@reports_errors
def report(
    folder: Annotated[Path, typer.Argument(help="A finished `edgeres build` folder, or an `edgeres finetune` run's.")],
) -> None:
    """Write FOLDER/report.html. For a build: the verdict, precision map, placement audit, calibration
    evidence, sensitivity and fallback, the held-out samples INT8 and FP32 disagree on, speed and provenance.
    For a fine-tune run: curves, confusion matrix, per-class accuracy, validation mistakes. One self-contained
    file (no network, no script) from what the folder holds; nothing is measured again.

    Examples:\n
      edgeres report out/build\n
      edgeres report out/ft
    """
    from edgeres.artifacts.build_summary import SUMMARY_NAME
    from edgeres.artifacts.kinds import FINETUNE_RECORD_NAME
    from edgeres.report.build_report import write_build_report
    from edgeres.report.finetune_report import write_finetune_report

    if not folder.is_dir():
        raise UserInputError(f"{folder}: no such folder")
    if (folder / SUMMARY_NAME).is_file():
        wrote(f"report: {write_build_report(folder)}")
    elif (folder / FINETUNE_RECORD_NAME).is_file():
        wrote(f"report: {write_finetune_report(folder)}")
    else:
        raise UserInputError(
            f"{folder}: neither a build folder ({SUMMARY_NAME}) nor a fine-tune run ({FINETUNE_RECORD_NAME})"
        )
