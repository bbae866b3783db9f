"""`edgeres build`: FP32 ONNX -> calibrated INT8 Q/DQ ONNX (+ onnxruntime U8S8 twin) or FP16 ONNX -> fidelity
report -> TensorRT engine when TensorRT and a GPU are present; everything in one output directory.

The build composes typed stages: export -> samples -> (calibrate -> analyse -> write INT8 | write FP16)
-> evaluate -> held-out set -> engine (+ verification) -> profile -> summary. The calibration source is
split once, by a seeded shuffle: a held-out share is never seen by the calibrator and serves the fidelity
report (edgeres.samples.holdout); its first samples, with every model's logits on them, are written for
verifying the engine wherever it is built (edgeres.flow.heldout).
With an input contract (camera frames) the FP32 model is the fused one (YUV 4:2:2 front-end + network),
calibration samples are camera-encoded frames, and the front-end nodes stay float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgeres.artifacts.build_summary import SUMMARY_NAME as SUMMARY_NAME
from edgeres.artifacts.build_summary import BuildSummary
from edgeres.artifacts.completion import BuildSet, build_set
from edgeres.artifacts.kinds import ENGINE_SUFFIX, ArtifactRole
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.engine.builder import build_engine
from edgeres.engine.options import EngineOptions
from edgeres.engine.target import running_target
from edgeres.engine.verification_record import VerificationOutcome
from edgeres.errors import BackendUnavailableError, EdgeresError, FidelityError
from edgeres.flow.cpu_runtime import CpuRuntimeStep, cpu_runtime_step
from edgeres.flow.heldout import kernels_for, write_heldout
from edgeres.flow.int8 import Quantized, quantize_fp16, quantize_int8
from edgeres.flow.int8_analysis import Int8Analysis
from edgeres.flow.options import BuildOptions
from edgeres.flow.samples import BuildSamples, build_samples
from edgeres.flow.source import SourceModel, source_model
from edgeres.profile.quick import QuickProfiles, quick_profiles
from edgeres.progress import StageProgress, Stages
from edgeres.quantize.artifacts import CACHE_NAME
from edgeres.quantize.fallback import keep_float_option
from edgeres.quantize.fidelity import LAYER_SAMPLES, FidelityReport, HeldOutEvaluation
from edgeres.quantize.gate import check_gate
from edgeres.report.build_report import REPORT_NAME, write_build_report
from edgeres.report.graph_audit import audit_placement
from edgeres.runtime.heldout import HELDOUT_NAME
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.verification import VerificationFailed, verify_new_engine


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    artifacts: dict[ArtifactRole, Path]
    fidelity: dict[ArtifactRole, FidelityReport]
    engine_note: str
    summary: BuildSummary
    notes: tuple[str, ...] = ()  # what the CLI prints besides the fidelity lines (cache, held-out set)
    profile: tuple[str, ...] = ()  # quick-profile lines, empty with profile_iterations=0
    analysis: Int8Analysis = field(default_factory=Int8Analysis)  # sensitivity and fallback, when asked
    report: Path | None = None  # report.html, when it could be written


class GateNotMet(FidelityError):
    """The build finished and wrote its report, but a model misses the fidelity gate; `result` is that report."""

    def __init__(self, message: str, result: BuildResult) -> None:
        super().__init__(message)
        self.result = result


def engine_status() -> str | None:
    """None when TensorRT and a GPU are usable here; otherwise why not, in one line."""
    try:
        running_target()
    except BackendUnavailableError as exc:
        return str(exc)
    except EdgeresError as exc:
        return f"no usable GPU: {exc}"
    return None


def build(
    options: BuildOptions, outdir: Path, progress: StageProgress | None = None, command: Sequence[str] | None = None
) -> BuildResult:
    """Run the whole chain; raises FidelityError (after writing the report) when the gate fails. `command` is
    the command line that reproduces it, recorded for the report.

    The folder is a set finished by its summary (edgeres.artifacts.completion): until the summary lands
    it is marked in progress, and a failure or interrupt before then removes every file this run wrote.
    report.html is written after it: a view of the finished set, not part of it, made again by `edgeres report`.
    """
    options.check_files()
    outdir = Path(outdir)
    with build_set(outdir) as current:
        return _build(options, outdir, Stages(progress), current, command)


def _build(
    options: BuildOptions, outdir: Path, stages: Stages, current: BuildSet, command: Sequence[str] | None
) -> BuildResult:
    source = source_model(options.onnx, options, outdir, stages)
    samples = build_samples(options, source)
    if options.precision is Precision.INT8:
        made = quantize_int8(options, source, samples.calibration, samples.evaluation, outdir, stages)
    else:
        made = quantize_fp16(source, outdir)
    fidelity = evaluate(made, samples.evaluation, options.precision, stages)
    artifacts = {ArtifactRole.FP32: source.path} | made.artifacts
    cpu = None
    if options.precision is Precision.INT8:
        cpu = cpu_runtime_step(made.artifacts, fidelity, samples.evaluation, options.gate, stages)
    models = {role: artifacts[role] for role in (ArtifactRole.FP32, *made.candidates)}
    with stages.stage("held-out set for verification"):
        artifacts[ArtifactRole.HELDOUT] = write_heldout(outdir, samples.evaluation, models, options.gate)
    engine = engine_stage(options, artifacts[made.candidates[0]], outdir, stages)
    artifacts |= {ArtifactRole.ENGINE: engine.path} if engine.path is not None else {}
    profile = profile_stage(options, artifacts, made.cpu_model, source, stages, cpu)
    summary = build_summary(options, source, samples, made, fidelity, artifacts, engine, profile, stages, outdir)
    if cpu is not None:
        summary = replace(summary, sections={**summary.sections, **cpu.sections()})
    if command is not None:
        summary = replace(summary, sections={**summary.sections, "command": list(command)})
    summary, failure = finish_build(current, summary, fidelity, options)
    failure = failure or engine.failure
    artifacts[ArtifactRole.SUMMARY] = outdir / SUMMARY_NAME
    report, report_note = write_report(outdir, stages)
    notes = (*source_notes(source), *made.notes, samples.note, *(() if cpu is None else cpu.lines()), *report_note)
    result = BuildResult(
        outdir, artifacts, fidelity, engine.note, summary, notes, profile.lines, made.analysis, report
    )
    if failure is not None:
        raise gate_not_met(failure, result)
    return result


def source_notes(source: SourceModel) -> tuple[str, ...]:
    if source.contract is None:
        return (f"input: RGB floats, {source.normalization.describe()}",)
    return (f"input: raw {source.contract.describe()} frames; the front-end stays float",)


def evaluate(
    made: Quantized, evaluation: HeldOutEvaluation, precision: Precision, stages: Stages
) -> dict[ArtifactRole, FidelityReport]:
    """Each written candidate against the FP32 logits; the TensorRT model by its own Q/DQ arithmetic, not
    by onnxruntime's x86 integer kernels."""
    reports = {}
    for role in made.candidates:
        with stages.stage(f"fidelity {role.value}", evaluation.samples, f"fidelity_{role.value}_s") as advance:
            path = made.artifacts[role]
            reports[role] = evaluation.measure(path, precision.value, kernels_for(role), advance, LAYER_SAMPLES)
    return reports


@dataclass(frozen=True)
class EngineStep:
    """What the engine step did: the engine (None when not built), a line saying so, its verification."""

    note: str
    path: Path | None = None
    verification: VerificationOutcome | None = None
    failure: VerificationFailed | None = None


def engine_stage(options: BuildOptions, target: Path, outdir: Path, stages: Stages) -> EngineStep:
    """The TensorRT engine of `target` where one can be built, verified on the folder's held-out set."""
    engine_path = outdir / f"model_{options.precision.value}{ENGINE_SUFFIX}"
    status = engine_status() if options.build_engine else "not asked for"
    if status is not None:
        return EngineStep(
            f"TensorRT engine not built ({status}). Made here: the ONNX models and the fidelity report. "
            f"On a machine with TensorRT and an NVIDIA GPU (e.g. the Jetson) run "
            f"`edgeres engine {target} -o {engine_path}` to build and verify it."
        )
    with stages.stage("TensorRT engine"):
        build_engine(target, engine_path, engine_options(options, outdir))
    with stages.stage("engine verification"):
        try:
            outcome = verify_new_engine(engine_path, outdir / HELDOUT_NAME)
        except VerificationFailed as failed:
            return EngineStep(f"TensorRT engine built, verification FAILED: {engine_path.name}", engine_path,
                              failed.outcome, failed)  # fmt: skip
    verdict = "" if outcome is None else f"; {outcome.summary()}"
    return EngineStep(f"TensorRT engine built: {engine_path.name}{verdict}", engine_path, outcome)


def engine_options(options: BuildOptions, outdir: Path) -> EngineOptions:
    """The build's engine options, with the folder's calibration cache for an INT8 build."""
    if options.precision is not Precision.INT8:
        return options.engine
    return replace(options.engine, calibration_cache=outdir / CACHE_NAME)


def profile_stage(
    options: BuildOptions, artifacts: dict[ArtifactRole, Path], cpu_model: ArtifactRole, source: SourceModel,
    stages: Stages, cpu: CpuRuntimeStep | None = None,
) -> QuickProfiles:  # fmt: skip
    """A first idea of speed on this CPU: FP32 and the model that runs here (on the CPU runtime the build chose),
    at batch 1."""
    if not options.profile_iterations:
        return QuickProfiles()
    runtimes = {}
    if cpu is not None and cpu.choice.runtime is RuntimeKind.OPENVINO:
        cpu_model, runtimes = ArtifactRole.INT8_TENSORRT, {ArtifactRole.INT8_TENSORRT: RuntimeKind.OPENVINO}
    with stages.stage("quick profile", None, "profile_s"):
        roles = [ArtifactRole.FP32, cpu_model]
        return quick_profiles(artifacts, roles, options.profile_iterations, source.contract, runtimes)


def placement_audit(artifacts: dict[ArtifactRole, Path]) -> dict[str, object] | None:
    """What the written TensorRT Q/DQ model's graph says of its placement (the report shows it too)."""
    model = artifacts.get(ArtifactRole.INT8_TENSORRT)
    return None if model is None else audit_placement(load_onnx(model)).as_dict()


def build_summary(
    options: BuildOptions, source: SourceModel, samples: BuildSamples, made: Quantized,
    fidelity: dict[ArtifactRole, FidelityReport], artifacts: dict[ArtifactRole, Path], engine: EngineStep,
    profile: QuickProfiles, stages: Stages, outdir: Path,
) -> BuildSummary:  # fmt: skip
    sections = made.sections() | {
        "holdout": samples.held_out.as_dict(),
        "fidelity": {role.value: report.as_dict() for role, report in fidelity.items()},
        "gate": options.gate.as_dict(),
        "engine_options": engine_options(options, outdir).as_dict(),
        "engine": engine.note,
        "engine_verification": None if engine.verification is None else engine.verification.to_json(),
        "placement_audit": placement_audit(artifacts),
        "profile": list(profile.lines),
        "quick_profile": profile.as_dict() if profile.lines else None,
        "timings": stages.total(),
    }
    return BuildSummary(
        options.precision, options.recipe(), source.weights, source.random_weights, source.input.to_json(),
        dict(artifacts),
        None, sections,
    )  # fmt: skip


def write_report(outdir: Path, stages: Stages) -> tuple[Path | None, tuple[str, ...]]:
    """report.html of the finished folder; a failure to draw it costs the report, not the build (an older
    report is removed, so none describes another build)."""
    try:
        with stages.stage("report.html"):
            return write_build_report(outdir), ()
    except Exception as exc:  # the models and summary are written and kept; the view can be made again
        (outdir / REPORT_NAME).unlink(missing_ok=True)
        return None, (f"report.html not written ({exc.__class__.__name__}: {exc}); `edgeres report {outdir}` retries",)


def finish_build(
    current: BuildSet, summary: BuildSummary, fidelity: dict[ArtifactRole, FidelityReport], options: BuildOptions
) -> tuple[BuildSummary, FidelityError | None]:
    """Write the summary with the gate's verdict: a failed gate is a finished set whose report says why."""
    failure = next((exc for report in fidelity.values() if (exc := gate_failure(report, options)) is not None), None)
    return current.finish(replace(summary, gate_passed=failure is None)), failure


def gate_not_met(failure: FidelityError, result: BuildResult) -> GateNotMet:
    """The failure, worded with what automatic fallback did when it ran."""
    search = result.analysis.fallback
    if search is None:
        return GateNotMet(str(failure), result)
    kept, option = len(search.keep_float), keep_float_option(search.keep_float)
    if search.met:
        return GateNotMet(f"{failure} (with the {kept} layer(s) automatic fallback kept in float: {option})", result)
    return GateNotMet(
        f"{failure}; automatic fallback wrote its best candidate ({kept} layer(s) in float, {option}) but could "
        f"not meet the gate within {search.max_fallback} layers",
        result,
    )


def gate_failure(report: FidelityReport, options: BuildOptions) -> FidelityError | None:
    try:
        check_gate(report, options.gate)
    except FidelityError as exc:
        return exc
    return None
