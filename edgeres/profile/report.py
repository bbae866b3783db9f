"""Profile results as a versioned JSON document (schema shipped in the package) and as rich tables.

The JSON schema is `edgeres/profile/schemas/profile_report.schema.json`; `SCHEMA_VERSION` changes when a
field is removed or changes meaning (adding optional fields does not). Tables are returned, not
printed: only the CLI prints. Every title and cell is a rich `Text`, never a markup string: artifact and
layer names are the user's, and `[/]` in a file name must print as written.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from edgeres.artifacts.atomic import write_json_atomic
from edgeres.artifacts.kinds import ArtifactKind
from edgeres.errors import EdgeresError
from edgeres.profile.machine import MachineInfo
from edgeres.profile.options import ProfileOptions
from edgeres.profile.results import ArtifactProfile, BatchResult
from edgeres.profile.stats import PERCENTILE_DEFINITION, STD_DEFINITION

SCHEMA_ID = "edgeres-profile"
SCHEMA_VERSION = 1
SCHEMA_RESOURCE = "profile/schemas/profile_report.schema.json"
TERMINAL_LAYERS = 10

DEFINITIONS = {
    "percentile": PERCENTILE_DEFINITION,
    "std": STD_DEFINITION,
    "cv": "std / mean of the synchronous per-call latencies",
    "sync": "one call at a time, each waiting for its result (a camera loop); latency is per call of `batch` frames",
    "pipelined": "several calls in flight (see pipeline_mode); frames per wall-clock second",
    "speedup": "baseline value / candidate value for latency, candidate / baseline for frames per second",
    "interleaved": (
        "two or more ONNX artifacts: rounds alternating between them at each batch size (one untimed call, then "
        "timed calls), so CPU speed drift hits all alike; TensorRT engines take no part"
    ),
}


def _plain(value: Any) -> Any:
    """Dataclass trees -> JSON values: enums by value, paths and tuples made plain."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def comparison_rows(profiles: tuple[ArtifactProfile, ...]) -> list[dict[str, Any]]:
    """Each later artifact against the first, for every batch size both were measured at."""
    if len(profiles) < 2:
        return []
    baseline = profiles[0]
    base_batches = {b.batch: b for b in baseline.batches}
    rows = []
    for candidate in profiles[1:]:
        for result in candidate.batches:
            base = base_batches.get(result.batch)
            if base is None:
                continue
            row: dict[str, Any] = {
                "baseline": baseline.path,
                "baseline_runtime": baseline.runtime.value,
                "candidate": candidate.path,
                "candidate_runtime": candidate.runtime.value,
                "batch": result.batch,
                "median_speedup": _ratio(base.sync.median_ms, result.sync.median_ms),
                "p99_speedup": _ratio(base.sync.p99_ms, result.sync.p99_ms),
                "sync_fps_ratio": _ratio(result.sync_fps, base.sync_fps),
                "pipelined_fps_ratio": _ratio(result.pipelined_fps, base.pipelined_fps),
                "artifact_size_ratio": _ratio(candidate.memory.artifact_bytes, baseline.memory.artifact_bytes),
            }
            if base.interleaved is not None and result.interleaved is not None:
                interleaved = _ratio(base.interleaved.sync.median_ms, result.interleaved.sync.median_ms)
                if interleaved is not None:
                    row["interleaved_median_speedup"] = interleaved
            rows.append(row)
    return rows


def _batch_json(result: BatchResult) -> dict[str, Any]:
    document: dict[str, Any] = {
        "batch": result.batch,
        "sync": result.sync.to_dict(),
        "sync_fps": result.sync_fps,
        "pipelined": {"fps": result.pipelined_fps, "in_flight": result.in_flight, "mode": result.pipeline_mode.name},
        "unstable": result.unstable,
        "stages_ms": asdict(result.stages) if result.stages else None,
        "cuda_graph": result.graph.to_dict() if result.graph else None,
        "samples_ms": list(result.samples_ms),
    }
    if result.interleaved is not None:
        document["interleaved"] = _plain(asdict(result.interleaved))
    return document


def artifact_json(profile: ArtifactProfile) -> dict[str, Any]:
    return {
        "path": profile.path,
        "kind": profile.kind.value,
        "runtime": profile.runtime.value,
        "backend": profile.backend,
        "precision": profile.precision,
        "input": {"name": profile.input_name, "shape": list(profile.input_shape)},
        "batches": [_batch_json(b) for b in profile.batches],
        "layers": _plain(asdict(profile.layers)) if profile.layers else None,
        "memory": _plain(asdict(profile.memory)),
        "end_to_end": _plain(asdict(profile.end_to_end)) if profile.end_to_end else None,
        "warnings": list(profile.warnings),
    }


def options_json(options: ProfileOptions) -> dict[str, Any]:
    """The options as run. The clip keeps its flat form (path, width, height, layout, colour coding, top_k)."""
    document: dict[str, Any] = _plain(asdict(options))
    clip = options.clip
    if clip is not None:
        frames = clip.frames
        document["clip"] = _plain(
            {
                "path": clip.path,
                "width": frames.width,
                "height": frames.height,
                "layout": frames.layout,
                "colorspace": clip.colorspace,
                "color_range": clip.color_range,
                "top_k": clip.top_k,
            }
        )
    return document


def report_json(profiles: tuple[ArtifactProfile, ...], options: ProfileOptions, machine: MachineInfo) -> dict[str, Any]:
    """The whole report as a JSON-ready dict matching the shipped schema."""
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "definitions": DEFINITIONS,
        "options": options_json(options),
        "machine": _plain(asdict(machine)),
        "artifacts": [artifact_json(p) for p in profiles],
        "comparison": comparison_rows(profiles),
    }


def load_schema() -> dict[str, Any]:
    text = resources.files("edgeres").joinpath(SCHEMA_RESOURCE).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def require_validator() -> None:
    """Refuse, before anything is measured, a report that could not be validated (a broken install)."""
    try:
        import jsonschema  # noqa: F401
    except ImportError as exc:
        raise EdgeresError("validating a report needs the jsonschema package (pip install jsonschema)") from exc


def validate_report(document: dict[str, Any]) -> None:
    """Raise EdgeresError naming the first field that breaks the schema."""
    require_validator()
    import jsonschema

    try:
        jsonschema.validate(document, load_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise EdgeresError(f"profile report breaks its schema at {where}: {exc.message}") from exc


def write_report(path: Path, document: dict[str, Any]) -> None:
    write_json_atomic(Path(path), document)


def _mb(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:,.1f}" if value >= 1e6 else f"{value / 1e6:.3f}"


def _kb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e3:,.0f}"


def _ms(value: float) -> str:
    """Milliseconds with about three significant digits, so 0.0137 and 123 both read well."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _fps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _table(title: str, caption: str | None = None) -> Table:
    """A table whose title and caption print as written (they hold artifact names)."""
    return Table(
        title=Text(title, style="table.title"),
        caption=Text(caption, style="table.caption") if caption else None,
        title_justify="left",
    )


def _add_column(table: Table, column: str) -> None:
    """Numbers right-aligned; an artifact's name folds onto more lines rather than losing its end (two
    models whose names start alike would read the same at 80 columns)."""
    named = column == "artifact"
    table.add_column(column, justify="left" if named else "right", overflow="fold" if named else "ellipsis")


def _add_row(table: Table, *cells: str | Text) -> None:
    """A row whose cells print as written: a plain string becomes a `Text`, never rich markup."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def latency_table(profiles: tuple[ArtifactProfile, ...]) -> Table:
    in_flight = sorted({f"{b.in_flight} {b.pipeline_mode.name.lower()}" for p in profiles for b in p.batches})
    table = _table(
        "Latency per call in ms (synchronous, one call at a time) and throughput in frames/s",
        f"pipelined: calls in flight = {', '.join(in_flight)}; CV = std / mean; min, mean, p95, max in --json",
    )
    for column in ("artifact", "batch", "median", "p90", "p99", "CV", "sync f/s", "pipelined f/s"):
        _add_column(table, column)
    for profile in profiles:
        for result in profile.batches:
            s = result.sync
            cv = Text(f"{s.cv:.0%}", style="yellow" if result.unstable else "")
            artifact = Text.assemble(profile.described, "\n", (profile.backend, "dim"))
            _add_row(
                table, artifact, str(result.batch), _ms(s.median_ms), _ms(s.p90_ms), _ms(s.p99_ms), cv,
                _fps(result.sync_fps), _fps(result.pipelined_fps),
            )  # fmt: skip
    return table


def comparison_table(profiles: tuple[ArtifactProfile, ...]) -> Table | None:
    """Each later artifact against the first; the median speed-up comes from the interleaved pass where
    both took part in it (marked "i"), else from each artifact's own run in turn."""
    rows = comparison_rows(profiles)
    if not rows:
        return None
    interleaved = [r for r in rows if "interleaved_median_speedup" in r]
    table = _table(
        f"Against {profiles[0].described} (x > 1: faster / more)",
        _comparison_caption(profiles, len(interleaved) == len(rows)) if interleaved else None,
    )
    median_header = "median speed-up" + ("\n(interleaved)" if len(interleaved) == len(rows) else "")
    for column in ("artifact", "batch", median_header, "p99 speed-up", "sync frames/s", "pipelined frames/s"):
        _add_column(table, column)
    table.add_column("file size", justify="right")

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    shown = {(profile.path, profile.runtime.value): profile.described for profile in profiles}
    for row in rows:
        candidate = shown[row["candidate"], row["candidate_runtime"]]
        median = times(row["median_speedup"])
        if "interleaved_median_speedup" in row:
            median = times(row["interleaved_median_speedup"]) + ("" if len(interleaved) == len(rows) else " i")
        _add_row(
            table, candidate, str(row["batch"]), median, times(row["p99_speedup"]),
            times(row["sync_fps_ratio"]), times(row["pipelined_fps_ratio"]), times(row["artifact_size_ratio"]),
        )  # fmt: skip
    return table


def _comparison_caption(profiles: tuple[ArtifactProfile, ...], all_interleaved: bool) -> str:
    first = next(b.interleaved for p in profiles for b in p.batches if b.interleaved is not None)
    where = "median speed-up" if all_interleaved else "median speed-ups marked i"
    engines = any(p.kind is ArtifactKind.TENSORRT for p in profiles)
    return (
        f"{where}: interleaved pass, {first.rounds} rounds alternating between the ONNX artifacts, median of "
        f"each one's calls (sequential ratio: median_speedup in --json); other columns: each artifact's own run"
        + ("; TensorRT engines are left out of the interleaved pass" if engines else "")
    )


def memory_table(profiles: tuple[ArtifactProfile, ...]) -> Table:
    table = _table(
        "Memory in MB (10^6 bytes); one input frame in kB",
        "activations: TensorRT device memory, or onnxruntime's CPU arena peak; OpenVINO reports none (see --json "
        "for sources)",
    )
    columns = ("artifact", "file", "weights", "activations", "host peak RSS", "GPU peak")
    for column in (*columns, "frame YUV422 / RGB / float32"):
        _add_column(table, column)
    for profile in profiles:
        m, f = profile.memory, profile.memory.frame
        _add_row(
            table, profile.described, _mb(m.artifact_bytes), _mb(m.weights_bytes), _mb(m.activation_bytes),
            _mb(m.host_peak_rss_bytes), _mb(m.gpu_peak_bytes),
            f"{_kb(f.yuv422)} / {_kb(f.rgb24)} / {_kb(f.float32_network)} ({f.width}x{f.height})",
        )  # fmt: skip
    return table


def layers_table(profile: ArtifactProfile, shown: int = TERMINAL_LAYERS) -> Table | None:
    layers = profile.layers
    if layers is None:
        return None
    table = _table(
        f"{profile.described}: slowest {min(shown, len(layers.top))} of {layers.layer_count} layers, "
        f"batch {layers.batch}, mean of {layers.runs} runs ({layers.source})"
    )
    for column in ("layer", "op", "ms", "share"):
        table.add_column(column, justify="left" if column in ("layer", "op") else "right")
    for layer in layers.top[:shown]:
        _add_row(table, layer.name, layer.op_type, f"{layer.mean_ms:.3f}", f"{layer.share:.1%}")
    table.add_section()
    _add_row(table, "all layers", "", f"{layers.total_ms:.3f}", "100%")
    return table


def gpu_stages_table(profiles: tuple[ArtifactProfile, ...]) -> Table | None:
    rows = [(p, b) for p in profiles for b in p.batches if b.stages is not None]
    if not rows:
        return None
    table = _table("TensorRT stages (median ms, CUDA events) and CUDA-graph replay")
    for column in ("artifact", "batch", "H2D", "compute", "D2H", "sync median", "graph median"):
        _add_column(table, column)
    for profile, result in rows:
        assert result.stages is not None
        graph = f"{result.graph.median_ms:.3f}" if result.graph else "-"
        st = result.stages
        _add_row(
            table, profile.described, str(result.batch), f"{st.h2d_ms:.3f}", f"{st.compute_ms:.3f}", f"{st.d2h_ms:.3f}",
            f"{result.sync.median_ms:.3f}", graph,
        )  # fmt: skip
    return table


def end_to_end_table(profiles: tuple[ArtifactProfile, ...]) -> Table | None:
    rows = [p for p in profiles if p.end_to_end is not None]
    if not rows:
        return None
    table = _table("End to end: raw frame -> top-k, per frame (median / p99 ms)")
    for column in ("artifact", "read", "preprocess", "infer", "top-k", "total", "frames/s"):
        _add_column(table, column)
    for profile in rows:
        e = profile.end_to_end
        assert e is not None
        cells = [f"{s.median_ms:.2f} / {s.p99_ms:.2f}" for s in (e.read, e.preprocess, e.infer, e.postprocess, e.total)]
        _add_row(table, profile.described, *cells, f"{e.fps:,.1f}")
    return table


def machine_line(machine: MachineInfo, options: ProfileOptions) -> str:
    threads = options.threads or "backend default"
    versions = ", ".join(f"{k} {v}" for k, v in machine.versions.items() if v)
    gpu = machine.gpu["name"] if machine.gpu else "no GPU seen by NVML"
    return (
        f"{machine.cpu_model}, {machine.usable_cpus}/{machine.logical_cpus} CPUs usable, threads: {threads}; "
        f"{gpu}; {versions}"
    )


def all_tables(profiles: tuple[ArtifactProfile, ...]) -> list[Table]:
    """The terminal view, in reading order: latency, comparison, GPU stages, end to end, memory, layers."""
    tables = [latency_table(profiles), comparison_table(profiles), gpu_stages_table(profiles)]
    tables += [end_to_end_table(profiles), memory_table(profiles), *(layers_table(p) for p in profiles)]
    return [t for t in tables if t is not None]
