"""`edgeres build` end to end on ResNet18 (few classes, fast) and once on ResNet50."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edgeres.build import SUMMARY_NAME, BuildOptions, Precision, build, split_holdout
from edgeres.calibdata import CalibrationSet
from edgeres.calibencode import encoder_for
from edgeres.calibrate import CalibAlgo
from edgeres.cli import app
from edgeres.errors import FidelityError, UserInputError
from edgeres.fidelity import FidelityGate
from edgeres.images import default_calibration_dir
from edgeres.model import Arch
from edgeres.pipeline import export_default

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
# INT8 of a random-weight ResNet measured 33-35 dB logits SQNR here; 20 dB (1% noise power) is the floor.
MIN_RANDOM_WEIGHTS_SQNR_DB = 20.0


@pytest.fixture(scope="module")
def resnet18_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.warns(UserWarning, match="random"):
        return export_default(tmp_path_factory.mktemp("r18") / "r18.onnx", Arch.RESNET18, num_classes=10).path


def test_holdout_is_disjoint_from_calibration(resnet18_onnx: Path) -> None:
    calibration = CalibrationSet(None, encoder_for(resnet18_onnx), calib_size=8)
    everything = list(calibration.pool)
    holdout = split_holdout(calibration)
    assert len(holdout.items) == 3 and len(calibration.pool) == 8  # 11 shipped photographs, a quarter held out
    assert not {i.path for i in holdout.items} & {i.path for i in calibration.pool}
    assert sorted(map(str, (i.path for i in everything))) == sorted(
        map(str, (i.path for i in (*calibration.pool, *holdout.items)))
    )


def test_int8_build_writes_models_report_and_summary(resnet18_onnx: Path, tmp_path: Path) -> None:
    options = BuildOptions(onnx=resnet18_onnx, calib_algo=CalibAlgo.MAX, calib_size=8)
    result = build(options, tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    for name in ("int8_tensorrt", "int8_onnxruntime"):
        assert Path(summary["artifacts"][name]).is_file()
        assert (tmp_path / (Path(summary["artifacts"][name]).name + ".json")).is_file()  # sidecar
        report = summary["fidelity"][name]
        assert report["samples"] == 3 and report["random_weights"] is True and "ill-conditioned" in report["note"]
        assert report["sqnr_db"] > MIN_RANDOM_WEIGHTS_SQNR_DB
        assert len(report["worst_layers"]) == 10
    assert summary["calibration"]["samples"] == 8 and summary["gate_passed"] is True
    assert len(summary["holdout"]["paths"]) == 3
    qdq = onnx.load(result.artifacts["int8_tensorrt"])
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) > 0
    if not HAS_TENSORRT:
        assert "TensorRT engine not built" in summary["engine"] and "model_int8_qdq.onnx" in summary["engine"]


def test_gate_failure_raises_and_still_writes_the_report(resnet18_onnx: Path, tmp_path: Path) -> None:
    options = BuildOptions(onnx=resnet18_onnx, calib_algo=CalibAlgo.MAX, calib_size=4, gate=FidelityGate(200.0))
    with pytest.raises(FidelityError, match="below --min-sqnr 200 dB"):
        build(options, tmp_path)
    summary = json.loads((tmp_path / SUMMARY_NAME).read_text())
    assert summary["gate_passed"] is False and summary["fidelity"]["int8_tensorrt"]["sqnr_db"] < 200


def test_fp16_build(resnet18_onnx: Path, tmp_path: Path) -> None:
    result = build(BuildOptions(precision=Precision.FP16, onnx=resnet18_onnx), tmp_path)
    assert result.artifacts["fp16"].is_file() and "int8_tensorrt" not in result.artifacts
    assert result.fidelity["fp16"].sqnr_db > 40  # FP16 rounding only


def test_labelled_csv_reports_accuracy(resnet18_onnx: Path, tmp_path: Path) -> None:
    photos = sorted(default_calibration_dir().glob("*.jpg"))
    csv = tmp_path / "labels.csv"
    csv.write_text("".join(f"{p},{i % 10}\n" for i, p in enumerate(photos)))
    result = build(BuildOptions(onnx=resnet18_onnx, calib=csv, calib_algo=CalibAlgo.MAX, calib_size=4), tmp_path)
    accuracy = result.fidelity["int8_tensorrt"].accuracy
    assert accuracy is not None and 0.0 <= accuracy.reference_top1 <= accuracy.reference_top5 <= 1.0


def test_empty_calibration_folder_is_a_user_error(resnet18_onnx: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no calibration images"):
        build(BuildOptions(onnx=resnet18_onnx, calib=tmp_path / "empty"), tmp_path / "out")


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
    bad = runner.invoke(app, [*args, "--keep-float", "nope", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--keep-float 'nope'" in bad.output and "Traceback" not in bad.output


@pytest.mark.slow
def test_resnet50_int8_build(tmp_path: Path) -> None:
    """The product network, end to end with the default (entropy) calibration on the shipped photographs."""
    with pytest.warns(UserWarning, match="random"):
        result = build(BuildOptions(arch=Arch.RESNET50, calib_size=8), tmp_path)
    trt, cpu = result.fidelity["int8_tensorrt"], result.fidelity["int8_onnxruntime"]
    assert trt.sqnr_db > MIN_RANDOM_WEIGHTS_SQNR_DB and cpu.sqnr_db > MIN_RANDOM_WEIGHTS_SQNR_DB
    qdq = onnx.load(result.artifacts["int8_tensorrt"])
    assert sum(n.op_type == "Conv" for n in qdq.graph.node) == 53
    assert np.isfinite(trt.cosine_min) and trt.cosine_min > 0.99
