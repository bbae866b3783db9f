"""The INT8 accuracy questions `edgeres build` answers on request, from its one calibration: which layers
INT8 hurts (sensitivity: JSON and a plot) and which to keep in float to meet the gate (automatic fallback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.atomic import write_json_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.flow.options import AnalysisRequest
from edgeres.plotting import literal, pyplot, save_png
from edgeres.progress import Stages
from edgeres.quantize.fallback import (
    FallbackSearch,
    fallback_evaluations,
    fallback_metrics,
    search_fallback,
)
from edgeres.quantize.fidelity import HeldOutEvaluation, sqnr_text
from edgeres.quantize.int8 import Int8Calibration
from edgeres.quantize.sensitivity import SensitivityReport, analyse_sensitivity, network_layers, variant_count

SENSITIVITY_JSON = "sensitivity.json"
SENSITIVITY_PLOT = "sensitivity.png"


@dataclass(frozen=True)
class Int8Analysis:
    """What the analysis found, and the files it wrote."""

    sensitivity: SensitivityReport | None = None
    fallback: FallbackSearch | None = None
    artifacts: dict[ArtifactRole, Path] = field(default_factory=dict)

    @property
    def keep_float(self) -> tuple[str, ...]:
        """Layers the fallback keeps in float besides the user's (node names)."""
        return self.fallback.keep_float if self.fallback is not None else ()

    def sections(self) -> dict[str, Any]:
        """The build summary's sections for what was analysed."""
        sections: dict[str, Any] = {}
        if self.sensitivity is not None:
            ranking = [s.layer.name for s in self.sensitivity.ranked()]
            sections["sensitivity"] = {"samples": self.sensitivity.samples, "ranking": ranking}
        if self.fallback is not None:
            sections["fallback"] = self.fallback.as_dict()
        return sections


def analyse_int8(
    calibration: Int8Calibration,
    evaluation: HeldOutEvaluation,
    request: AnalysisRequest,
    outdir: Path,
    stages: Stages,
) -> Int8Analysis:
    """Sensitivity (when asked) and automatic fallback (when asked), measured on the held-out samples."""
    variants = calibration.variants()
    layers = network_layers(calibration.model, calibration.plan)
    report = search = None
    artifacts: dict[ArtifactRole, Path] = {}
    if request.sensitivity:
        with stages.stage("sensitivity", variant_count(layers)) as advance:
            report = analyse_sensitivity(variants, evaluation, layers, advance)
        write_json_atomic(outdir / SENSITIVITY_JSON, report.as_dict())
        artifacts[ArtifactRole.SENSITIVITY] = outdir / SENSITIVITY_JSON
        artifacts[ArtifactRole.SENSITIVITY_PLOT] = sensitivity_plot(report, outdir / SENSITIVITY_PLOT)
    if request.auto_fallback:
        reused = None if report is None else {s.layer.node: s.float_alone for s in report.layers}
        total = fallback_evaluations(layers, request.max_fallback, reused is not None)
        with stages.stage("automatic fallback", total) as advance:
            metrics = fallback_metrics(variants, evaluation)
            search = search_fallback(metrics, layers, request.gate, request.max_fallback, reused, advance)
    return Int8Analysis(report, search, artifacts)


def sensitivity_plot(report: SensitivityReport, path: Path) -> Path:
    """Per layer along the network: the logits SQNR with that layer alone in float, and with it alone INT8."""
    plt = pyplot()
    positions = [s.layer.position for s in report.layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, len(positions) * 0.18), 7), sharex=True)
    gains = [s.float_alone.sqnr_db - report.int8.sqnr_db for s in report.layers]
    top.bar(positions, [g if math.isfinite(g) else 0.0 for g in gains], color="tab:blue")
    top.axhline(0.0, color="black", linewidth=0.8)
    top.set_ylabel("SQNR gain, layer alone in float (dB)")
    whole = sqnr_text(report.int8.sqnr_db)
    top.set_title(f"INT8 sensitivity per layer ({report.samples} held-out samples; all INT8 {whole})")
    alone = [s.int8_alone.sqnr_db for s in report.layers]
    finite = [a for a in alone if math.isfinite(a)]
    ceiling = (max(finite) + 5.0) if finite else 100.0
    bottom.plot(positions, [a if math.isfinite(a) else ceiling for a in alone], marker="o", color="tab:red")
    bottom.set_ylabel("logits SQNR, layer alone INT8 (dB)")
    bottom.set_xlabel("layer along the network")
    step = max(1, len(positions) // 25)
    bottom.set_xticks(positions[::step])
    bottom.set_xticklabels([literal(s.layer.name) for s in report.layers][::step], rotation=90, fontsize=7)
    return save_png(fig, path)
