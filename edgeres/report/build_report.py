"""`report.html` of a build folder: what a person reads to decide whether the INT8 (or FP16) model can ship.

Everything comes from the folder: the typed build summary, the held-out set (heldout.npz), sensitivity.json
and the shipped models' graphs. Nothing is measured again, so `edgeres report DIR` gives the same page the
build wrote. The page is one file: figures and pictures inline, no script, and a Content-Security-Policy that
forbids every request, so it opens offline in any browser and cannot fetch anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import __version__
from edgeres.artifacts.atomic import read_json_object, write_bytes_atomic
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.class_names import ClassNames, class_names_for
from edgeres.artifacts.completion import build_status
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import UserInputError
from edgeres.export.record import read_model_spec
from edgeres.frames.contract import InputSpec
from edgeres.quantize.calibration_evidence import TensorEvidence, read_evidence
from edgeres.quantize.fidelity import FidelityReport, sqnr_text
from edgeres.quantize.gate import FidelityGate
from edgeres.report import figures
from edgeres.report.gallery import Gallery, gallery
from edgeres.report.graph_audit import LayerPlacement, PlacementAudit, audit_placement, layer_placements, resnet_grid
from edgeres.report.render import REPORT_NAME, render
from edgeres.report.stats import Proportion, from_fraction
from edgeres.runtime.cpu_choice import recorded_cpu_runtime, recorded_openvino
from edgeres.runtime.heldout import HELDOUT_NAME, HeldOutReference

EVIDENCE_SHOWN = 6  # histograms drawn: the inputs of the layers that lost the most
SENSITIVITY_SHOWN = 15
MODEL_ORDER = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME, ArtifactRole.FP16)
MODEL_NAMES = {
    ArtifactRole.FP32: "FP32 (reference)",
    ArtifactRole.INT8_TENSORRT: "INT8, TensorRT Q/DQ model",
    ArtifactRole.INT8_ONNXRUNTIME: "INT8, CPU twin",
    ArtifactRole.FP16: "FP16",
}


@dataclass(frozen=True)
class ModelRow:
    """One shipped model against FP32 on the held-out set."""

    role: ArtifactRole
    title: str
    file: str
    sqnr: str
    agreement: Proportion
    disagreements: int
    top5_overlap: float
    top1: Proportion | None  # against the labels, when known
    top5: Proportion | None
    failures: tuple[str, ...]


@dataclass(frozen=True)
class KeptLayer:
    name: str
    why: str


@dataclass(frozen=True)
class SensitivityRow:
    name: str
    op: str
    macs: int
    gain: float  # logits SQNR gained with only this layer in float (dB)


@dataclass(frozen=True)
class EvidenceFigure:
    layer: str
    tensor: str
    layer_sqnr: str
    tensor_sqnr: str
    picture: str


@dataclass
class BuildReportPage:
    """What the template shows; each section None or empty when the build has nothing to say there."""

    folder: str
    status: str | None
    precision: str
    gate_passed: bool | None
    gate: FidelityGate
    command: str | None
    samples: int
    labelled: bool
    reference_top1: Proportion | None
    reference_top5: Proportion | None
    rows: list[ModelRow]
    weights: str
    input_text: str
    grid: list[tuple[str, list[tuple[str, list[LayerPlacement]]]]] = field(default_factory=list)
    audit: PlacementAudit | None = None
    kept: list[KeptLayer] = field(default_factory=list)
    layer_profile: str | None = None
    evidence: list[EvidenceFigure] = field(default_factory=list)
    evidence_note: str = ""
    sensitivity: list[SensitivityRow] = field(default_factory=list)
    sensitivity_note: str = ""
    fallback: dict[str, Any] | None = None
    fallback_figure: str | None = None
    gallery: Gallery | None = None
    gallery_roles: list[ArtifactRole] = field(default_factory=list)
    speed_lines: list[str] = field(default_factory=list)
    speed_rows: list[tuple[str, int, float, float, float]] = field(default_factory=list)
    latency_figure: str | None = None
    engine_note: str = ""
    cpu_runtime: str | None = None  # which runtime runs the INT8 model on a CPU, and why
    engine_verification: str | None = None
    provenance: list[tuple[str, str]] = field(default_factory=list)
    hashes: list[tuple[str, str]] = field(default_factory=list)
    recipe: list[tuple[str, str]] = field(default_factory=list)
    edgeres_version: str = __version__


def _class_names(folder: Path, summary: BuildSummary, classes: int) -> ClassNames:
    """The model's recorded names, ImageNet's for 1000 classes, else class numbers."""
    fp32 = summary.located(ArtifactRole.FP32, folder)
    spec = read_model_spec(fp32) if fp32 is not None else None
    try:
        return class_names_for(classes, recorded=spec.class_names if spec is not None else None)
    except UserInputError:
        return ClassNames(tuple(f"class {k}" for k in range(classes)), "class numbers")


def _row(role: ArtifactRole, title: str, report: FidelityReport, failures: list[str], summary: BuildSummary
         ) -> ModelRow:  # fmt: skip
    path = summary.artifacts.get(role)
    accuracy, n = report.accuracy, report.samples
    agreement = from_fraction(report.top1_agreement, n)
    return ModelRow(
        role=role, title=title, file=path.name if path is not None else "", sqnr=sqnr_text(report.sqnr_db),
        agreement=agreement, disagreements=n - agreement.hits, top5_overlap=report.top5_overlap,
        top1=None if accuracy is None else from_fraction(accuracy.candidate_top1, n),
        top5=None if accuracy is None else from_fraction(accuracy.candidate_top5, n), failures=tuple(failures),
    )  # fmt: skip


def _rows(fidelity: dict[ArtifactRole, FidelityReport], gate: FidelityGate, summary: BuildSummary) -> list[ModelRow]:
    return [_row(role, MODEL_NAMES[role], fidelity[role], gate.failures(fidelity[role]), summary)
            for role in MODEL_ORDER if role in fidelity]  # fmt: skip


def _openvino_row(summary: BuildSummary, where: str) -> ModelRow | None:
    """The TensorRT Q/DQ model as OpenVINO ran it, where the build measured that (edgeres.flow.cpu_runtime)."""
    measured = recorded_openvino(summary, where)
    if measured is None:
        return None
    title = f"{MODEL_NAMES[ArtifactRole.INT8_TENSORRT]} on OpenVINO {measured.version.split('-')[0]}"
    return _row(ArtifactRole.INT8_TENSORRT, title, measured.fidelity, list(measured.failures), summary)


def _kept_layers(summary: BuildSummary, sensitivity: dict[str, float]) -> list[KeptLayer]:
    recipe = Fields.of(summary.recipe, "options")
    user = recipe.items("keep_float", str) or ()
    fallback = Fields.of(summary.sections.get("fallback"), "fallback")
    automatic = fallback.items("keep_float", str) or ()
    kept = [KeptLayer(name, "--keep-float (given)") for name in user]
    for name in automatic:
        gain = sensitivity.get(name)
        why = "automatic fallback" + (f" (alone in float: +{gain:.1f} dB logits SQNR)" if gain is not None else "")
        kept.append(KeptLayer(name, why))
    return kept


def _sensitivity(folder: Path, summary: BuildSummary) -> tuple[list[SensitivityRow], dict[str, float]]:
    path = summary.located(ArtifactRole.SENSITIVITY, folder)
    if path is None:
        return [], {}
    data = Fields.of(read_json_object(path, "sensitivity report"), str(path))
    layers = [Fields.of(layer, f"{path}: layers") for layer in data.items("layers", dict) or ()]
    gains = {}
    rows = []
    for layer in layers:
        gain = layer.data.get("float_alone_gain_db")
        value = float(gain) if isinstance(gain, int | float | str) else math.nan
        name = layer.require("name", str)
        gains[name] = value
        rows.append(SensitivityRow(name, layer.get("op", str) or "", layer.get("macs", int) or 0, value))
    rows.sort(key=lambda row: -row.gain if math.isfinite(row.gain) else math.inf)
    return rows[:SENSITIVITY_SHOWN], gains


def _evidence(
    folder: Path, summary: BuildSummary, report: FidelityReport | None
) -> tuple[list[EvidenceFigure], str]:
    raw = summary.sections.get("calibration_evidence")
    if raw is None:
        return [], (
            "No histograms: the ranges were reused from calibration_cache.json or calibrated with max (which keeps "
            "none). Rebuild with --recalibrate (and another --calib-algo than max) to see them."
        )
    evidence: dict[str, TensorEvidence] = read_evidence(raw, f"{folder / SUMMARY_NAME}: calibration_evidence")
    fp32 = summary.located(ArtifactRole.FP32, folder)
    if report is None or fp32 is None:
        return [], "No per-layer pass to choose layers from."
    producer_input = {  # a Constant node has no input
        output: node.input[0] for node in load_onnx(fp32, weights=False).graph.node if node.input
        for output in node.output
    }  # fmt: skip
    shown: list[EvidenceFigure] = []
    for layer in report.worst_layers:
        tensor = producer_input.get(layer.tensor, "")
        item = evidence.get(tensor)
        if item is None or any(figure.tensor == tensor for figure in shown):  # one input may feed two layers
            continue
        title = f"input of {layer.tensor}"
        shown.append(
            EvidenceFigure(
                layer.tensor, tensor, sqnr_text(layer.sqnr_db), sqnr_text(item.sqnr_db),
                figures.evidence_histogram(item, title),
            )
        )  # fmt: skip
        if len(shown) == EVIDENCE_SHOWN:
            break
    return shown, ""


def _fallback(summary: BuildSummary, gate: FidelityGate) -> tuple[dict[str, Any] | None, str | None]:
    raw = summary.sections.get("fallback")
    if raw is None:
        return None, None
    fallback = Fields.of(raw, "fallback")
    steps = [Fields.of(step, "fallback.curve") for step in fallback.items("curve", dict) or ()]
    counts = [step.get("count", int) or 0 for step in steps]
    sqnr = [float(v) if isinstance((v := step.data.get("sqnr_db")), int | float | str) else math.nan for step in steps]
    chosen = next((k for k, step in enumerate(steps) if step.get("passed", bool)), len(steps) - 1)
    table = {
        "met": fallback.get("met", bool),
        "keep_float_option": fallback.get("keep_float_option", str) or "",
        "max_fallback": fallback.get("max_fallback", int),
        "steps": [
            {"count": c, "sqnr": s, "kept": (step.items("kept", str) or ())[-1:] or ("(all INT8)",),
             "passed": step.get("passed", bool)}
            for c, s, step in zip(counts, sqnr, steps, strict=True)
        ],
    }  # fmt: skip
    figure = figures.fallback_curve(counts, sqnr, gate.min_sqnr_db, max(chosen, 0)) if steps else None
    return table, figure


def _speed(summary: BuildSummary) -> tuple[list[tuple[str, int, float, float, float]], str | None]:
    quick = summary.sections.get("quick_profile")
    if quick is None:
        return [], None
    section = Fields.of(quick, "quick_profile")
    samples = Fields.of(section.data.get("samples_ms"), "quick_profile.samples_ms")
    backends = section.mapping("backends", str) or {}
    series = {role: [float(t) for t in samples.items(role, float) or ()] for role in samples.data}

    def name(role: str) -> str:
        runtime = backends.get(role, "").split(" ")[0]
        return MODEL_NAMES.get(ArtifactRole(role), role) + (f" on {runtime}" if runtime else "")

    rows = [(name(role), len(times), *np.percentile(times, [50, 90, 99]).tolist())
            for role, times in series.items() if times]  # fmt: skip
    named = {name(role): times for role, times in series.items()}
    return rows, figures.latency_cdf(named)


def _provenance(folder: Path, summary: BuildSummary, spec: InputSpec | None) -> list[tuple[str, str]]:
    lines = [("build folder", str(folder)), ("weights", summary.weights)]
    if spec is not None:
        lines.append(("input", _input_text(spec)))
    calibration = Fields.of(summary.sections.get("calibration"), "calibration")
    for key in ("source", "samples", "cache", "reused_cache", "algo"):
        value = calibration.data.get(key)
        if value is not None:
            lines.append((f"calibration {key}", str(value)))
    model = summary.located(ArtifactRole.INT8_TENSORRT, folder) or summary.located(ArtifactRole.FP16, folder)
    sidecar = read_sidecar(model) if model is not None else None
    versions = Fields.of(sidecar.data.get("versions"), "versions") if sidecar is not None else None
    if versions is not None:
        lines += [(f"version of {name}", str(value)) for name, value in versions.data.items()]
    lines.append(("deploy configs", "each records this build's model and its SHA-256 in its own folder's sidecar"))
    return lines


def _input_text(spec: InputSpec) -> str:
    if spec.contract is not None:
        return f"raw {spec.contract.describe()} frames (front-end fused into the model)"
    return f"RGB floats [{', '.join(str(axis) for axis in spec.shape)}], {spec.normalization.describe()}"


def build_report_page(folder: Path) -> BuildReportPage:
    """Everything the report shows, read from a finished build folder (an unfinished one is refused)."""
    folder = Path(folder)
    status = build_status(folder)
    if status is not None:
        raise UserInputError(status)
    where = folder / SUMMARY_NAME
    summary = BuildSummary.read(where)
    sections = summary.sections
    gate = FidelityGate.from_json(sections.get("gate"), f"{where}: gate")
    fidelity_json = Fields.of(sections.get("fidelity"), f"{where}: fidelity")
    fidelity = {ArtifactRole(role): FidelityReport.from_json(value, f"{where}: fidelity.{role}")
                for role, value in fidelity_json.data.items()}  # fmt: skip
    spec = None if summary.input is None else InputSpec.from_json(dict(summary.input), f"{where}: input")
    engine_source = next((role for role in MODEL_ORDER if role in fidelity), None)
    first = fidelity.get(engine_source) if engine_source is not None else None
    heldout_path = summary.located(ArtifactRole.HELDOUT, folder) or folder / HELDOUT_NAME
    held_out = HeldOutReference.read(heldout_path) if heldout_path.is_file() else None
    classes = next(iter(held_out.logits.values())).shape[1] if held_out is not None else 0
    command = sections.get("command")
    accuracy = first.accuracy if first is not None else None
    samples = first.samples if first is not None else 0
    page = BuildReportPage(
        folder=str(folder),
        status=status,
        precision=summary.precision.value,
        gate_passed=summary.gate_passed,
        gate=gate,
        command=" ".join(command) if isinstance(command, list) else None,
        samples=samples,
        labelled=accuracy is not None,
        reference_top1=None if accuracy is None else from_fraction(accuracy.reference_top1, samples),
        reference_top5=None if accuracy is None else from_fraction(accuracy.reference_top5, samples),
        rows=_rows(fidelity, gate, summary) + [row for row in [_openvino_row(summary, str(where))] if row is not None],
        weights=summary.weights,
        input_text=_input_text(spec) if spec is not None else "RGB floats, ImageNet mean/std",
    )
    shipped = summary.located(engine_source, folder) if engine_source is not None else None
    if shipped is not None:
        graph = load_onnx(shipped)
        page.grid = resnet_grid(layer_placements(graph))
        page.audit = audit_placement(graph)
    page.sensitivity, gains = _sensitivity(folder, summary)
    if not page.sensitivity:
        page.sensitivity_note = "Not measured: build with --sensitivity, or run edgeres sensitivity on the folder."
    page.kept = _kept_layers(summary, gains)
    profiles = {MODEL_NAMES[role]: fidelity[role].layers for role in MODEL_ORDER if role in fidelity}
    page.layer_profile = figures.layer_sqnr_profile(profiles, [k.name for k in page.kept])
    if summary.precision is Precision.INT8:
        page.evidence, page.evidence_note = _evidence(folder, summary, first)
    else:
        page.evidence_note = "An FP16 build: nothing was calibrated."
    page.fallback, page.fallback_figure = _fallback(summary, gate)
    if held_out is not None:
        names = _class_names(folder, summary, classes)
        page.gallery_roles = [role for role in (ArtifactRole.FP32, *MODEL_ORDER) if role in held_out.logits]
        page.gallery = gallery(held_out, names, spec, page.gallery_roles)
    page.speed_lines = [str(line) for line in sections.get("profile") or []]
    choice = recorded_cpu_runtime(summary, str(where))
    page.cpu_runtime = None if choice is None else f"{choice.runtime.value} runs {choice.model} ({choice.reason})"
    page.speed_rows, page.latency_figure = _speed(summary)
    page.engine_note = str(sections.get("engine") or "")
    verification = sections.get("engine_verification")
    page.engine_verification = None if verification is None else str(verification)
    page.provenance = _provenance(folder, summary, spec)
    page.hashes = sorted(summary.sha256.items())
    page.recipe = [(key, str(value)) for key, value in summary.recipe.items()]
    return page


def write_build_report(folder: Path) -> Path:
    """Render and write `report.html` into the finished build folder `folder` (atomically)."""
    page = build_report_page(folder)
    path = Path(folder) / REPORT_NAME
    write_bytes_atomic(path, render("build_report.html.j2", page=page).encode("utf-8"))
    return path
