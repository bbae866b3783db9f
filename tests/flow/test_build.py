"""`edgeres build` end to end on ResNet18 (few classes, fast) and once on ResNet50."""

from __future__ import annotations

import importlib.util
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.precision import Precision
from edgeres.artifacts.precision import Precision as EnginePrecision
from edgeres.cli.app import app
from edgeres.engine.from_onnx import engine_path_for
from edgeres.errors import FidelityError, UserInputError
from edgeres.export.from_weights import export_default
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import SUMMARY_NAME, build
from edgeres.frames.contract import InputContract
from edgeres.frames.images import cover_resize, default_calibration_dir, read_rgb
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.model.arch import Arch
from edgeres.quantize.artifacts import CACHE_NAME, TRT_TABLE_NAME
from edgeres.quantize.cache import StaleCacheError, read_trt_table
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.histogram import CalibAlgo
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from edgeres.samples.holdout import HOLDOUT_FRACTION, MAX_HOLDOUT
from tests.fixtures.faults import ENOSPC, fail_at_write

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
# INT8 of a random-weight ResNet measured 33-35 dB logits SQNR here; 20 dB (1% noise power) is the floor.
MIN_RANDOM_WEIGHTS_SQNR_DB = 20.0


@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.warns(UserWarning, match="random"):
        return export_default(tmp_path_factory.mktemp("r18") / "r18.onnx", Arch.RESNET18, num_classes=10).path


def test_holdout_is_disjoint_from_calibration(resnet18_onnx: Path) -> None:
    full = CalibrationSet(None, encoder_for(resnet18_onnx), calib_size=8)
    everything = list(full.pool)
    calibration, held = full.split_holdout(HOLDOUT_FRACTION, MAX_HOLDOUT)
    assert len(held) == 3 and len(calibration.pool) == 8  # 11 shipped photographs, a quarter held out
    assert full.pool == everything and full.summary.candidates == 11  # the split leaves the full set as it was
    assert calibration.summary.candidates == 8
    assert not {i.path for i in held} & {i.path for i in calibration.pool}
    assert sorted(map(str, (i.path for i in everything))) == sorted(
        map(str, (i.path for i in (*calibration.pool, *held)))
    )


def test_one_precision_enum() -> None:
    assert Precision is EnginePrecision
    with pytest.raises(UserInputError, match="INT8 or FP16"):
        BuildOptions(precision=Precision.FP32)


def test_int8_build_writes_models_report_and_summary(resnet18_onnx: Path, tmp_path: Path) -> None:
    options = BuildOptions(onnx=resnet18_onnx, calib_algo=CalibAlgo.MAX, calib_size=8, profile_iterations=0)
    result = build(options, tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    for name in ("int8_tensorrt", "int8_onnxruntime"):
        assert Path(summary["artifacts"][name]).is_file()
        assert (tmp_path / (Path(summary["artifacts"][name]).name + ".json")).is_file()  # sidecar
        report = summary["fidelity"][name]
        # 3 held-out photographs + 9 flips/crops of those same photographs
        assert report["samples"] == 12 and report["random_weights"] is True and "ill-conditioned" in report["note"]
        assert report["sqnr_db"] > MIN_RANDOM_WEIGHTS_SQNR_DB
        assert len(report["worst_layers"]) == 10
    assert summary["calibration"]["samples"] == 8 and summary["gate_passed"] is True
    assert summary["holdout"]["originals"] == 3 and summary["holdout"]["derived"] == 9
    assert len(summary["holdout"]["paths"]) == 3 and summary["profile"] == []
    assert any("12 held-out samples (3 originals + 9 flips/crops" in note for note in result.notes)
    header, scales = read_trt_table(tmp_path / TRT_TABLE_NAME)
    ranges = json.loads((tmp_path / "model_int8_qdq.onnx.json").read_text())["results"]["ranges"]
    assert header == "TRT-100300-EntropyCalibration2" and scales and set(scales) <= set(ranges)
    for name, scale in scales.items():
        assert scale == pytest.approx(ranges[name] / 127, rel=1e-6)
    assert summary["engine_options"]["calibration_cache"] == str(tmp_path / CACHE_NAME)
    qdq = onnx.load(result.artifacts["int8_tensorrt"])
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) > 0
    if not HAS_TENSORRT:
        assert "TensorRT engine not built" in summary["engine"] and "model_int8_qdq.onnx" in summary["engine"]


def test_gate_failure_raises_and_still_writes_the_report(resnet18_onnx: Path, tmp_path: Path) -> None:
    options = BuildOptions(
        onnx=resnet18_onnx, calib_algo=CalibAlgo.MAX, calib_size=4, gate=FidelityGate(200.0), profile_iterations=0
    )
    with pytest.raises(FidelityError, match="below the required 200 dB"):
        build(options, tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["gate_passed"] is False and summary["fidelity"]["int8_tensorrt"]["sqnr_db"] < 200


def test_fp16_build(resnet18_onnx: Path, tmp_path: Path) -> None:
    result = build(BuildOptions(precision=Precision.FP16, onnx=resnet18_onnx, profile_iterations=0), tmp_path)
    assert result.artifacts["fp16"].is_file() and "int8_tensorrt" not in result.artifacts
    assert result.fidelity["fp16"].sqnr_db > 40  # FP16 rounding only
    assert not any("calibrator" in note for note in result.notes)  # an FP16 build has none


def test_labelled_csv_reports_accuracy(resnet18_onnx: Path, tmp_path: Path) -> None:
    """Labels are FP32's own answers, so FP32 scores 100% and INT8 scores its top-1 agreement with FP32."""
    from edgeres.export.parity import run_onnx
    from edgeres.frames.images import imagenet_batch

    photos = sorted(default_calibration_dir().glob("*.jpg"))
    fp32_top1 = run_onnx(str(resnet18_onnx), imagenet_batch(read_rgb(p) for p in photos)).argmax(axis=1)
    csv = tmp_path / "labels.csv"
    csv.write_text("".join(f"{p},{label}\n" for p, label in zip(photos, fp32_top1, strict=True)))
    options = BuildOptions(
        onnx=resnet18_onnx, calib=csv, calib_algo=CalibAlgo.MAX, calib_size=4, profile_iterations=0,
        min_holdout_samples=0,  # only the held-out photographs themselves, whose labels are exact
    )  # fmt: skip
    result = build(options, tmp_path)
    report = result.fidelity["int8_tensorrt"]
    assert report.accuracy is not None and report.samples == 3
    assert report.accuracy.reference_top1 == 1.0 and report.accuracy.reference_top5 == 1.0
    assert report.accuracy.candidate_top1 == pytest.approx(report.top1_agreement)


def test_empty_calibration_folder_is_a_user_error(resnet18_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no calibration images"):
        build(BuildOptions(onnx=resnet18_onnx, calib=tmp_path / "empty", profile_iterations=0), tmp_path / "out")


def test_one_photo_cannot_be_split(resnet18_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(default_calibration_dir() / "chelsea.jpg", folder)
    with pytest.raises(UserInputError, match="at least 2 are needed"):
        build(BuildOptions(onnx=resnet18_onnx, calib=folder), tmp_path / "out")


def test_cli_build_and_bad_keep_float(resnet18_onnx: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["build", "--int8", "--onnx", str(resnet18_onnx), "--calib-size", "4", "--calib-algo", "max"]
    ok = runner.invoke(app, [*args, "-o", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert "logits SQNR" in ok.output and (tmp_path / "ok" / SUMMARY_NAME).is_file()
    assert "profile int8_onnxruntime vs fp32:" in ok.output and "x the speed at batch 1" in ok.output
    summary = json.loads((tmp_path / "ok" / SUMMARY_NAME).read_text())
    assert len(summary["profile"]) == 3 and summary["timings"]["profile_s"] > 0
    bad = runner.invoke(app, [*args, "--keep-float", "nope", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "layer 'nope' to keep in float" in bad.output and "Traceback" not in bad.output


def test_cli_no_profile_and_engine_options_reach_the_summary(resnet18_onnx: Path, tmp_path: Path) -> None:
    args = ["build", "--onnx", str(resnet18_onnx), "--calib-size", "4", "--calib-algo", "percentile"]
    args += ["--percentile", "99.9", "--calib-batch", "2", "--calib-seed", "5", "--no-profile", "-o", str(tmp_path)]
    engine = ["--batch", "1:8:32", "--workspace", "512", "--opt-level", "2", "--timing-cache", str(tmp_path / "t")]
    engine += ["--version-compatible", "--hardware-compat", "ampere-plus"]
    result = CliRunner().invoke(app, [*args, *engine])
    assert result.exit_code == 0, result.output
    assert "model_fp32.onnx on onnxruntime" not in result.output and "x the speed" not in result.output
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["profile"] == [] and "profile_s" not in summary["timings"]
    options = summary["engine_options"]
    assert options["batch"] == {"min": 1, "opt": 8, "max": 32} and options["workspace_mib"] == 512
    assert options["optimization_level"] == 2 and options["timing_cache"] == str(tmp_path / "t")
    assert options["version_compatible"] is True and options["hardware_compatibility"] == "ampere-plus"
    assert summary["calibration"]["algo"] == "percentile" and summary["calibration"]["percentile"] == 99.9


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch", "8:1:4"], "need 1 <= min <= opt <= max"),
        (["--batch", "1:x"], "expected N or MIN:OPT:MAX"),
        (["--opt-level", "9"], "optimisation level 9"),
        (["--workspace", "0"], "workspace 0 MiB"),
        (["--dla", "0", "--hardware-compat", "ampere-plus"], "cannot be hardware-compatible"),
        (["--hardware-compat", "turing"], "--hardware-compat 'turing'"),
        (["--percentile", "150"], "percentile 150"),
        (["--trt-table-version", "8.x"], "not MAJOR.MINOR.PATCH"),
        (["--calib-format", "yuyv:65x48"], "--calib-format: frame width 65 is odd"),
        (["--calib-format", "yuyv"], "--calib-format: frame format 'yuyv' is not FORMAT:WIDTHxHEIGHT"),
    ],
)
def test_cli_refuses_bad_build_options(resnet18_onnx: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["build", "--onnx", str(resnet18_onnx), "-o", str(tmp_path), *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / SUMMARY_NAME).exists()


@pytest.mark.skipif(HAS_TENSORRT, reason="checks the refusal on a machine without TensorRT")
def test_engine_without_tensorrt_is_one_line_exit_2(resnet18_onnx: Path, tmp_path: Path) -> None:
    args = ["engine", str(resnet18_onnx), "--batch", "1:4:8", "-o", str(tmp_path / "e")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error: TensorRT is not installed") and len(result.output.strip().splitlines()) <= 3
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
    missing = CliRunner().invoke(app, ["engine", "-o", str(tmp_path)])
    assert missing.exit_code == 2 and "Missing argument 'model'" in missing.output


def test_engine_path_for_folder_or_file() -> None:
    assert engine_path_for(Path("b/model_int8_qdq.onnx"), Path("out")) == Path("out/model_int8_qdq.engine")
    assert engine_path_for(Path("b/m.onnx"), Path("out/r50.plan")) == Path("out/r50.plan")


def assert_same_initializers(expected: onnx.ModelProto, actual: onnx.ModelProto) -> None:
    from onnx import numpy_helper

    want = {i.name: numpy_helper.to_array(i) for i in expected.graph.initializer}
    got = {i.name: numpy_helper.to_array(i) for i in actual.graph.initializer}
    assert want.keys() == got.keys()
    for name, array in want.items():
        if np.issubdtype(array.dtype, np.integer):
            np.testing.assert_array_equal(got[name], array, err_msg=name)
        else:
            scale = float(np.abs(array).max()) if array.size else 0.0
            rtol = max(1e-6, float(np.finfo(array.dtype).eps))  # one float16 step where the model stores FP16
            np.testing.assert_allclose(got[name], array, rtol=rtol, atol=rtol * scale, err_msg=name)


def test_calibration_cache_is_reused_and_a_changed_input_is_refused(resnet18_onnx: Path, tmp_path: Path) -> None:
    base = BuildOptions(onnx=resnet18_onnx, calib_algo=CalibAlgo.MAX, calib_size=4, profile_iterations=0)
    first = build(base, tmp_path)
    first_model = onnx.load(str(tmp_path / "model_int8_qdq.onnx"))
    cache = json.loads((tmp_path / CACHE_NAME).read_text())
    assert cache["samples"] == 4 and cache["key"]["algorithm"] == "max"
    assert not any("reused" in note for note in first.notes)
    second = build(base, tmp_path)
    assert any(note.startswith(f"reused calibration cache {tmp_path / CACHE_NAME}") for note in second.notes)
    assert second.summary.sections["calibration"]["reused_cache"] == str(tmp_path / CACHE_NAME)
    assert second.summary.sections["timings"]["calibration_s"] == 0.0
    # Bias correction's input means come from the calibration pass the first time and from a pass of
    # their own when the ranges are reused: the corrected model must not depend on which, beyond float
    # rounding (the two sessions expose different outputs, so onnxruntime may fuse differently).
    assert_same_initializers(first_model, onnx.load(str(tmp_path / "model_int8_qdq.onnx")))
    ranges = [json.loads((tmp_path / "model_int8_qdq.onnx.json").read_text())["results"]["ranges"]]
    assert ranges[0] == {name: entry["amax"] for name, entry in cache["tensors"].items()}
    with pytest.raises(
        StaleCacheError, match=r"changed: calibration data .*delete it to recalibrate, or recalibrate over it"
    ):
        build(replace(base, calib_size=5), tmp_path)
    with pytest.raises(StaleCacheError, match=r"changed: algorithm \(max -> mse\)"):
        build(replace(base, calib_algo=CalibAlgo.MSE), tmp_path)
    redone = build(replace(base, calib_algo=CalibAlgo.MSE, recalibrate=True), tmp_path)
    assert not any("reused" in note for note in redone.notes)
    assert json.loads((tmp_path / CACHE_NAME).read_text())["key"]["algorithm"] == "mse"
    args = ["build", "--onnx", str(resnet18_onnx), "--calib-size", "6", "--no-profile", "-o", str(tmp_path)]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "calibration data" in refused.output
    assert "recalibrate over it (--recalibrate)" in refused.output


CAMERA = InputContract(YuvLayout.YUYV, 320, 240, ColorSpace.BT709, ColorRange.FULL)


@pytest.fixture(scope="module")
def fused_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet18 (10 classes) with the YUYV 320x240 front-end fused in, as `edgeres export --input` makes it."""
    with pytest.warns(UserWarning, match="random"):
        return export_default(
            tmp_path_factory.mktemp("fused") / "fused.onnx", Arch.RESNET18, num_classes=10, contract=CAMERA
        ).path


def test_camera_build_quantizes_the_network_and_leaves_the_front_end_float(fused_onnx: Path, tmp_path: Path) -> None:
    result = build(BuildOptions(onnx=fused_onnx, calib_size=8, profile_iterations=2), tmp_path)
    summary = result.summary
    assert summary.input == CAMERA.to_dict() and summary.sections["placement"]["frontend_nodes"] > 0
    fp32, qdq = onnx.load(str(fused_onnx)), onnx.load(str(result.artifacts["int8_tensorrt"]))
    frame = qdq.graph.input[0]
    assert frame.type.tensor_type.elem_type == onnx.TensorProto.UINT8  # still takes the raw camera frame
    producers = {out: node for node in qdq.graph.node for out in node.output}
    front = [node for node in qdq.graph.node if node.name.startswith("frontend/")]
    assert [n.op_type for n in front] == [n.op_type for n in fp32.graph.node if n.name.startswith("frontend/")]
    for node in front:  # no Q/DQ feeds a front-end node and no front-end initializer became integer
        assert not any(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input)
    qnodes = [n for n in qdq.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qnodes and not any(n.name.startswith("frontend/") for n in qnodes)
    assert not any(n.input[0] == frame.name for n in qnodes)
    trt = result.fidelity["int8_tensorrt"]
    assert trt.samples == 12 and trt.sqnr_db > MIN_RANDOM_WEIGHTS_SQNR_DB
    assert len(result.profile) == 3 and "model_fp32.onnx" not in result.profile[0]  # the given fused model
    assert any("input: raw yuyv 320x240 bt709 full center-crop frames" in note for note in result.notes)


def test_camera_calibration_samples_are_the_camera_encoding(fused_onnx: Path) -> None:
    """Photographs become YUYV frames with the contract's matrix and range, exactly as a camera would send."""
    encoder = encoder_for(fused_onnx, CAMERA)
    photo = read_rgb(default_calibration_dir() / "chelsea.jpg")
    expected = rgb_to_yuv422(cover_resize(photo, 320, 240), YuvLayout.YUYV, ColorSpace.BT709, ColorRange.FULL)
    assert np.array_equal(encoder.from_rgb(photo), expected)


@pytest.mark.parametrize("calib_format", ["yuyv:320x240", "yuyv"])  # bare: the size the fused model records
def test_raw_yuv_calibration_folder_through_the_cli(fused_onnx: Path, tmp_path: Path, calib_format: str) -> None:
    photos = [read_rgb(p) for p in sorted(default_calibration_dir().glob("*.jpg"))]
    frames = np.stack([cover_resize(p, 320, 240) for p in photos])
    frames = rgb_to_yuv422(frames, YuvLayout.YUYV, ColorSpace.BT709, ColorRange.FULL)
    write_yuv(tmp_path / "cam" / "a.yuv", frames[:6], YuvLayout.YUYV)
    write_yuv(tmp_path / "cam" / "b.yuv", frames[6:], YuvLayout.YUYV)
    args = ["build", "--onnx", str(fused_onnx), "--calib", str(tmp_path / "cam"), "--calib-format", calib_format]
    args += ["--calib-size", "6", "--no-profile", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    assert summary["calibration"]["kind"] == "yuv" and summary["calibration"]["samples"] == 6
    assert summary["holdout"]["originals"] == 3 and all("#" in p for p in summary["holdout"]["paths"])
    assert summary["input"]["layout"] == "yuyv" and summary["fidelity"]["int8_tensorrt"]["samples"] == 12


def test_cli_input_exports_the_fused_model_and_calibrates_on_camera_frames(tmp_path: Path) -> None:
    photos = [read_rgb(p) for p in sorted(default_calibration_dir().glob("*.jpg"))[:4]]
    frames = rgb_to_yuv422(np.stack([cover_resize(p, 320, 240) for p in photos]), YuvLayout.YUYV)
    write_yuv(tmp_path / "cam.yuv", frames, YuvLayout.YUYV)
    args = ["build", "--int8", "--input", "yuyv:320x240", "--colorspace", "bt709", "--range", "full"]
    args += ["--arch", "resnet18", "--num-classes", "10", "--calib", str(tmp_path), "--calib-format", "yuyv"]
    args += ["--calib-size", "3", "--no-profile", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    fp32 = Path(summary["artifacts"]["fp32"])
    assert fp32 == tmp_path / "out" / "model_fp32.onnx" and summary["input"] == CAMERA.to_dict()
    assert json.loads((tmp_path / "out" / "model_fp32.onnx.json").read_text())["options"]["input"] == CAMERA.to_dict()
    assert summary["calibration"]["kind"] == "yuv" and summary["holdout"]["originals"] == 1  # a quarter of 4 frames


def test_camera_contract_mismatches_are_refused(fused_onnx: Path, resnet18_onnx: Path, tmp_path: Path) -> None:
    other = InputContract(YuvLayout.UYVY, 320, 240)
    with pytest.raises(UserInputError, match="sidecar declares input yuyv 320x240 bt709 full"):
        build(BuildOptions(onnx=fused_onnx, contract=other), tmp_path)
    with pytest.raises(UserInputError, match="takes RGB floats, not uyvy frames"):
        build(BuildOptions(onnx=resnet18_onnx, contract=other), tmp_path)
    cli = CliRunner().invoke(
        app, ["build", "--onnx", str(fused_onnx), "--input", "yuyv:320x240", "-o", str(tmp_path / "cli")]
    )
    assert cli.exit_code == 2 and "the requested input is yuyv 320x240 bt601 limited" in cli.output


@pytest.mark.slow
def test_resnet50_int8_build(tmp_path: Path) -> None:
    """The product network, end to end with the default (entropy) calibration on the shipped photographs."""
    with pytest.warns(UserWarning, match="random"):
        result = build(BuildOptions(arch=Arch.RESNET50, calib_size=8, profile_iterations=0), tmp_path)
    trt, cpu = result.fidelity["int8_tensorrt"], result.fidelity["int8_onnxruntime"]
    assert trt.sqnr_db > MIN_RANDOM_WEIGHTS_SQNR_DB and cpu.sqnr_db > MIN_RANDOM_WEIGHTS_SQNR_DB
    qdq = onnx.load(result.artifacts["int8_tensorrt"])
    assert sum(n.op_type == "Conv" for n in qdq.graph.node) == 53
    assert np.isfinite(trt.cosine_min) and trt.cosine_min > 0.99


# --- nothing half-written: a full disk or an interrupt mid-build ------------------------------------


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

    path = tmp_path_factory.mktemp("tiny") / "tiny_fp32.onnx"
    return save_with_sidecar(tiny_classifier_proto(10), path, "fp32")


def tiny_build_options(source: Path, **changes: object) -> BuildOptions:
    gate = FidelityGate(min_sqnr_db=0.0, min_agreement=0.0)  # random tiny weights: the gate is not the point
    base = BuildOptions(
        onnx=source, calib_algo=CalibAlgo.MAX, calib_size=8, batch_size=4, gate=gate, profile_iterations=0
    )
    return replace(base, **changes)  # type: ignore[arg-type]




def our_leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".partial", ".staging"))]




# The tiny INT8 build writes: 1 marker, 2 cache, 3 Q/DQ model, 4 its sidecar, 5 twin, 6 its sidecar, 7 table,
# 8 held-out set, 9 its sidecar, 10 summary.
@pytest.mark.parametrize(("n", "fault"), [(1, ENOSPC), (2, ENOSPC), (4, ENOSPC), (7, ENOSPC), (8, ENOSPC), (9, ENOSPC),
                                          (10, ENOSPC), (3, KeyboardInterrupt()), (9, KeyboardInterrupt()),
                                          (10, KeyboardInterrupt())])  # fmt: skip
def test_a_fault_mid_build_leaves_no_build(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, fault: BaseException
) -> None:
    from edgeres.artifacts.atomic import ArtifactWriteError
    from edgeres.artifacts.completion import build_complete

    fail_at_write(monkeypatch, n, fault)
    with pytest.raises(KeyboardInterrupt if isinstance(fault, KeyboardInterrupt) else ArtifactWriteError):
        build(tiny_build_options(tiny_onnx), tmp_path / "out")
    assert not (tmp_path / "out").exists() and not build_complete(tmp_path / "out")
    assert our_leftovers(tmp_path) == []


def test_a_finished_build_records_every_artifact_hash(tiny_onnx: Path, tmp_path: Path) -> None:
    from edgeres.artifacts.atomic import sha256_file
    from edgeres.artifacts.completion import IN_PROGRESS_NAME, build_complete

    result = build(tiny_build_options(tiny_onnx), tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["complete"] is True and result.summary.sha256 == summary["sha256"]
    for name in ("model_int8_qdq.onnx", "model_int8_qdq.onnx.json", "model_int8_u8s8.onnx", CACHE_NAME, TRT_TABLE_NAME):
        assert summary["sha256"][name] == sha256_file(tmp_path / name)
    assert summary["sha256"][str(tiny_onnx.resolve())] == sha256_file(tiny_onnx)  # the source, given from elsewhere
    assert build_complete(tmp_path) and not (tmp_path / IN_PROGRESS_NAME).exists()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a folder, by name (hidden lock files beside it are not in it)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(("n", "fault"), [(1, KeyboardInterrupt()), (3, KeyboardInterrupt()), (4, ENOSPC),
                                          (8, KeyboardInterrupt()), (9, ENOSPC)])  # fmt: skip
def test_an_interrupted_or_failed_rebuild_leaves_the_previous_build_exactly_as_it_was(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, fault: BaseException
) -> None:
    from edgeres.artifacts.atomic import ArtifactWriteError
    from edgeres.artifacts.completion import build_complete

    build(tiny_build_options(tiny_onnx), tmp_path)
    before = folder_bytes(tmp_path)
    fail_at_write(monkeypatch, n, fault)  # 1 marker, 3 Q/DQ sidecar, ... (the cache is reused)
    with pytest.raises(KeyboardInterrupt if isinstance(fault, KeyboardInterrupt) else ArtifactWriteError):
        build(tiny_build_options(tiny_onnx, bias_correction=False), tmp_path)
    assert folder_bytes(tmp_path) == before and build_complete(tmp_path)
    assert our_leftovers(tmp_path) == [] and not list(tmp_path.glob(".*previous"))


def test_a_refused_rebuild_leaves_the_previous_build_exactly_as_it_was(tiny_onnx: Path, tmp_path: Path) -> None:
    from edgeres.artifacts.completion import build_complete

    out = tmp_path / "out"
    build(tiny_build_options(tiny_onnx), out)
    before = folder_bytes(out)
    other = tmp_path / "calib"
    other.mkdir()
    for photo in sorted(default_calibration_dir().glob("*.jpg"))[:6]:
        (other / photo.name).write_bytes(photo.read_bytes())
    with pytest.raises(UserInputError, match="calibration cache is stale"):
        build(tiny_build_options(tiny_onnx, calib=other), out)
    assert folder_bytes(out) == before and build_complete(out)


def test_a_successful_rebuild_leaves_no_earlier_versions_behind(tiny_onnx: Path, tmp_path: Path) -> None:
    build(tiny_build_options(tiny_onnx), tmp_path)
    build(tiny_build_options(tiny_onnx, bias_correction=False), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgeres-")]


def test_cli_build_on_a_full_disk_is_one_line_and_leaves_nothing(
    tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_at_write(monkeypatch, 5, ENOSPC)
    args = ["build", "--onnx", str(tiny_onnx), "--calib-size", "8", "--calib-algo", "max", "--no-profile"]
    result = CliRunner().invoke(app, [*args, "--min-sqnr", "0", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "not written (No space left on device: the disk is full)" in result.output
    assert not (tmp_path / "out").exists()
