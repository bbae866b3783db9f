"""The doctor's records: an outcome carries a fix exactly when it FAILs; the report's summary and JSON."""

from __future__ import annotations

import json

import pytest

from edgeres.doctor.check import Check, DoctorReport, Outcome, Status, error_text, failed, gib, passed, skipped
from edgeres.errors import UserInputError


def test_a_fix_comes_exactly_with_a_failure() -> None:
    assert failed("broken", "mend it").fix == "mend it"
    with pytest.raises(ValueError, match="a fix is given exactly for a FAIL"):
        Outcome(Status.FAIL, "broken")
    with pytest.raises(ValueError, match="a fix is given exactly for a FAIL"):
        Outcome(Status.PASS, "fine", "nothing to mend")


def test_report_counts_and_json() -> None:
    report = DoctorReport(
        (
            Check.of("a", passed("fine")),
            Check.of("b", failed("broken", "mend it")),
            Check.of("c", skipped("needs b, which failed")),
        )
    )
    assert not report.healthy
    assert report.summary() == "1 passed, 1 failed, 1 skipped"
    document = json.loads(json.dumps(report.as_dict()))
    assert document["checks"][1] == {"check": "b", "status": "FAIL", "detail": "broken", "fix": "mend it"}
    assert document["summary"] == {"passed": 1, "failed": 1, "skipped": 1, "healthy": False}
    assert report.named("c").status is Status.SKIP
    assert DoctorReport((Check.of("a", passed("fine")), Check.of("c", skipped("why")))).healthy


def test_error_text_is_one_line() -> None:
    assert error_text(UserInputError("model.onnx:\n  not found")) == "model.onnx: not found"
    assert error_text(RuntimeError("bad\nthing")) == "RuntimeError: bad thing"
    assert error_text(KeyError()) == "KeyError"


def test_sizes_read_as_people_read_them() -> None:
    assert gib(4 << 20) == "4 MiB"
    assert gib(3 << 29) == "1.5 GiB"
