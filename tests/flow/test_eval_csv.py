"""`build --eval CSV`: every row of a labelled CSV evaluated once (none derived); bad CSVs refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.frames.images import default_calibration_dir
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

runner = CliRunner()
CLASSES = 10


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_with_sidecar(tiny_classifier_proto(CLASSES), tmp_path_factory.mktemp("tiny") / "tiny.onnx", "fp32")


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(f"{row}\n" for row in rows))
    return path


def photos() -> list[Path]:
    return sorted(default_calibration_dir().glob("*.jpg"))


def build(tiny_onnx: Path, eval_csv: Path, out: Path) -> object:
    args = ["build", "--int8", "--onnx", tiny_onnx, "--calib-size", "4", "--calib-algo", "max", "--no-profile",
            "--eval", eval_csv, "-o", out]  # fmt: skip
    return runner.invoke(app, [str(a) for a in args])


def test_every_row_is_evaluated_once(tiny_onnx: Path, tmp_path: Path) -> None:
    rows = [f"{p},{i % CLASSES}" for i, p in enumerate(photos()[:5])]
    result = build(tiny_onnx, write_csv(tmp_path / "val.csv", ["path,label", *rows]), tmp_path / "out")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "build_summary.json").read_text())
    assert summary["holdout"]["samples"] == 5 and summary["holdout"]["derived"] == 0
    assert summary["holdout"]["paths"] == [str(p) for p in photos()[:5]]
    assert summary["fidelity"]["int8_tensorrt"]["samples"] == 5
    assert summary["fidelity"]["int8_tensorrt"]["accuracy"] is not None
    # The calibration source is no longer split: all of it calibrates.
    assert summary["calibration"]["candidates"] == len(photos())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no rows to evaluate"),
        (["{photo}"], "needs a class number on every row"),
        (["{photo},{classes}"], "outside 0..9"),
        (["{photo},cat"], "is not a class number"),
        (["{photo},1,extra"], "expected 'path,label'"),
    ],
)
def test_bad_evaluation_csv_is_one_line(tiny_onnx: Path, tmp_path: Path, rows: list[str], message: str) -> None:
    text = [row.format(photo=photos()[0], classes=CLASSES) for row in rows]
    result = build(tiny_onnx, write_csv(tmp_path / "val.csv", text), tmp_path / "out")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "build_summary.json").exists()


def test_missing_evaluation_csv_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    result = build(tiny_onnx, tmp_path / "absent.csv", tmp_path / "out")
    assert result.exit_code == 2 and "evaluation CSV not found" in result.output


def test_a_spreadsheet_csv_with_byte_order_mark_and_other_header_reads(tiny_onnx: Path, tmp_path: Path) -> None:
    rows = [f"{p},{i % CLASSES}" for i, p in enumerate(photos()[:3])]
    csv = tmp_path / "val.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + "".join(f"{row}\n" for row in ["filename,class", *rows]).encode())
    result = build(tiny_onnx, csv, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "build_summary.json").read_text())["holdout"]["samples"] == 3
