"""report.html of real builds, opened in a real headless browser (Debian's chromium).

The browser checks what a person gets: the page loads with no console message (a blocked request or a script
error would print one), shows the verdict, the precision map and the gallery, and fetches nothing. User text
(a class named like a script tag, a folder with & and quotes) is shown literally and runs nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.build_summary import BuildSummary
from edgeres.cli.app import app
from edgeres.export.from_weights import export_default
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import SUMMARY_NAME, build
from edgeres.model.arch import Arch
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.histogram import CalibAlgo, StreamingHistogram
from edgeres.report.build_report import REPORT_NAME
from edgeres.report.stats import wilson
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


def browse(page: Path, screenshot: Path | None = None, height: int = 4000) -> tuple[str, list[str]]:
    """The DOM chromium built from `page`, and every console message it logged (stderr at verbose level 0)."""
    assert CHROMIUM is not None
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
            "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size=1200,{height}"]  # fmt: skip
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    else:
        args.append("--dump-dom")
    done = subprocess.run([*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet18, random weights, a gate the plain INT8 model misses: fallback, sensitivity, a failed-then-met gate."""
    root = tmp_path_factory.mktemp("report")
    with pytest.warns(UserWarning, match="random"):
        fp32 = export_default(root / "r18.onnx", Arch.RESNET18, num_classes=10).path
    options = BuildOptions(
        onnx=fp32, calib_algo=CalibAlgo.MSE, calib_size=16, sensitivity=True, auto_fallback=True, max_fallback=2,
        gate=FidelityGate(min_sqnr_db=34.0), profile_iterations=5, build_engine=False,
    )  # fmt: skip
    return build(options, root / "build", command=["edgeres", "build", "--onnx", str(fp32)]).outdir


def test_the_build_writes_its_report_and_the_summary_keeps_its_data(int8_build: Path) -> None:
    summary = BuildSummary.read(int8_build / SUMMARY_NAME)
    assert (int8_build / REPORT_NAME).is_file()
    evidence = summary.sections["calibration_evidence"]
    assert evidence and all(len(item["counts"]) == 128 for item in evidence.values())
    assert set(next(iter(evidence.values()))["ranges"]) == {"max", "percentile", "entropy", "mse"}
    assert len(summary.sections["fidelity"]["int8_tensorrt"]["layers"]) == 20  # the convs; fc gives the logits
    assert len(summary.sections["quick_profile"]["samples_ms"]["fp32"]) == 5
    assert summary.sections["command"][:2] == ["edgeres", "build"]
    audit = summary.sections["placement_audit"]  # the written Q/DQ graph's placement, for tools as well as people
    assert audit["residual_adds"] == audit["residual_adds_quantized"] == 8 and audit["multi_scale_tensors"] == []
    assert audit["qdq_pairs"] > 0 and audit["frontend_precision"] is None


def test_the_report_shows_what_the_build_found(int8_build: Path) -> None:
    html = (int8_build / REPORT_NAME).read_text()
    assert "Gate passed." in html and "Limits: SQNR 34.0 dB" in html
    assert "edgeres build --onnx" in html  # the reproducing command
    assert html.count('class="cell int8"') == 20 and html.count('class="cell fp16"') == 1  # fc kept, FP16 remainder
    assert "automatic fallback (alone in float: +" in html
    assert "8 of 8" in html  # ResNet18's residual Adds, each with a quantized identity input
    assert html.count("data:image/png;base64,") >= 4  # SQNR profile, histograms, fallback curve, latency CDF
    assert 'id="gallery-items"' in html and "data:image/jpeg;base64," in html
    assert re.search(r"--keep-float \S+", html)
    assert len(html.encode()) < 3_000_000  # small enough to mail


def test_report_regenerates_from_the_folder_alone_byte_for_byte(int8_build: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(int8_build, folder)
    (folder / REPORT_NAME).unlink()
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    written = (folder / REPORT_NAME).read_text()
    assert written.replace(str(folder), str(int8_build)) == (int8_build / REPORT_NAME).read_text()


@needs_chromium
def test_a_browser_renders_it_offline_without_a_console_message(int8_build: Path, tmp_path: Path) -> None:
    dom, console = browse(int8_build / REPORT_NAME)
    assert console == []
    assert 'id="verdict-line"' in dom and "Gate passed." in dom
    assert dom.count('class="cell int8"') == 20
    assert 'id="gallery-items"' in dom
    sources = re.findall(r'\s(?:src|href)="([^"]*)"', dom)
    outside = [source[:40] for source in sources if not source.startswith("data:")]
    assert sources and not outside, outside
    shot = tmp_path / "int8_fallback.png"
    browse(int8_build / REPORT_NAME, shot, height=5600)
    assert shot.is_file() and shot.stat().st_size > 50_000


@needs_chromium
def test_a_blocked_request_would_be_seen(tmp_path: Path) -> None:
    """The console check can fail: a page like the report that asks for a remote image logs the refusal."""
    page = tmp_path / "page.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:\"></head><body><img src=\"https://example.com/x.png\"></body></html>"
    )
    assert browse(page)[1]


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier whose class names and folder are hostile text."""
    root = tmp_path_factory.mktemp("hostile") / 'a&b "quoted" <i>folder'
    root.mkdir()
    names = ["<script>alert(1)</script>", 'x" onerror="alert(2)', "&amp; literally", "plain", "five"]
    # five classes: each gallery card lists every class in its top-5
    source = save_with_sidecar(tiny_classifier_proto(5), root / "tiny.onnx", "fp32", class_names=names)
    options = BuildOptions(onnx=source, calib_algo=CalibAlgo.MAX, calib_size=8, profile_iterations=0,
                           build_engine=False)  # fmt: skip
    return build(options, root / "build").outdir


def test_user_text_is_escaped(hostile_build: Path) -> None:
    html = (hostile_build / REPORT_NAME).read_text()
    assert "<script" not in html and "alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'x&#34; onerror=&#34;alert(2)' in html
    assert "&amp;amp; literally" in html
    assert "a&amp;b &#34;quoted&#34; &lt;i&gt;folder" in html
    assert "No histograms" in html  # max calibration keeps none, and the report says so


@needs_chromium
def test_a_browser_shows_hostile_text_literally_and_runs_nothing(hostile_build: Path) -> None:
    dom, console = browse(hostile_build / REPORT_NAME)
    assert console == []
    assert "<script" not in dom  # no element made from the class name
    assert not re.search(r"<[^>]*\sonerror\s*=", dom)  # and no attribute: the quote stayed inside the text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and 'x" onerror="alert(2)' in dom  # shown, as text


def test_an_unfinished_or_altered_folder_is_refused_in_one_line(int8_build: Path, tmp_path: Path) -> None:
    folder = tmp_path / "altered"
    shutil.copytree(int8_build, folder)
    with open(folder / "model_int8_qdq.onnx", "ab") as handle:
        handle.write(b"\0")
    for target in (folder, tmp_path / "missing"):
        result = CliRunner().invoke(app, ["report", str(target)])
        lines = [line for line in result.output.splitlines() if line]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output


def test_a_report_that_cannot_be_drawn_costs_the_report_not_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeres.flow import orchestrator

    def broken(folder: Path) -> Path:
        raise RuntimeError("figure failed")

    source = save_with_sidecar(tiny_classifier_proto(6), tmp_path / "tiny.onnx", "fp32")
    options = BuildOptions(onnx=source, calib_algo=CalibAlgo.MAX, calib_size=8, profile_iterations=0,
                           build_engine=False)  # fmt: skip
    out = tmp_path / "build"
    build(options, out)
    assert (out / REPORT_NAME).is_file()
    monkeypatch.setattr(orchestrator, "write_build_report", broken)
    result = build(options, out)  # a rebuild into the same folder: the older report must not stay
    assert result.report is None and not (out / REPORT_NAME).exists()
    assert any("report.html not written (RuntimeError: figure failed)" in note for note in result.notes)
    assert json.loads((out / SUMMARY_NAME).read_text())["complete"] is True


@pytest.mark.parametrize(("hits", "trials"), [(0, 12), (12, 12), (6, 12), (97, 100)])
def test_wilson_interval_matches_its_closed_form_and_stays_in_range(hits: int, trials: int) -> None:
    interval = wilson(hits, trials)
    assert 0.0 <= interval.low <= interval.value <= interval.high <= 1.0
    z, n, p = 1.959963984540054, trials, hits / trials
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    assert interval.low + interval.high == pytest.approx(2 * centre, abs=1e-12) or interval.low == 0.0


def test_wilson_of_all_twelve_agreeing_is_not_certainty() -> None:
    assert wilson(12, 12).low == pytest.approx(0.7575, abs=1e-3)  # the usual 3/n rule's neighbourhood


def test_histogram_sqnr_agrees_with_quantizing_the_values() -> None:
    from edgeres.quantize.calibration_evidence import histogram_sqnr

    values = np.abs(np.random.default_rng(0).standard_normal(200_000)).astype(np.float32)
    hist = StreamingHistogram()
    hist.add(values)
    amax = 3.0
    step = amax / 127
    quantized = np.minimum(np.round(values / step), 127) * step
    direct = 10 * np.log10(np.sum(values.astype(np.float64) ** 2) / np.sum((values - quantized) ** 2.0))
    assert histogram_sqnr(hist, amax) == pytest.approx(direct, abs=0.5)


def test_an_fp16_build_reports_no_placement_and_no_calibration(tmp_path: Path) -> None:
    from edgeres.artifacts.precision import Precision

    source = save_with_sidecar(tiny_classifier_proto(5), tmp_path / "tiny.onnx", "fp32")
    options = BuildOptions(precision=Precision.FP16, onnx=source, profile_iterations=0, build_engine=False)
    html = (build(options, tmp_path / "build").outdir / REPORT_NAME).read_text()
    assert "An FP16 build: nothing is quantized" in html and "An FP16 build: nothing was calibrated." in html
    assert 'class="cell fp16"' in html and 'class="cell int8"' not in html


def test_a_model_with_constant_nodes_gets_its_report(tmp_path: Path) -> None:
    """EfficientNet-Lite0's export holds Constant nodes (no inputs): the report's evidence pass must skip them."""
    from onnx import TensorProto, helper

    model = tiny_classifier_proto(4)
    scale = helper.make_node("Constant", [], ["half"], name="half",
                             value=helper.make_tensor("half_value", TensorProto.FLOAT, [], [0.5]))  # fmt: skip
    mul = helper.make_node("Mul", ["input", "half"], ["scaled"], name="scale")
    model.graph.node[0].input[0] = "scaled"
    model.graph.node.insert(0, mul)
    model.graph.node.insert(0, scale)
    path = save_with_sidecar(model, tmp_path / "constant.onnx", "fp32")
    options = BuildOptions(onnx=path, calib_algo=CalibAlgo.MSE, calib_size=8, profile_iterations=0,
                           build_engine=False)  # fmt: skip
    result = build(options, tmp_path / "build")
    assert result.report is not None and (tmp_path / "build" / REPORT_NAME).is_file(), result.notes
