"""Run the checks in order: a check whose prerequisite did not pass is skipped, naming it; a check that
raises becomes a FAIL with the error's text and the step's fix. The runner itself never raises (except on
Ctrl-C, which is the user's to give)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgeres.doctor.check import Check, DoctorReport, Outcome, Status, error_text, failed, skipped


@dataclass(frozen=True)
class Step:
    """One check: its name, the function that runs it, the checks it needs to have passed, and the fix to
    give when the function raises instead of returning an Outcome."""

    name: str
    run: Callable[[], Outcome]
    fix: str
    needs: tuple[str, ...] = ()


def unmet(step: Step, done: dict[str, Check]) -> Outcome | None:
    """A SKIP naming the first prerequisite that did not pass, or None when all passed."""
    for name in step.needs:
        check = done.get(name)
        if check is None:
            raise ValueError(f"check '{step.name}' needs '{name}', which does not run before it")
        if check.status is not Status.PASS:
            how = "failed" if check.status is Status.FAIL else "was skipped"
            return skipped(f"needs {name}, which {how}")
    return None


def run_step(step: Step, done: dict[str, Check]) -> Check:
    outcome = unmet(step, done)
    if outcome is None:
        try:
            outcome = step.run()
        except Exception as exc:  # a doctor reports every failure as a line; none escapes as a traceback
            outcome = failed(error_text(exc), step.fix)
    return Check.of(step.name, outcome)


def run_checks(steps: Sequence[Step], on_check: Callable[[Check], None] | None = None) -> DoctorReport:
    """Run `steps` in order; `on_check` sees each line as soon as it is known (the CLI prints it)."""
    duplicated = sorted({s.name for s in steps if [t.name for t in steps].count(s.name) > 1})
    if duplicated:
        raise ValueError(f"check names must be unique: {', '.join(duplicated)}")
    done: dict[str, Check] = {}
    for step in steps:
        check = run_step(step, done)
        done[step.name] = check
        if on_check is not None:
            on_check(check)
    return DoctorReport(tuple(done.values()))
