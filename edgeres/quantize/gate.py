"""The fidelity gate a build must pass: minimum logits SQNR, top-1 agreement, accuracy (numpy-free, for the CLI)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeres.artifacts.fields import Fields
from edgeres.choices import require_fraction
from edgeres.errors import FidelityError, UserInputError

if TYPE_CHECKING:
    from edgeres.quantize.fidelity import FidelityReport


DEFAULT_MAX_FALLBACK = 8  # layers automatic fallback may keep in float to meet a gate


@dataclass(frozen=True)
class FidelityGate:
    """Build fails when the candidate falls below these (None: not checked).

    `min_accuracy` is the candidate's top-1 accuracy against the held-out labels, so it needs labelled data.
    """

    min_sqnr_db: float | None = None
    min_agreement: float | None = None
    min_accuracy: float | None = None

    def __post_init__(self) -> None:
        if self.min_sqnr_db is not None and not math.isfinite(self.min_sqnr_db):
            raise UserInputError(f"minimum logits SQNR {self.min_sqnr_db} dB: must be a finite number")
        require_fraction(self.min_agreement, "minimum top-1 agreement")
        require_fraction(self.min_accuracy, "minimum top-1 accuracy")

    @property
    def limits(self) -> int:
        """How many measures the gate checks."""
        return sum(limit is not None for limit in (self.min_sqnr_db, self.min_agreement, self.min_accuracy))

    def failures(self, report: FidelityReport) -> list[str]:
        """One phrase per measure below its limit, e.g. 'logits SQNR 21.3 dB is below the required 25 dB'."""
        failed = []
        if self.min_sqnr_db is not None and report.sqnr_db < self.min_sqnr_db:
            failed.append(f"logits SQNR {report.sqnr_db:.1f} dB is below the required {self.min_sqnr_db:g} dB")
        if self.min_agreement is not None and report.top1_agreement < self.min_agreement:
            failed.append(
                f"top-1 agreement {report.top1_agreement:.1%} is below the required {self.min_agreement:.1%}"
            )
        if self.min_accuracy is not None:
            accuracy = report.top1_accuracy
            if accuracy is None:
                failed.append("top-1 accuracy cannot be measured: the held-out samples have no labels")
            elif accuracy < self.min_accuracy:
                failed.append(f"top-1 accuracy {accuracy:.1%} is below the required {self.min_accuracy:.1%}")
        return failed

    def score(self, report: FidelityReport) -> tuple[float, ...]:
        """Larger is better for this gate: limits met first, then the gated measure, then SQNR."""
        met = self.limits - len(self.failures(report))
        if self.min_sqnr_db is None and self.min_accuracy is not None and report.top1_accuracy is not None:
            primary = report.top1_accuracy
        elif self.min_sqnr_db is None and self.min_agreement is not None:
            primary = report.top1_agreement
        else:
            primary = report.sqnr_db
        return (met, primary, report.sqnr_db)

    def as_dict(self) -> dict[str, float | None]:
        return {"min_sqnr_db": self.min_sqnr_db, "min_agreement": self.min_agreement, "min_accuracy": self.min_accuracy}

    @classmethod
    def from_json(cls, value: object, where: str) -> FidelityGate:
        fields = Fields.of(value, where)
        return cls(*(fields.get(key, float) for key in ("min_sqnr_db", "min_agreement", "min_accuracy")))


def check_fallback_target(gate: FidelityGate) -> None:
    """Refuse an automatic fallback with nothing to reach."""
    if gate.limits == 0:
        raise UserInputError(
            "automatic fallback needs a fidelity target: a minimum logits SQNR, top-1 agreement or accuracy"
        )


def check_fallback_budget(max_fallback: int) -> None:
    if max_fallback < 1:
        raise UserInputError(f"fallback budget {max_fallback} layers: must be at least 1")


def check_gate(report: FidelityReport, gate: FidelityGate) -> None:
    """Raise FidelityError naming the first failed measure, the value and the limit."""
    failed = gate.failures(report)
    if failed:
        raise FidelityError(f"{report.precision} {failed[0]} ({report.samples} held-out samples, {report.weights})")
