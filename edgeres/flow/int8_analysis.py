"""The INT8 accuracy questions `edgeres build` answers on request, from its one calibration: which layers
INT8 hurts (sensitivity: JSON and a plot) and which to keep in float to meet the gate (automatic fallback).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeres.artifacts.atomic import write_json_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.flow.fallback import (
    FallbackSearch,
    FallbackStep,
    fallback_evaluations,
    keep_float_option,
    search_fallback,
)
from edgeres.flow.options import BuildOptions
from edgeres.plotting import pyplot, save_png
from edgeres.progress import StageProgress
from edgeres.quantize.cpu_twin import exact_weight_type
from edgeres.quantize.qdq import QdqPlan
from edgeres.quantize.sensitivity import (
    HeldOutBatch,
    HeldOutLogits,
    QuantizedVariants,
    SensitivityReport,
    analyse_sensitivity,
    network_layers,
    variant_count,
)

SENSITIVITY_JSON = "sensitivity.json"
SENSITIVITY_PLOT = "sensitivity.png"
TABLE_ROWS = 10  # layers printed by the CLI (the JSON has all)


@dataclass(frozen=True)
class Int8Analysis:
    """What the analysis found: extra layers to keep in float, files written, summary entries, notes."""

    keep_float: tuple[str, ...] = ()
    artifacts: dict[ArtifactRole, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def as_labelled(batches: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]]) -> list[HeldOutBatch]:
    """Held-out batches as (inputs, labels or None)."""
    return [item if isinstance(item, tuple) else (item, None) for item in batches]


def analyse_int8(
    options: BuildOptions,
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    biases: Mapping[str, np.ndarray] | None,
    tensorrt_biases: Mapping[str, np.ndarray] | None,
    held_out: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray]],
    outdir: Path,
    bar: StageProgress,
) -> Int8Analysis:
    """Sensitivity (when asked) and automatic fallback (when asked), measured on the held-out samples."""
    logits = HeldOutLogits(model, as_labelled(held_out))
    variants = QuantizedVariants(
        model, plan, ranges, biases, exact_weight_type(), options.high_precision, tensorrt_biases
    )
    layers = network_layers(model, plan)
    artifacts: dict[ArtifactRole, Path] = {}
    summary: dict[str, Any] = {}
    notes: list[str] = []
    report = None
    if options.sensitivity:
        bar.begin("sensitivity", variant_count(layers))
        report = analyse_sensitivity(variants, logits, layers, bar.advance)
        bar.end()
        write_json_atomic(outdir / SENSITIVITY_JSON, report.as_dict())
        artifacts[ArtifactRole.SENSITIVITY] = outdir / SENSITIVITY_JSON
        artifacts[ArtifactRole.SENSITIVITY_PLOT] = sensitivity_plot(report, outdir / SENSITIVITY_PLOT)
        summary["sensitivity"] = {"samples": report.samples, "ranking": [s.layer.name for s in report.ranked()]}
        notes += [sensitivity_split(report), *sensitivity_table(report)]
    search = None
    if options.auto_fallback:
        reused = None if report is None else {s.layer.node: s.float_alone for s in report.layers}
        bar.begin("automatic fallback", fallback_evaluations(layers, options.max_fallback, reused is not None))
        search = search_fallback(variants, logits, layers, options.gate, options.max_fallback, reused, bar.advance)
        bar.end()
        summary["fallback"] = search.as_dict()
        notes += fallback_lines(search)
    keep = search.keep_float if search is not None else ()
    return Int8Analysis(keep, artifacts, summary, tuple(notes))


def _db(value: float) -> str:
    return f"{value:.1f} dB" if math.isfinite(value) else "exact"


def sensitivity_split(report: SensitivityReport) -> str:
    """One line: the whole model's error and its weight/activation shares."""
    return (
        f"sensitivity on {report.samples} held-out samples: all INT8 {_db(report.int8.sqnr_db)}, "
        f"weights only {_db(report.weights_only.sqnr_db)}, activations only {_db(report.activations_only.sqnr_db)} "
        f"logits SQNR; most sensitive: {', '.join(s.layer.name for s in report.ranked()[:3])}"
    )


def sensitivity_table(report: SensitivityReport, rows: int = TABLE_ROWS) -> list[str]:
    """Aligned lines: rank, layer, logits SQNR with it alone in float (and the gain), with it alone INT8."""
    header = ("#", "layer", "alone in float", "gain", "alone INT8", "agreement")
    table = [header]
    for rank, item in enumerate(report.ranked()[:rows], start=1):
        gain = item.float_alone.sqnr_db - report.int8.sqnr_db
        table.append(
            (
                str(rank),
                item.layer.name,
                _db(item.float_alone.sqnr_db),
                f"{gain:+.2f} dB" if math.isfinite(gain) else "exact",
                _db(item.int8_alone.sqnr_db),
                f"{item.float_alone.top1_agreement:.0%}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]


def fallback_lines(search: FallbackSearch) -> list[str]:
    """The curve, one line per step, then the choice and the option that reproduces it."""
    lines = []
    for step in search.steps:
        accuracy = "" if step.measure.accuracy is None else f", accuracy {step.measure.accuracy:.1%}"
        added = step.kept[-1] if step.kept else "none (all INT8)"
        lines.append(
            f"fallback {len(step.kept)} kept (+{added}): logits SQNR {_db(step.measure.sqnr_db)}, top-1 agreement "
            f"{step.measure.top1_agreement:.0%}{accuracy}, {step.mac_share:.1%} of MACs in float, "
            f"CPU {step.latency_ms:.1f} ms{tensorrt_note(step)}"
        )
    verdict = "meets the gate" if search.met else f"best found, gate NOT met within {search.max_fallback} layers"
    chosen = keep_float_option(search.keep_float)
    lines.append(f"fallback chose {len(search.keep_float)} layer(s) ({verdict}): {chosen}")
    return lines


def tensorrt_note(step: FallbackStep) -> str:
    """What the confirmation on the TensorRT model found, when the twin met the gate."""
    if step.tensorrt is None:
        return ""
    verdict = "gate met" if step.passed else "short of the gate"
    return f"; TensorRT model {_db(step.tensorrt.sqnr_db)}, {verdict}"


def sensitivity_plot(report: SensitivityReport, path: Path) -> Path:
    """Per layer along the network: the logits SQNR with that layer alone in float, and with it alone INT8."""
    plt = pyplot()
    positions = [s.layer.position for s in report.layers]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, len(positions) * 0.18), 7), sharex=True)
    gains = [s.float_alone.sqnr_db - report.int8.sqnr_db for s in report.layers]
    top.bar(positions, [g if math.isfinite(g) else 0.0 for g in gains], color="tab:blue")
    top.axhline(0.0, color="black", linewidth=0.8)
    top.set_ylabel("SQNR gain, layer alone in float (dB)")
    whole = _db(report.int8.sqnr_db)
    top.set_title(f"INT8 sensitivity per layer ({report.samples} held-out samples; all INT8 {whole})")
    alone = [s.int8_alone.sqnr_db for s in report.layers]
    finite = [a for a in alone if math.isfinite(a)]
    ceiling = (max(finite) + 5.0) if finite else 100.0
    bottom.plot(positions, [a if math.isfinite(a) else ceiling for a in alone], marker="o", color="tab:red")
    bottom.set_ylabel("logits SQNR, layer alone INT8 (dB)")
    bottom.set_xlabel("layer along the network")
    step = max(1, len(positions) // 25)
    bottom.set_xticks(positions[::step])
    bottom.set_xticklabels([s.layer.name for s in report.layers][::step], rotation=90, fontsize=7)
    return save_png(fig, path)
