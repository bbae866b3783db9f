"""`build --eval CSV`: every row of a labelled CSV evaluated once (none derived); bad CSVs refused in one line."""

from __future__ import annotations

import json
import shutil
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


EVALUATED = 5  # the first photographs evaluate; the others calibrate


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped photographs that the evaluation CSVs below do not list."""
    folder = tmp_path_factory.mktemp("calib")
    for photo in photos()[EVALUATED:]:
        shutil.copy(photo, folder)
    return folder


def build(tiny_onnx: Path, eval_csv: Path, out: Path, calibration: Path | None = None) -> object:
    calib = ["--calib", calibration] if calibration is not None else []
    args = ["build", "--int8", "--onnx", tiny_onnx, "--calib-size", "4", "--calib-algo", "max", "--no-profile",
            "--eval", eval_csv, "-o", out, *calib]  # fmt: skip
    return runner.invoke(app, [str(a) for a in args])


def test_every_row_is_evaluated_once(tiny_onnx: Path, calibration: Path, tmp_path: Path) -> None:
    rows = [f"{p},{i % CLASSES}" for i, p in enumerate(photos()[:EVALUATED])]
    result = build(tiny_onnx, write_csv(tmp_path / "val.csv", ["path,label", *rows]), tmp_path / "out", calibration)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "build_summary.json").read_text())
    assert summary["holdout"]["samples"] == EVALUATED and summary["holdout"]["derived"] == 0
    assert summary["holdout"]["paths"] == [str(p) for p in photos()[:EVALUATED]]
    assert summary["fidelity"]["int8_tensorrt"]["samples"] == EVALUATED
    assert summary["fidelity"]["int8_tensorrt"]["accuracy"] is not None
    # The calibration source is no longer split: all of it calibrates.
    assert summary["calibration"]["candidates"] == len(photos()) - EVALUATED


def _refused_and_untouched(result: object, out: Path, message: str) -> None:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], output
    assert "Traceback" not in output
    assert sorted(p.name for p in out.iterdir()) == ["earlier.txt"]


def _output_with_earlier_contents(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("there before")
    return out


HONESTY = {
    # rows (photo indices or a missing name) -> what the one error line says
    "a missing picture": (["{p0}", "{missing}", "{p1}"], "1 of 3 rows name no file"),
    "a repeated row": (["{p0}", "{p1}", "{p0}"], "is listed twice (rows 1 and 3)"),
    "a row repeated many times": (["{p1}"] + ["{p2}"] * 20, "is listed twice (rows 2 and 3)"),
    "a calibration picture": (["{p0}", "{calibrating}"], "also calibrate the model"),
}


@pytest.mark.parametrize("case", sorted(HONESTY))
def test_evaluation_rows_that_would_make_the_report_dishonest_are_refused(
    tiny_onnx: Path, calibration: Path, tmp_path: Path, case: str
) -> None:
    rows, message = HONESTY[case]
    names = {f"p{i}": str(photos()[i]) for i in range(3)}
    names |= {"missing": str(tmp_path / "gone.jpg"), "calibrating": str(sorted(calibration.iterdir())[0])}
    lines = [f"{row.format(**names)},{i % CLASSES}" for i, row in enumerate(rows)]
    out = _output_with_earlier_contents(tmp_path)
    _refused_and_untouched(build(tiny_onnx, write_csv(tmp_path / "val.csv", lines), out, calibration), out, message)


def test_evaluating_on_the_calibration_folder_itself_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    rows = [f"{p},{i % CLASSES}" for i, p in enumerate(photos()[:3])]  # the default calibration photographs
    out = _output_with_earlier_contents(tmp_path)
    result = build(tiny_onnx, write_csv(tmp_path / "val.csv", rows), out)
    _refused_and_untouched(result, out, "3 of the 3 evaluation samples also calibrate the model")


def test_an_unreadable_evaluation_picture_is_refused_not_skipped(
    tiny_onnx: Path, calibration: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture at all")
    rows = [f"{photos()[0]},1", f"{broken},2"]
    out = _output_with_earlier_contents(tmp_path)
    result = build(tiny_onnx, write_csv(tmp_path / "val.csv", rows), out, calibration)
    _refused_and_untouched(result, out, "1 of 2 rows cannot be read")


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


def test_a_spreadsheet_csv_with_byte_order_mark_and_other_header_reads(
    tiny_onnx: Path, calibration: Path, tmp_path: Path
) -> None:
    rows = [f"{p},{i % CLASSES}" for i, p in enumerate(photos()[:3])]
    csv = tmp_path / "val.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + "".join(f"{row}\n" for row in ["filename,class", *rows]).encode())
    result = build(tiny_onnx, csv, tmp_path / "out", calibration)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "build_summary.json").read_text())["holdout"]["samples"] == 3
