"""The runner: prerequisites, exceptions turned into FAIL lines, and the real checklist's structure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgeres.doctor.check import Check, Outcome, Status, failed, passed, skipped
from edgeres.doctor.checklist import CPU_STEPS, DEVICE_STEPS, STEPS
from edgeres.doctor.runner import Step, run_checks
from edgeres.errors import UserInputError


def fine() -> Outcome:
    return passed("fine")


def broken() -> Outcome:
    return failed("broken", "mend it")


def absent() -> Outcome:
    return skipped("not installed")


def raises() -> Outcome:
    raise UserInputError("weights.bin:\nunreadable")


def test_a_check_whose_prerequisite_did_not_pass_is_skipped_naming_it() -> None:
    report = run_checks(
        [
            Step("base", broken, "f"),
            Step("optional", absent, "f"),
            Step("on base", fine, "f", ("base",)),
            Step("on optional", fine, "f", ("optional",)),
            Step("on nothing", fine, "f"),
        ]
    )
    assert report.named("on base") == Check("on base", Status.SKIP, "needs base, which failed")
    assert report.named("on optional") == Check("on optional", Status.SKIP, "needs optional, which was skipped")
    assert report.named("on nothing").status is Status.PASS


def test_a_check_that_raises_fails_with_the_error_and_the_steps_fix_and_the_rest_still_runs() -> None:
    seen: list[str] = []
    report = run_checks(
        [Step("reads weights", raises, "restore weights.bin"), Step("after", fine, "f")],
        on_check=lambda check: seen.append(check.name),
    )
    assert report.named("reads weights") == Check(
        "reads weights", Status.FAIL, "weights.bin: unreadable", "restore weights.bin"
    )
    assert report.named("after").status is Status.PASS
    assert seen == ["reads weights", "after"]


def test_a_malformed_checklist_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 'later', which does not run before it"):
        run_checks([Step("first", fine, "f", ("later",)), Step("later", fine, "f")])
    with pytest.raises(ValueError, match="check names must be unique: twice"):
        run_checks([Step("twice", fine, "f"), Step("twice", fine, "f")])


def test_the_checklist_is_well_formed_and_every_device_check_rests_on_tensorrt() -> None:
    """With every check passing, all run; with TensorRT absent, every device check is skipped."""
    assert len({step.name for step in STEPS}) == len(STEPS)
    everything_fine = [replace(step, run=fine) for step in STEPS]
    assert all(check.status is Status.PASS for check in run_checks(everything_fine).checks)
    without_tensorrt = [replace(step, run=absent if step.name == "tensorrt" else fine) for step in STEPS]
    report = run_checks(without_tensorrt)
    assert all(report.named(step.name).status is Status.SKIP for step in DEVICE_STEPS)
    assert all(report.named(step.name).status is Status.PASS for step in CPU_STEPS)
    assert all(step.fix for step in STEPS)
