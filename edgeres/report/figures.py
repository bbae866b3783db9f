"""The report's figures, drawn with matplotlib from the build summary's records and inlined as PNG data URIs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edgeres.plotting import literal, png_data_uri, pyplot
from edgeres.quantize.calibration_evidence import TensorEvidence
from edgeres.quantize.fidelity import LayerSqnr
from edgeres.quantize.histogram import CalibAlgo
from edgeres.quantize.qdq import matches_layer

ALGO_STYLES = {
    CalibAlgo.MAX: ("#7f7f7f", ":"),
    CalibAlgo.PERCENTILE: ("#9467bd", "-."),
    CalibAlgo.ENTROPY: ("#2ca02c", "--"),
    CalibAlgo.MSE: ("#ff7f0e", "--"),
}


def kept_positions(layers: Sequence[LayerSqnr], kept_float: Sequence[str]) -> list[int]:
    """Where in `layers` (Conv/Gemm outputs, named after their node) the layers kept in float are, as
    --keep-float names them (a module path such as "layer1.0.conv1", or a node name)."""
    return [
        index
        for index, layer in enumerate(layers)
        if any(matches_layer(layer.tensor.rsplit("_output_", 1)[0], name) for name in kept_float)
    ]


def layer_sqnr_profile(profiles: Mapping[str, Sequence[LayerSqnr]], kept_float: Sequence[str] = ()) -> str | None:
    """Per-layer SQNR against FP32 through the network, one line per model; kept-float layers marked."""
    drawn = {name: layers for name, layers in profiles.items() if layers}
    if not drawn:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 3.4))
    for name, layers in drawn.items():
        values = np.array([layer.sqnr_db for layer in layers], np.float64)
        finite = np.where(np.isfinite(values), values, np.nan)
        ax.plot(np.arange(len(layers)), finite, marker=".", linewidth=1.2, label=literal(name))
    for index in kept_positions(next(iter(drawn.values())), kept_float):
        ax.axvline(index, color="#1f77b4", alpha=0.25, linewidth=6)
    ax.set_xlabel("layer (Conv/Gemm outputs, network order)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("SQNR vs FP32 (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png_data_uri(fig)


def evidence_histogram(evidence: TensorEvidence, title: str) -> str:
    """One activation's |x| histogram (log counts), each algorithm's range and the chosen one."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    counts = np.array(evidence.counts, np.float64)
    width = evidence.top / len(counts) if len(counts) else 1.0
    ax.bar(np.arange(len(counts)) * width, counts, width=width, align="edge", color="#4c72b0", linewidth=0)
    ax.set_yscale("log")
    for algo, amax in evidence.ranges.items():
        color, style = ALGO_STYLES[algo]
        ax.axvline(amax, color=color, linestyle=style, linewidth=1.2, label=f"{algo.value} {amax:.3g}")
    ax.axvline(evidence.chosen, color="#d62728", linewidth=2.0, label=f"chosen {evidence.chosen:.3g}")
    ax.set_title(literal(title), fontsize=8)
    ax.set_xlabel("|activation|")
    ax.legend(fontsize=6, loc="upper right")
    return png_data_uri(fig)


def latency_cdf(samples_ms: Mapping[str, Sequence[float]]) -> str | None:
    """Empirical CDF of batch-1 call times, one line per model."""
    drawn = {name: np.sort(np.asarray(times, np.float64)) for name, times in samples_ms.items() if times}
    if not drawn:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    for name, times in drawn.items():
        ax.step(times, np.arange(1, len(times) + 1) / len(times), where="post", label=literal(name))
    ax.set_xlabel("latency per call, batch 1 (ms)")
    ax.set_ylabel("fraction of calls")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return png_data_uri(fig)


def fallback_curve(counts: Sequence[int], sqnr: Sequence[float], gate_db: float | None, chosen: int) -> str | None:
    """Logits SQNR of the CPU twin as layers are kept in float, the gate and the chosen step."""
    if not counts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.plot(counts, sqnr, marker="o")
    ax.plot([counts[chosen]], [sqnr[chosen]], marker="o", markersize=11, fillstyle="none", color="#d62728")
    if gate_db is not None:
        ax.axhline(gate_db, color="#d62728", linestyle="--", linewidth=1, label=f"gate {gate_db:g} dB")
        ax.legend(fontsize=8)
    ax.set_xlabel("layers kept in float")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("logits SQNR (dB)")
    ax.grid(alpha=0.3)
    return png_data_uri(fig)
