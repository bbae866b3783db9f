"""The fidelity-gate group: the minimum logits SQNR, top-1 agreement and accuracy, as a FidelityGate."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeres.cli.args.group import OptionGroup, option
from edgeres.quantize.gate import FidelityGate

PANEL = "Fidelity"  # also the panel of build's --eval, --auto-fallback and --sensitivity

MinSqnrOption = Annotated[
    float | None,
    typer.Option(
        "--min-sqnr", help="Fail unless logits SQNR (dB) on held-out samples reaches this.", rich_help_panel=PANEL
    ),
]
MinAgreementOption = Annotated[
    float | None,
    typer.Option("--min-agreement", help="Fail unless top-1 agreement (0..1) reaches this.", rich_help_panel=PANEL),
]
MinAccuracyOption = Annotated[
    float | None,
    typer.Option(
        "--min-accuracy",
        help="Fail unless top-1 accuracy (0..1) on labelled (CSV) held-out samples reaches this.",
        rich_help_panel=PANEL,
    ),
]


def parse_gate(
    min_sqnr: MinSqnrOption = None, min_agreement: MinAgreementOption = None, min_accuracy: MinAccuracyOption = None
) -> FidelityGate:
    return FidelityGate(min_sqnr_db=min_sqnr, min_agreement=min_agreement, min_accuracy=min_accuracy)


def render_gate(gate: FidelityGate) -> list[str]:
    return [*option("--min-sqnr", gate.min_sqnr_db), *option("--min-agreement", gate.min_agreement),
            *option("--min-accuracy", gate.min_accuracy)]  # fmt: skip


GATE = OptionGroup(parse_gate, render_gate)
GateArgs = Annotated[FidelityGate, GATE]
