"""How the CLI shows the INT8 analysis: the sensitivity split and table, the fallback curve and its choice."""

from __future__ import annotations

import math

from edgeres.flow.int8_analysis import Int8Analysis
from edgeres.quantize.fallback import FallbackSearch, FallbackStep, keep_float_option
from edgeres.quantize.fidelity import sqnr_text
from edgeres.quantize.sensitivity import SensitivityReport

TABLE_ROWS = 10  # layers printed (sensitivity.json has all)


def analysis_lines(analysis: Int8Analysis) -> list[str]:
    lines: list[str] = []
    if analysis.sensitivity is not None:
        lines += [sensitivity_split(analysis.sensitivity), *sensitivity_table(analysis.sensitivity)]
    if analysis.fallback is not None:
        lines += fallback_lines(analysis.fallback)
    return lines


def sensitivity_split(report: SensitivityReport) -> str:
    """One line: the whole model's error and its weight/activation shares."""
    return (
        f"sensitivity on {report.samples} held-out samples: all INT8 {sqnr_text(report.int8.sqnr_db)}, "
        f"weights only {sqnr_text(report.weights_only.sqnr_db)}, "
        f"activations only {sqnr_text(report.activations_only.sqnr_db)} "
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
                sqnr_text(item.float_alone.sqnr_db),
                f"{gain:+.2f} dB" if math.isfinite(gain) else "exact",
                sqnr_text(item.int8_alone.sqnr_db),
                f"{item.float_alone.top1_agreement:.0%}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]


def fallback_lines(search: FallbackSearch) -> list[str]:
    """The curve, one line per step, then the choice and the option that reproduces it."""
    lines = []
    for step in search.steps:
        accuracy = "" if step.measure.top1_accuracy is None else f", accuracy {step.measure.top1_accuracy:.1%}"
        added = f"+{step.kept[-1]}" if step.kept else "all INT8"
        lines.append(
            f"fallback {len(step.kept)} kept ({added}): logits SQNR {sqnr_text(step.measure.sqnr_db)}, "
            f"top-1 agreement {step.measure.top1_agreement:.0%}{accuracy}, {step.mac_share:.1%} of MACs in float, "
            f"CPU {step.latency_ms:.1f} ms{tensorrt_note(step)}"
        )
    verdict = "meets the gate" if search.met else f"best found, gate NOT met within {search.max_fallback} layers"
    chosen = keep_float_option(search.keep_float)
    lines.append(f"fallback chose {len(search.keep_float)} layer(s) ({verdict}): {chosen}")
    return lines


def tensorrt_note(step: FallbackStep) -> str:
    """Whether the step met the gate: the twin first, then (where it did) the TensorRT model.

    Said in words, since a rounded figure (38.0 dB) can sit just below its limit (38 dB)."""
    if step.tensorrt is None:
        return "; short of the gate"
    verdict = "gate met" if step.passed else "short of the gate"
    return f"; TensorRT model {sqnr_text(step.tensorrt.sqnr_db)}, {verdict}"
