"""Verification: an artifact run by a real runner on its build's held-out samples, compared with the logits
its ONNX and the FP32 model gave there at build time.

The limits, and why:
- every logit finite (an FP16 overflow in the remainder shows up as inf or NaN);
- logits SQNR against FP32 at least the ONNX's own on these samples minus `SQNR_MARGIN_DB`: the engine may
  add at most about a quarter of the noise its quantization already has (1 dB is 26% more noise power)
  and the build report's fidelity still holds on the device; capped at `SQNR_ENOUGH_DB`, where logits agree
  to 1% RMS and legitimately different FP16 kernels (TensorRT's against onnxruntime's) are not refused;
- the build's gate, with each limit lowered to what the ONNX itself reaches on these few samples (the
  gate was met on the whole held-out set; a subset can fall below it without anything being wrong).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.kinds import ArtifactKind, ArtifactRole, artifact_kind
from edgeres.artifacts.onnx import load_onnx
from edgeres.engine.record import EngineRecord, read_engine_record
from edgeres.engine.verification_record import VerificationOutcome
from edgeres.errors import FidelityError, UserInputError
from edgeres.quantize.fidelity import FidelityReport, compare_logits, sqnr_text
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.base import Runner
from edgeres.runtime.heldout import HELDOUT_NAME, HeldOutReference
from edgeres.runtime.kinds import RuntimeKind

SQNR_MARGIN_DB = 1.0
SQNR_ENOUGH_DB = 40.0


class VerificationFailed(FidelityError):
    """An artifact's outputs on the held-out samples are not those of its ONNX; `outcome` says how."""

    def __init__(self, message: str, outcome: VerificationOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


def run_all(runner: Runner, inputs: np.ndarray, batch_range: tuple[int, int | None]) -> np.ndarray:
    """The runner's logits of every input, in batches its profile takes (the last one padded when short)."""
    low, high = batch_range
    size = max(low, min(len(inputs), high or len(inputs)))
    outputs = []
    for start in range(0, len(inputs), size):
        batch = inputs[start : start + size]
        real = len(batch)
        if real < low:
            batch = np.concatenate([batch, np.repeat(batch[-1:], low - real, axis=0)])
        outputs.append(runner.infer(batch)[:real])
    return np.concatenate(outputs)


def subset_gate(gate: FidelityGate, onnx_report: FidelityReport) -> FidelityGate:
    """The build's gate on these samples: each limit no higher than what the ONNX itself reaches here."""

    def lowered(limit: float | None, reached: float | None) -> float | None:
        return limit if limit is None or reached is None else min(limit, reached)

    return FidelityGate(
        lowered(gate.min_sqnr_db, onnx_report.sqnr_db),
        lowered(gate.min_agreement, onnx_report.top1_agreement),
        lowered(gate.min_accuracy, onnx_report.top1_accuracy),
    )


def required_sqnr(onnx_sqnr_db: float) -> float:
    """The least logits SQNR against FP32 an artifact of an ONNX reaching `onnx_sqnr_db` must show."""
    return min(onnx_sqnr_db - SQNR_MARGIN_DB, SQNR_ENOUGH_DB)


def verify_logits(
    logits: np.ndarray, heldout: HeldOutReference, reference: ArtifactRole, runner: str
) -> VerificationOutcome:
    """The verdict on `logits` (the artifact's, on every held-out sample) against the recorded ones."""
    fp32, onnx = heldout.logits[ArtifactRole.FP32], heldout.logits[reference]
    labels = [heldout.labels]
    if logits.shape != fp32.shape:
        raise UserInputError(f"{runner}: logits of shape {list(logits.shape)}, the build's are {list(fp32.shape)}")
    onnx_report = compare_logits([fp32], [onnx], labels, reference.value)
    minimum = required_sqnr(onnx_report.sqnr_db)
    outcome = VerificationOutcome(
        passed=False, runner=runner, reference=reference.value, heldout_sha256=heldout.sha256,
        samples=heldout.samples, sqnr_vs_fp32_db=-math.inf, sqnr_vs_onnx_db=-math.inf, top1_vs_fp32=0.0,
        top1_vs_onnx=0.0, accuracy=None, min_sqnr_vs_fp32_db=minimum,
    )  # fmt: skip
    bad = int(np.size(logits) - np.count_nonzero(np.isfinite(logits)))
    if bad:
        failure = f"{bad} of {logits.size} logits are not finite (an overflow, e.g. in FP16 layers)"
        return replace(outcome, failures=(failure,))
    against_fp32 = compare_logits([fp32], [logits], labels, "artifact")
    against_onnx = compare_logits([onnx], [logits], labels, "artifact")
    failures = []
    if against_fp32.sqnr_db < minimum:
        failures.append(
            f"logits SQNR {against_fp32.sqnr_db:.1f} dB against FP32 is below the {minimum:.1f} dB needed (its ONNX "
            f"reaches {onnx_report.sqnr_db:.1f} dB on these samples; {sqnr_text(against_onnx.sqnr_db)} between "
            "the two)"
        )
    gate = subset_gate(heldout.gate, onnx_report)
    failures += [
        f"{failure} (the build's gate, on {heldout.samples} samples)" for failure in gate.failures(against_fp32)
    ]
    return replace(
        outcome,
        passed=not failures,
        sqnr_vs_fp32_db=against_fp32.sqnr_db,
        sqnr_vs_onnx_db=against_onnx.sqnr_db,
        top1_vs_fp32=against_fp32.top1_agreement,
        top1_vs_onnx=against_onnx.top1_agreement,
        accuracy=against_fp32.top1_accuracy,
        failures=tuple(failures),
    )


def verify_runner(runner: Runner, heldout: HeldOutReference, reference: ArtifactRole) -> VerificationOutcome:
    """Run a loaded runner on every held-out sample and judge its logits against `reference`'s."""
    logits = run_all(runner, heldout.inputs, runner.batch_range)
    return verify_logits(logits, heldout, reference, runner.name)


def reference_role(artifact: Path, heldout: HeldOutReference, record: EngineRecord | None = None) -> ArtifactRole:
    """Which of the set's models `artifact` must match: an engine's recorded ONNX, or the ONNX itself."""
    if artifact_kind(artifact) is ArtifactKind.ONNX:
        sha, what = sha256_file(artifact), f"{artifact.name}"
    else:
        if record is None or record.onnx_sha256 is None:
            raise UserInputError(f"{artifact}: its sidecar does not record the ONNX it was built from")
        sha, what = record.onnx_sha256, f"the ONNX its sidecar names ({record.onnx})"
    role = heldout.role_of(sha)
    if role is None:
        raise UserInputError(
            f"{heldout.path}: holds no logits for {what} (SHA-256 {sha[:12]}…): a held-out set of another build"
        )
    return role


def find_heldout(artifact: Path, given: Path | None = None, record: EngineRecord | None = None) -> Path | None:
    """The held-out set for `artifact`: `given` (the archive or its build folder), else the one beside it, else
    (an engine, with its `record`) the one beside the ONNX its sidecar names."""
    if given is not None:
        given = Path(given)
        return given / HELDOUT_NAME if given.is_dir() else given
    candidates = [Path(artifact).parent / HELDOUT_NAME]
    if record is not None and record.onnx:
        candidates.append(Path(record.onnx).parent / HELDOUT_NAME)
    return next((c for c in candidates if c.is_file()), None)


def verify_artifact(
    artifact: Path, heldout_path: Path | None = None, runtime: RuntimeKind = RuntimeKind.AUTO
) -> VerificationOutcome:
    """Run `artifact` (an engine or an ONNX) on `runtime` (AUTO: its kind's runner; OPENVINO: an ONNX of the build
    on another CPU's runtime) on the held-out set (`heldout_path`, else found beside it) and judge it; an engine is
    opened whatever its recorded verification says. The outcome's `runner` names the runner that ran it."""
    from edgeres.runtime.dispatch import open_runner

    artifact = Path(artifact)
    kind = artifact_kind(artifact)
    if kind is ArtifactKind.ONNX:
        load_onnx(artifact, weights=False)  # a file that is no model is named as such before anything else
    runner = open_runner(artifact, allow_unverified=True, runtime=runtime)  # refused before the set is read
    record = read_engine_record(artifact) if kind is ArtifactKind.TENSORRT else None
    found = find_heldout(artifact, heldout_path, record)
    if found is None:
        raise UserInputError(
            f"{artifact}: no {HELDOUT_NAME} beside it or its ONNX; name the build folder: "
            "edgeres verify ARTIFACT BUILD_DIR"
        )
    heldout = HeldOutReference.read(found)
    reference = reference_role(artifact, heldout, record)
    with runner:
        return verify_runner(runner, heldout, reference)


def verify_new_engine(engine: Path, heldout_path: Path | None) -> VerificationOutcome | None:
    """Verify an engine just built and record the outcome in its sidecar; None (recorded as never verified)
    when there is no held-out set. Raises VerificationFailed, after recording, when it fails."""
    engine = Path(engine)
    found = find_heldout(engine, heldout_path, read_engine_record(engine))
    if found is None:
        return None
    outcome = verify_artifact(engine, found)
    record = read_engine_record(engine)
    if record is None:
        raise UserInputError(f"{engine}: its sidecar disappeared while it was verified")
    replace(record, verification=outcome).write(engine)
    if not outcome.passed:
        raise VerificationFailed(
            f"{engine}: {outcome.failures[0]}; the engine is kept, marked failed (runtime and deploy refuse it). "
            "To try next: rebuild it (another --opt-level, or without --dla), compare with "
            "`edgeres verify` on another unit, or rebuild the model with more layers kept in float (--auto-fallback)",
            outcome,
        )
    return outcome
