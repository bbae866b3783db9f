"""The profile report: JSON schema validation, comparison ratios, terminal tables and PNG plots."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from edgeres.artifacts.kinds import ArtifactKind
from edgeres.cli.app import app
from edgeres.errors import EdgeresError
from edgeres.frames.contract import FrameFormat
from edgeres.frames.yuv import ColorRange, ColorSpace
from edgeres.profile.dispatch import profile_artifacts
from edgeres.profile.machine import machine_info
from edgeres.profile.memory import FrameBytes
from edgeres.profile.options import FrameClip, ProfileOptions
from edgeres.profile.plots import write_plots
from edgeres.profile.report import (
    all_tables,
    comparison_rows,
    load_schema,
    options_json,
    report_json,
    validate_report,
)
from edgeres.profile.results import ArtifactProfile, BatchResult, MemoryReport, PipelineMode
from edgeres.profile.stats import LatencyStats
from edgeres.runtime.kinds import RuntimeKind
from edgeres.timing import RunLength
from tests.profile.test_profile import write_tiny_classifier

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def two_profiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[ArtifactProfile, ...], ProfileOptions]:
    folder = tmp_path_factory.mktemp("models")
    paths = [folder / "a.onnx", folder / "b.onnx"]
    for seed, path in enumerate(paths):
        write_tiny_classifier(path, seed=seed)
    options = ProfileOptions(batches=(1, 2), run_length=RunLength(iterations=5), warmup=1, layer_runs=2)
    return profile_artifacts(paths, options), options


def synthetic(name: str, medians_ms: dict[int, float], size: int) -> ArtifactProfile:
    """A profile with chosen latencies, to check the comparison arithmetic exactly."""
    batches = []
    for batch, median in medians_ms.items():
        samples = [median * 0.9, median, median * 1.1]
        stats = LatencyStats.from_ms(samples)
        fps = batch * 3 / (sum(samples) / 1e3)
        batches.append(BatchResult(batch, stats, fps, 2 * fps, 2, PipelineMode.THREADS, False, tuple(samples)))
    frame = FrameBytes.for_frame(224, 224, (3, 224, 224))
    memory = MemoryReport(size, None, "-", None, "-", 1, "-", None, "-", frame)
    shape = (None, 3, 224, 224)
    return ArtifactProfile(
        name, ArtifactKind.ONNX, RuntimeKind.ONNXRUNTIME, "cpu", None, "input", shape, tuple(batches), None, memory,
        None, (),
    )  # fmt: skip


def test_comparison_ratios() -> None:
    base = synthetic("fp32.onnx", {1: 20.0, 8: 100.0}, size=100)
    fast = synthetic("int8.onnx", {1: 8.0, 8: 25.0, 32: 90.0}, size=26)
    rows = comparison_rows((base, fast))
    assert [r["batch"] for r in rows] == [1, 8]  # batch 32 has no baseline
    assert rows[0]["median_speedup"] == pytest.approx(2.5)
    assert rows[1]["median_speedup"] == pytest.approx(4.0)
    assert rows[1]["sync_fps_ratio"] == pytest.approx(4.0)  # same spread, so throughput scales alike
    assert rows[0]["artifact_size_ratio"] == pytest.approx(0.26)
    assert comparison_rows((base,)) == []


def test_report_validates_against_the_shipped_schema(two_profiles, tmp_path: Path) -> None:
    profiles, options = two_profiles
    document = report_json(profiles, options, machine_info())
    validate_report(document)
    assert load_schema()["properties"]["schema_version"]["const"] == document["schema_version"] == 1
    assert len(document["comparison"]) == 2 and document["comparison"][0]["candidate"].endswith("b.onnx")
    first = document["artifacts"][0]
    assert len(first["batches"][0]["samples_ms"]) == first["batches"][0]["sync"]["count"] == 5
    # two ONNX artifacts: each batch carries the interleaved pass, each comparison row its ratio
    for artifact in document["artifacts"]:
        for batch in artifact["batches"]:
            interleaved = batch["interleaved"]
            assert interleaved["sync"]["count"] == interleaved["rounds"] * interleaved["calls_per_round"]
    for row in document["comparison"]:
        base, cand = (document["artifacts"][i]["batches"] for i in (0, 1))
        medians = [next(b["interleaved"]["sync"]["median_ms"] for b in side if b["batch"] == row["batch"])
                   for side in (base, cand)]  # fmt: skip
        assert row["interleaved_median_speedup"] == pytest.approx(medians[0] / medians[1])
    assert first["layers"]["top"][0]["share"] > 0
    # survives a round trip through a file
    path = tmp_path / "report.json"
    path.write_text(json.dumps(document))
    validate_report(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda d: d.pop("artifacts"), "(top level)"),
        (
            lambda d: d["artifacts"][0]["batches"][0]["sync"].__setitem__("p99_ms", -1.0),
            "artifacts/0/batches/0/sync/p99_ms",
        ),
        (lambda d: d.__setitem__("schema_version", 2), "schema_version"),
        (lambda d: d["artifacts"][0].__setitem__("kind", "tflite"), "artifacts/0/kind"),
        (lambda d: d["artifacts"][0]["layers"]["top"][0].__setitem__("share", 1.5), "artifacts/0/layers"),
    ],
)
def test_schema_rejects_broken_reports(two_profiles, breakage, where: str) -> None:
    profiles, options = two_profiles
    document = copy.deepcopy(report_json(profiles, options, machine_info()))
    breakage(document)
    with pytest.raises(EdgeresError, match="breaks its schema at " + re.escape(where)):
        validate_report(document)


def test_single_artifact_report_has_no_interleaved_fields(tmp_path: Path) -> None:
    path = tmp_path / "only.onnx"
    write_tiny_classifier(path)
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=3), warmup=0, layers=False)
    document = report_json(profile_artifacts([path], options), options, machine_info())
    validate_report(document)
    assert "interleaved" not in document["artifacts"][0]["batches"][0] and document["comparison"] == []


def test_report_keeps_the_clip_flat(tmp_path: Path) -> None:
    """FrameClip carries its frames' format as one value; the report's options keep the flat fields."""
    clip = FrameClip(tmp_path / "clip.yuv", FrameFormat.parse("uyvy:640x480"), ColorSpace.BT709, ColorRange.FULL)
    assert options_json(ProfileOptions(clip=clip))["clip"] == {
        "path": str(tmp_path / "clip.yuv"),
        "width": 640,
        "height": 480,
        "layout": "uyvy",
        "colorspace": "bt709",
        "color_range": "full",
        "top_k": 5,
    }
    assert options_json(ProfileOptions())["clip"] is None


def test_comparison_uses_interleaved_medians_when_present() -> None:
    import dataclasses

    from edgeres.profile.results import InterleavedLatency

    def with_interleaved(profile: ArtifactProfile, median_ms: float) -> ArtifactProfile:
        stats = LatencyStats.from_ms([median_ms * 0.95, median_ms, median_ms * 1.05])
        batches = tuple(dataclasses.replace(b, interleaved=InterleavedLatency(stats, 3, 1)) for b in profile.batches)
        return dataclasses.replace(profile, batches=batches)

    base = with_interleaved(synthetic("fp32.onnx", {1: 20.0}, size=100), 30.0)
    fast = with_interleaved(synthetic("int8.onnx", {1: 8.0}, size=26), 10.0)
    (row,) = comparison_rows((base, fast))
    assert row["median_speedup"] == pytest.approx(2.5)  # their own runs in turn
    assert row["interleaved_median_speedup"] == pytest.approx(3.0)
    console = Console(record=True, width=200)
    for table in all_tables((base, fast)):
        console.print(table)
    text = console.export_text()
    assert "(interleaved)" in text and "interleaved pass, 3 rounds" in text
    # median interleaved, p99 not
    assert re.search(r"int8\.onnx \(onnxruntime\)\s*│\s*1\s*│\s*3\.00x\s*│\s*2\.50x", text)
    # a candidate without the pass (e.g. a TensorRT engine) keeps the ratio of the runs in turn, unmarked
    plain = synthetic("other.onnx", {1: 5.0}, size=20)
    rows = comparison_rows((base, fast, plain))
    assert "interleaved_median_speedup" not in rows[1] and rows[1]["median_speedup"] == pytest.approx(4.0)
    console = Console(record=True, width=200)
    for table in all_tables((base, fast, plain)):
        console.print(table)
    text = console.export_text()
    assert re.search(r"int8\.onnx \(onnxruntime\)\s*│\s*1\s*│\s*3\.00x i\s*│", text)
    assert re.search(r"other\.onnx \(onnxruntime\)\s*│\s*1\s*│\s*4\.00x\s*│", text) and "marked i" in text


def test_tables_name_every_artifact_and_the_comparison(two_profiles) -> None:
    profiles, _ = two_profiles
    console = Console(record=True, width=160)
    for table in all_tables(profiles):
        console.print(table)
    text = console.export_text()
    for expected in ("a.onnx", "b.onnx", "Against a.onnx", "median", "p99", "pipelined f/s", "slowest", "Gemm"):
        assert expected in text
    assert "x" in text.split("Against a.onnx")[1]


def test_plots_are_written_and_are_real_pngs(two_profiles, tmp_path: Path) -> None:
    import matplotlib.image

    profiles, _ = two_profiles
    written = write_plots(profiles, tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "throughput_vs_batch.png",
            "memory.png",
            "1-a_latency.png",
            "1-a_layers.png",
            "2-b_latency.png",
            "2-b_layers.png",
        ]
    )
    for path in written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 600
        assert float(np.std(image)) > 0.05  # not a blank canvas


def test_cli_writes_table_json_and_plots(tmp_path: Path) -> None:
    fp32, other = tmp_path / "fp32.onnx", tmp_path / "fp32_copy.onnx"
    write_tiny_classifier(fp32)
    write_tiny_classifier(other, seed=3)
    report, plots = tmp_path / "out" / "profile.json", tmp_path / "out"
    args = ["profile", str(fp32), str(other), "--batch", "1,8", "--iterations", "4", "--warmup", "1"]
    result = CliRunner().invoke(app, [*args, "--json", str(report), "--plot", str(plots)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "Against fp32.onnx" in result.output and "Hyndman-Fan type 7" in result.output
    document = json.loads(report.read_text())
    validate_report(document)
    assert [b["batch"] for b in document["artifacts"][1]["batches"]] == [1, 8]
    assert len(list(plots.glob("*.png"))) == 6



def test_cli_prints_hostile_names_as_written(tmp_path: Path) -> None:
    """Artifact and layer names are the user's: rich markup and matplotlib math in them print and plot as written."""
    source = tmp_path / "source.onnx"
    write_tiny_classifier(source)
    model = onnx.load(source)
    layer_names = ["[/]", "[red]x[/]", "$\\frac$"]
    for node, name in zip(model.graph.node[2:], layer_names, strict=True):  # pool, flatten, gemm: never fused
        node.name = name
    # a file name cannot hold "/": "[/]" and "[red]x[/]" are in the path, "[red]x" and "$...$" in the name
    artifacts = [tmp_path / "[" / "].onnx", tmp_path / "[red]x[" / "[red]x.onnx", tmp_path / "$\\frac$.onnx"]
    for path in artifacts:
        path.parent.mkdir(exist_ok=True)
        onnx.save(model, str(path))
    args = ["profile", *map(str, artifacts), "--iterations", "2", "--warmup", "0", "--plot", str(tmp_path / "plots")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in [*(p.name for p in artifacts), *layer_names]:
        assert name in result.output, name
    assert "Against ].onnx" in result.output
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2 + 2 * len(artifacts)  # latency and layers each


def test_a_report_that_cannot_be_validated_is_refused_before_anything_is_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken install is said up front, not after the measurement is thrown away."""
    import sys

    model = tmp_path / "tiny.onnx"
    write_tiny_classifier(model)
    measured: list[object] = []
    monkeypatch.setattr("edgeres.profile.dispatch.profile_artifacts", lambda *a, **k: measured.append(a) or ())
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # `import jsonschema` raises ImportError
    result = CliRunner().invoke(app, ["profile", str(model), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "needs the jsonschema package" in result.output, result.output
    assert measured == [] and not (tmp_path / "r.json").exists()


def test_artifacts_are_told_apart_by_their_shortest_distinct_path_at_80_columns(tmp_path: Path) -> None:
    """The natural comparison: one file name from two build folders, and two names that start alike."""
    for folder in ("mse", "max"):
        (tmp_path / folder).mkdir()
        write_tiny_classifier(tmp_path / folder / "model_int8_qdq.onnx")
    write_tiny_classifier(tmp_path / "max" / "model_int8_u8s8.onnx", seed=1)
    models = [tmp_path / "mse" / "model_int8_qdq.onnx", tmp_path / "max" / "model_int8_qdq.onnx",
              tmp_path / "max" / "model_int8_u8s8.onnx"]  # fmt: skip
    plots = str(tmp_path / "p")
    args = ["profile", *map(str, models), "--iterations", "3", "--warmup", "1", "--no-layers", "--plot", plots]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    first_column = "".join(line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│"))
    for label in ("mse/model_int8_qdq.onnx", "max/model_int8_qdq.onnx", "model_int8_u8s8.onnx"):
        assert label in first_column, result.output  # folded onto lines if need be, never cut to "model_in…"
    assert "…" not in first_column and "Against mse/model_int8_qdq.onnx" in result.output
    latency = sorted(p.name for p in (tmp_path / "p").glob("*_latency.png"))
    assert latency == ["1-mse_model_int8_qdq_latency.png", "2-max_model_int8_qdq_latency.png",
                       "3-model_int8_u8s8_latency.png"]  # fmt: skip
