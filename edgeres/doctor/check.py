"""What a check finds (`Outcome`), the line it becomes in the report (`Check`) and the whole report."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from edgeres.errors import EdgeresError


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"

    @property
    def past_tense(self) -> str:
        """'passed', 'failed', 'skipped': how the summary counts it."""
        return {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[self.value]


@dataclass(frozen=True)
class Outcome:
    """What one check function found: the status, one line of detail, and for a FAIL the fix."""

    status: Status
    detail: str
    fix: str | None = None

    def __post_init__(self) -> None:
        if (self.status is Status.FAIL) != (self.fix is not None):
            raise ValueError(f"{self.status.value} '{self.detail}': a fix is given exactly for a FAIL")


def passed(detail: str) -> Outcome:
    return Outcome(Status.PASS, detail)


def failed(detail: str, fix: str) -> Outcome:
    return Outcome(Status.FAIL, detail, fix)


def skipped(reason: str) -> Outcome:
    return Outcome(Status.SKIP, reason)


@dataclass(frozen=True)
class Check:
    """One line of the report: the check's name and its outcome."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    @classmethod
    def of(cls, name: str, outcome: Outcome) -> Check:
        return cls(name, outcome.status, outcome.detail, outcome.fix)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class DoctorReport:
    """Every check in the order it ran; `healthy` unless one FAILed (a SKIP is not a failure)."""

    checks: tuple[Check, ...]

    def count(self, status: Status) -> int:
        return sum(check.status is status for check in self.checks)

    @property
    def healthy(self) -> bool:
        return self.count(Status.FAIL) == 0

    def summary(self) -> str:
        """'12 passed, 0 failed, 13 skipped'."""
        return ", ".join(f"{self.count(status)} {status.past_tense}" for status in Status)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document `edgeres doctor --json` prints (for a bug report)."""
        counts = {status.past_tense: self.count(status) for status in Status}
        return {"checks": [check.as_dict() for check in self.checks], "summary": {**counts, "healthy": self.healthy}}

    def named(self, name: str) -> Check:
        """The check called `name`; KeyError when the report has none."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines of a multi-line error) made one space."""
    return " ".join(text.split())


def error_text(exc: BaseException) -> str:
    """One line: an edgeres error's own message (it names what failed), else the exception's type and text."""
    if isinstance(exc, EdgeresError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}") if str(exc) else type(exc).__name__


def gib(nbytes: int) -> str:
    """Bytes as people read them on this report: '41.3 GiB', '512 MiB'."""
    return f"{nbytes / (1 << 30):.1f} GiB" if nbytes >= 1 << 30 else f"{nbytes / (1 << 20):.0f} MiB"
