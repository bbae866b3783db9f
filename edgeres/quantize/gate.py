"""The fidelity gate a build must pass: minimum logits SQNR and top-1 agreement (numpy-free, for the CLI too)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeres.choices import require_fraction
from edgeres.errors import FidelityError, UserInputError

if TYPE_CHECKING:
    from edgeres.quantize.fidelity import FidelityReport


@dataclass(frozen=True)
class FidelityGate:
    """Build fails when the candidate falls below these (None: not checked)."""

    min_sqnr_db: float | None = None
    min_agreement: float | None = None

    def __post_init__(self) -> None:
        if self.min_sqnr_db is not None and not math.isfinite(self.min_sqnr_db):
            raise UserInputError(f"minimum logits SQNR {self.min_sqnr_db} dB: must be a finite number")
        require_fraction(self.min_agreement, "minimum top-1 agreement")


def check_gate(report: FidelityReport, gate: FidelityGate) -> None:
    """Raise FidelityError naming the failed measure, the value and the limit."""
    if gate.min_sqnr_db is not None and report.sqnr_db < gate.min_sqnr_db:
        raise FidelityError(
            f"{report.precision} logits SQNR {report.sqnr_db:.1f} dB is below the required {gate.min_sqnr_db:g} dB "
            f"({report.samples} held-out samples, {report.weights})"
        )
    if gate.min_agreement is not None and report.top1_agreement < gate.min_agreement:
        raise FidelityError(
            f"{report.precision} top-1 agreement {report.top1_agreement:.1%} is below the required "
            f"{gate.min_agreement:.1%} ({report.samples} held-out samples, {report.weights})"
        )
