"""Where the time goes: per-layer times from ONNX Runtime's profiling JSON, OpenVINO's performance counters or
TensorRT's IProfiler.

Per-layer timing slows a run down (every kernel is timed and logged), so it is a separate pass
after the latency measurement, never mixed into it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.runtime.openvino_runner import OpenVinoRunner, import_openvino
from edgeres.runtime.ort_runner import OnnxRuntimeRunner

TOP_LAYERS = 20
_KERNEL_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class LayerTime:
    """One layer (ONNX Runtime, OpenVINO: one node after graph optimisation) averaged over the profiled runs."""

    name: str
    op_type: str
    mean_ms: float
    share: float  # of the summed time of all layers, 0..1


@dataclass(frozen=True)
class LayerProfile:
    """Top layers by time, plus what they sum to; `source` says which profiler produced it."""

    source: str
    batch: int
    runs: int
    layer_count: int
    total_ms: float  # sum of all layers' mean times (not only the top ones)
    top: tuple[LayerTime, ...]
    arena_peak_bytes: int | None = None  # ONNX Runtime: peak bytes in use in its CPU arena
    arena_held_bytes: int | None = None  # ONNX Runtime: bytes the arena reserved from the system


def rank_layers(
    totals_ms: Mapping[str, float], op_types: Mapping[str, str], runs: int, top: int = TOP_LAYERS
) -> tuple[float, tuple[LayerTime, ...]]:
    """Mean per run for each layer, sorted slowest first; returns (sum of all means, top entries)."""
    if runs < 1:
        raise EdgeresError("layer profile: no profiled runs to average")
    means = {name: total / runs for name, total in totals_ms.items()}
    overall = sum(means.values())
    ordered = sorted(means.items(), key=lambda item: (-item[1], item[0]))[:top]
    return overall, tuple(
        LayerTime(name, op_types.get(name, "?"), mean, mean / overall if overall > 0 else 0.0) for name, mean in ordered
    )


def _int_arg(args: Mapping[str, Any], key: str) -> int | None:
    value = args.get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def aggregate_onnxruntime_events(events: Iterable[Mapping[str, Any]], skip_runs: int, batch: int) -> LayerProfile:
    """Sum node kernel times from an ONNX Runtime profile (Chrome trace events), run by run.

    Node events come before the `model_run` session event that closes their run; the first
    `skip_runs` runs (first-run allocations, cold caches) are left out.
    """
    totals: dict[str, float] = {}
    op_types: dict[str, str] = {}
    pending: dict[str, float] = {}
    runs_seen = runs_kept = 0
    arena_peak: int | None = None
    arena_held: int | None = None
    for event in events:
        category, name = event.get("cat"), str(event.get("name", ""))
        if category == "Node" and name.endswith(_KERNEL_SUFFIX):
            node = name[: -len(_KERNEL_SUFFIX)]
            args = event.get("args", {}) or {}
            pending[node] = pending.get(node, 0.0) + float(event.get("dur", 0)) / 1e3  # microseconds -> ms
            op_types[node] = str(args.get("op_name", "?"))
            peak, held = _int_arg(args, "mem_in_use_peak"), _int_arg(args, "mem_arena_held")
            if peak is not None:
                arena_peak = max(arena_peak or 0, peak)
            if held is not None:
                arena_held = max(arena_held or 0, held)
        elif category == "Session" and name == "model_run":
            runs_seen += 1
            if runs_seen > skip_runs:
                runs_kept += 1
                for node, ms in pending.items():
                    totals[node] = totals.get(node, 0.0) + ms
            pending = {}
    if runs_kept == 0:
        raise EdgeresError(f"onnxruntime profile: {runs_seen} runs recorded, none left after skipping {skip_runs}")
    overall, top = rank_layers(totals, op_types, runs_kept)
    return LayerProfile(
        source="onnxruntime profiling (node kernel times)",
        batch=batch,
        runs=runs_kept,
        layer_count=len(totals),
        total_ms=overall,
        top=top,
        arena_peak_bytes=arena_peak,
        arena_held_bytes=arena_held,
    )


class ProfilingOnnxRuntimeRunner(OnnxRuntimeRunner):
    """An ONNX Runtime runner with the session's profiler on; its JSON goes to a private temp folder."""

    def __init__(self, artifact: Path, threads: int = 0) -> None:
        super().__init__(artifact, providers=None, threads=threads)
        self._folder = tempfile.TemporaryDirectory(prefix="edgeres-ortprof-")

    def _session_options(self) -> Any:
        options = super()._session_options()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(self._folder.name) / "ort")
        return options

    def read_events(self) -> list[dict[str, Any]]:
        """Stop profiling and return the trace events ONNX Runtime wrote."""
        if self._session is None:
            raise EdgeresError(f"{self.name}: load() and run the runner before reading its profile")
        path = Path(self._session.end_profiling())
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):  # some versions wrap events as {"traceEvents": [...]}
            loaded = loaded.get("traceEvents", [])
        return [e for e in loaded if isinstance(e, dict)]

    def _close_impl(self) -> None:
        super()._close_impl()
        self._folder.cleanup()


def profile_onnx_layers(artifact: Path, batch: np.ndarray, runs: int, warmup: int, threads: int = 0) -> LayerProfile:
    """Run `warmup + runs` inferences with ONNX Runtime's profiler on and aggregate per node."""
    runner = ProfilingOnnxRuntimeRunner(artifact, threads=threads)
    with runner:
        for _ in range(warmup + runs):
            runner.infer(batch)
        events = runner.read_events()
    return aggregate_onnxruntime_events(events, skip_runs=warmup, batch=int(batch.shape[0]))


class ProfilingOpenVinoRunner(OpenVinoRunner):
    """An OpenVINO runner compiled with its performance counters on (PERF_COUNT): each call times every node."""

    def _properties(self, ov: ModuleType) -> dict[str, Any]:
        return {**super()._properties(ov), ov.properties.enable_profiling(): True}

    def node_times(self) -> list[tuple[str, str, float]]:
        """(node, its type, milliseconds) of each node the last call executed (fused or skipped ones left out)."""
        if self._request is None:
            raise EdgeresError(f"{self.name}: load() and run the runner before reading its counters")
        executed = import_openvino().ProfilingInfo.Status.EXECUTED
        return [
            (str(info.node_name), str(info.node_type), info.real_time.total_seconds() * 1e3)
            for info in self._request.get_profiling_info()
            if info.status == executed
        ]


def profile_openvino_layers(
    artifact: Path, batch: np.ndarray, runs: int, warmup: int, threads: int = 0
) -> LayerProfile:
    """Run `warmup` inferences, then `runs` whose performance counters are summed per node."""
    totals: dict[str, float] = {}
    op_types: dict[str, str] = {}
    with ProfilingOpenVinoRunner(artifact, threads=threads) as runner:
        for _ in range(warmup):
            runner.infer(batch)
        for _ in range(runs):
            runner.infer(batch)
            for node, op_type, ms in runner.node_times():
                totals[node] = totals.get(node, 0.0) + ms
                op_types[node] = op_type
    overall, top = rank_layers(totals, op_types, runs)
    source = "OpenVINO performance counters (executed nodes' real time)"
    return LayerProfile(source, int(batch.shape[0]), runs, len(totals), overall, top)


def make_tensorrt_layer_collector(trt: Any) -> Any:
    """An IProfiler that sums `report_layer_time(layer_name, ms)` calls per layer.

    TensorRT calls it once per layer for each execution while it is set as
    `IExecutionContext.profiler` (TensorRT Python API, `tensorrt.IProfiler`).
    """

    class LayerTimeCollector(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.totals_ms: dict[str, float] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.totals_ms[layer_name] = self.totals_ms.get(layer_name, 0.0) + float(ms)

    return LayerTimeCollector()


def tensorrt_layer_profile(totals_ms: Mapping[str, float], runs: int, batch: int) -> LayerProfile:
    """Turn a collector's per-layer sums into the same profile shape as ONNX Runtime's."""
    overall, top = rank_layers(totals_ms, {}, runs)
    return LayerProfile("TensorRT IProfiler", batch, runs, len(totals_ms), overall, top)
