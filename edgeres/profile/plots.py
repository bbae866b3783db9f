"""PNG plots of a profile: latency histogram + CDF, throughput vs batch, slowest layers, memory."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeres.plotting import literal, pyplot, save_png
from edgeres.profile.results import ArtifactProfile

MB = 1e6


def _label(profile: ArtifactProfile) -> str:
    return literal(profile.described)


def _slug(index: int, profile: ArtifactProfile) -> str:
    """`1-resnet50_int8`: numbered, so two artifacts with one name in different folders do not collide."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(Path(profile.shown_name).with_suffix(""))) or "artifact"
    return f"{index}-{stem}"


def latency_plot(profile: ArtifactProfile, path: Path) -> Path:
    """Histogram and empirical CDF of synchronous per-call latency, one series per batch size.

    The x axis stops at 1.5 x the largest p95 so a few stalls do not squash the picture; the
    title says how many calls lie beyond it (all of them are in the JSON).
    """
    plt = pyplot()
    fig, (hist_ax, cdf_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    left = 0.95 * min(r.sync.min_ms for r in profile.batches)
    right = 1.5 * max(r.sync.p95_ms for r in profile.batches)
    beyond = sum(int(np.sum(np.asarray(r.samples_ms) > right)) for r in profile.batches)
    for result in profile.batches:
        samples = np.sort(np.asarray(result.samples_ms))
        label = f"batch {result.batch} (median {result.sync.median_ms:.3g} ms, n={result.sync.count})"
        shown = samples[samples <= right]
        hist_ax.hist(shown, bins=min(50, max(5, len(shown) // 4)), alpha=0.6, label=label)
        cdf_ax.step(samples, np.arange(1, len(samples) + 1) / len(samples), where="post", label=f"batch {result.batch}")
        cdf_ax.axvline(result.sync.p99_ms, linestyle=":", linewidth=1, color=cdf_ax.lines[-1].get_color())
    hist_ax.set(xlabel="latency per call (ms)", ylabel="calls", title="Latency histogram (synchronous)")
    cdf_ax.set(
        xlabel="latency per call (ms)", ylabel="fraction of calls at or below", title="Latency CDF (dotted: p99)"
    )
    cdf_ax.set_ylim(0, 1.02)
    for ax in (hist_ax, cdf_ax):
        ax.set_xlim(left, right)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    clipped = f"; {beyond} call(s) above {right:.3g} ms not drawn" if beyond else ""
    fig.suptitle(f"{_label(profile)} on {profile.backend}{clipped}")
    return save_png(fig, path)


def throughput_plot(profiles: Sequence[ArtifactProfile], path: Path) -> Path:
    """Frames per second against batch size: synchronous (solid) and pipelined (dashed), per artifact."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    batches: set[int] = set()
    for profile in profiles:
        xs = [r.batch for r in profile.batches]
        batches.update(xs)
        (line,) = ax.plot(xs, [r.sync_fps for r in profile.batches], marker="o", label=f"{_label(profile)} sync")
        in_flight = profile.batches[0].in_flight
        ax.plot(
            xs, [r.pipelined_fps for r in profile.batches], marker="s", linestyle="--", color=line.get_color(),
            label=f"{_label(profile)} pipelined ({in_flight} in flight)",
        )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(batches), [str(b) for b in sorted(batches)])
    ax.set_ylim(bottom=0)
    ax.set(xlabel="batch size (frames per call)", ylabel="throughput (frames/s)", title="Throughput vs batch size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def layers_plot(profile: ArtifactProfile, path: Path) -> Path | None:
    """Horizontal bars of the slowest layers (mean ms per run) with their share of all layer time."""
    layers = profile.layers
    if layers is None or not layers.top:
        return None
    plt = pyplot()
    top = list(reversed(layers.top))
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(top) + 1.6))
    names = [literal(f"{t.name[:40]} [{t.op_type}]") for t in top]
    bars = ax.barh(names, [t.mean_ms for t in top], color="tab:blue")
    for bar, layer in zip(bars, top, strict=True):
        ax.annotate(
            f" {layer.share:.1%}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center", fontsize=8
        )
    ax.set_xlim(0, max(t.mean_ms for t in top) * 1.15)
    ax.set(
        xlabel="mean time per run (ms); label: share of all layer time",
        title=f"{_label(profile)}: slowest {len(top)} of {layers.layer_count} layers, batch {layers.batch}",
    )
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return save_png(fig, path)


def memory_plot(profiles: Sequence[ArtifactProfile], path: Path) -> Path:
    """Left: file, weights, activations, host peak RSS, GPU peak (MB). Right: bytes per input frame (kB)."""
    plt = pyplot()
    fig, (model_ax, frame_ax) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    kinds = ("file", "weights", "activations", "host peak RSS", "GPU peak")
    width = 0.8 / len(profiles)
    x = np.arange(len(kinds))
    for i, profile in enumerate(profiles):
        m = profile.memory
        values = [m.artifact_bytes, m.weights_bytes, m.activation_bytes, m.host_peak_rss_bytes, m.gpu_peak_bytes]
        heights = [(v or 0) / MB for v in values]
        bars = model_ax.bar(x + i * width, heights, width, label=_label(profile))
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value is None else f"{value / MB:.3g}"
            model_ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", fontsize=7)
    model_ax.set_xticks(x + width * (len(profiles) - 1) / 2, kinds)
    model_ax.set(ylabel="MB (10^6 bytes)", title="Model memory (n/a: not measurable here)")
    model_ax.legend(fontsize=8)
    model_ax.grid(axis="y", alpha=0.3)

    frame = profiles[0].memory.frame
    forms = [("YUV 4:2:2", frame.yuv422), ("RGB 8-bit", frame.rgb24), ("float32 network input", frame.float32_network)]
    shown = [(name, value) for name, value in forms if value is not None]
    bars = frame_ax.bar(
        [n for n, _ in shown], [v / 1e3 for _, v in shown], color=["tab:green", "tab:orange", "tab:red"][: len(shown)]
    )
    for bar, (_, value) in zip(bars, shown, strict=True):
        frame_ax.annotate(
            f"{value / 1e3:,.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", fontsize=8
        )
    frame_ax.set(ylabel="kB per frame", title=f"One input frame ({frame.width}x{frame.height})")
    frame_ax.grid(axis="y", alpha=0.3)
    return save_png(fig, path)


def write_plots(profiles: Sequence[ArtifactProfile], folder: Path) -> list[Path]:
    """All plots for these profiles into `folder` (created); returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [
        throughput_plot(profiles, folder / "throughput_vs_batch.png"),
        memory_plot(profiles, folder / "memory.png"),
    ]
    for index, profile in enumerate(profiles, start=1):
        slug = _slug(index, profile)
        written.append(latency_plot(profile, folder / f"{slug}_latency.png"))
        layers = layers_plot(profile, folder / f"{slug}_layers.png")
        if layers is not None:
            written.append(layers)
    return written
