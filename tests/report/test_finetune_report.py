"""report.html of a real fine-tune run: curves, confusion matrix, per-class accuracy, validation mistakes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.report.finetune_report import confusion_matrix
from edgeres.report.render import REPORT_NAME
from tests.report.test_build_report import browse, needs_chromium
from tests.train.conftest import write_random_checkpoint, write_task

QUICK = ["--arch", "resnet18", "--size", "32", "--epochs", "1", "--warmup-epochs", "0", "--workers", "0"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ft")
    _, data = write_task(root / "task")
    weights = write_random_checkpoint(root / "random.pth")
    out = root / "run"
    result = CliRunner().invoke(app, ["finetune", str(data), "-o", str(out), "--weights", str(weights), *QUICK])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / REPORT_NAME}" in result.output.replace("\n", "")
    return out


def test_the_run_writes_a_report_of_its_validation(run_folder: Path) -> None:
    record = json.loads((run_folder / "finetune.json").read_text())
    html = (run_folder / REPORT_NAME).read_text()
    predictions = record["validation_predictions"]
    wrong = sum(p["label"] != p["predicted"] for p in predictions)
    right = len(predictions) - wrong
    assert f"({right}/{len(predictions)}; 95% CI" in html
    assert html.count('class="card"') == min(wrong, 24) and f"{wrong} pictures classified wrong" in html
    assert html.count("data:image/png;base64,") == 2  # the run's curves and the confusion matrix
    for name in record["classes"]:
        assert f"<tr><td>{name}</td>" in html


def test_confusion_matrix_counts_true_by_predicted() -> None:
    counts = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


@needs_chromium
def test_a_browser_renders_it_without_a_console_message(run_folder: Path) -> None:
    dom, console = browse(run_folder / REPORT_NAME)
    assert console == [] and 'id="verdict-line"' in dom


def test_class_names_are_shown_literally_and_a_bad_record_is_one_line(run_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(run_folder, folder)
    record = json.loads((folder / "finetune.json").read_text())
    record["classes"][0] = "<img src=x onerror=alert(1)>"
    (folder / "finetune.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    html = (folder / REPORT_NAME).read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    record["validation_predictions"][0]["predicted"] = 99
    (folder / "finetune.json").write_text(json.dumps(record))
    result = CliRunner().invoke(app, ["report", str(folder)])
    lines = [line for line in result.output.splitlines() if line]
    assert result.exit_code == 2 and len(lines) == 1 and "outside the 4 classes" in lines[0], result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "neither a build folder" in result.output
