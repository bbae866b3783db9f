"""What an engine's sidecar records of its verification: the engine run on its build's held-out samples and
compared with the logits its ONNX (and the FP32 model) gave there, the limits applied, and the verdict.

The runtime and deploy read it to refuse an engine that was never verified or that failed; the check itself
lives above this stage (edgeres.runtime.verification), since it needs a runner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.fields import Fields, json_number
from edgeres.errors import UserInputError


def _db(value: float) -> str:
    if math.isfinite(value):
        return f"{value:.1f} dB"
    return "exact" if value > 0 else "not finite"


def _number(fields: Fields, key: str) -> float:
    value = fields.data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise fields.refusal(key, value, "a number")
    try:
        return float(value)
    except ValueError:
        raise fields.refusal(key, value, "a number") from None


@dataclass(frozen=True)
class VerificationOutcome:
    """One verification of an artifact against the ONNX it was made from, on the build's held-out samples."""

    passed: bool
    runner: str  # the runner that produced the logits (e.g. TensorRTRunner)
    reference: str  # the build role of the ONNX compared with (e.g. int8_tensorrt)
    heldout_sha256: str  # the held-out set the samples came from
    samples: int
    sqnr_vs_fp32_db: float
    sqnr_vs_onnx_db: float
    top1_vs_fp32: float
    top1_vs_onnx: float
    accuracy: float | None  # top-1 against the labels, when the samples have them
    min_sqnr_vs_fp32_db: float  # the limit applied (see edgeres.runtime.verification)
    failures: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "runner": self.runner,
            "reference": self.reference,
            "heldout_sha256": self.heldout_sha256,
            "samples": self.samples,
            "sqnr_vs_fp32_db": json_number(self.sqnr_vs_fp32_db),
            "sqnr_vs_onnx_db": json_number(self.sqnr_vs_onnx_db),
            "top1_vs_fp32": self.top1_vs_fp32,
            "top1_vs_onnx": self.top1_vs_onnx,
            "accuracy": self.accuracy,
            "min_sqnr_vs_fp32_db": json_number(self.min_sqnr_vs_fp32_db),
            "failures": list(self.failures),
        }

    @classmethod
    def from_json(cls, fields: Fields) -> VerificationOutcome:
        return cls(
            passed=fields.require("passed", bool),
            runner=fields.require("runner", str),
            reference=fields.require("reference", str),
            heldout_sha256=fields.require("heldout_sha256", str),
            samples=fields.require("samples", int),
            sqnr_vs_fp32_db=_number(fields, "sqnr_vs_fp32_db"),
            sqnr_vs_onnx_db=_number(fields, "sqnr_vs_onnx_db"),
            top1_vs_fp32=_number(fields, "top1_vs_fp32"),
            top1_vs_onnx=_number(fields, "top1_vs_onnx"),
            accuracy=None if fields.data.get("accuracy") is None else _number(fields, "accuracy"),
            min_sqnr_vs_fp32_db=_number(fields, "min_sqnr_vs_fp32_db"),
            failures=fields.items("failures", str) or (),
        )

    def summary(self) -> str:
        """One line: the verdict and the numbers behind it."""
        verdict = "passed" if self.passed else "FAILED"
        accuracy = "" if self.accuracy is None else f", top-1 accuracy {self.accuracy:.1%}"
        return (
            f"verification {verdict} on {self.samples} held-out samples: logits SQNR "
            f"{_db(self.sqnr_vs_fp32_db)} against FP32 (at least {self.min_sqnr_vs_fp32_db:.1f} dB needed), "
            f"{_db(self.sqnr_vs_onnx_db)} against its ONNX ({self.reference}), top-1 agreement "
            f"{self.top1_vs_fp32:.0%} with FP32 and {self.top1_vs_onnx:.0%} with the ONNX{accuracy}"
        )


def check_verified(engine: Path, outcome: VerificationOutcome | None, allow_unverified: bool) -> None:
    """Refuse an engine whose sidecar records no verification, or a failed one, unless `allow_unverified`."""
    if allow_unverified:
        return
    if outcome is None:
        raise UserInputError(
            f"{engine}: this engine was never verified against its ONNX (built without the build's held-out set); "
            f"rebuild it with `edgeres engine MODEL.onnx -o {Path(engine).name}` beside the build's heldout.npz, "
            "or accept it unverified (--allow-unverified)"
        )
    if not outcome.passed:
        reason = outcome.failures[0] if outcome.failures else "see its sidecar"
        raise UserInputError(
            f"{engine}: this engine FAILED verification against its ONNX ({reason}); rebuild it, or accept it "
            "anyway (--allow-unverified)"
        )
