"""Class names travel with the model: the classes.txt finetune writes beside model.pth is recorded by export
(and so by build) in the model's sidecar, and deploy and the camera use it without --labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.export.record import read_model_spec
from tests.train.conftest import write_random_checkpoint

NAMES = ("mug", "kettle", "fork", "lamp")


def _finetune_like_output(folder: Path, names: tuple[str, ...] = NAMES) -> Path:
    """What finetune leaves: model.pth and, beside it, classes.txt (line k naming class k)."""
    folder.mkdir()
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    return write_random_checkpoint(folder / "model.pth", classes=len(NAMES))


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_export_records_the_names_and_deploy_uses_them_without_labels(tmp_path: Path) -> None:
    weights = _finetune_like_output(tmp_path / "ft")
    model = tmp_path / "m.onnx"
    result = _cli("export", "--arch", "resnet18", "--weights", weights, "--num-classes", len(NAMES), "-o", model)
    assert result.exit_code == 0, result.output
    spec = read_model_spec(model)
    assert spec is not None and spec.class_names == NAMES
    deployed = _cli("deploy", "triton", model, "-o", tmp_path / "repo")
    assert deployed.exit_code == 0, deployed.output
    labels = next((tmp_path / "repo").glob("*/labels.txt")).read_text().splitlines()
    assert tuple(labels) == NAMES
    record = json.loads(next((tmp_path / "repo").glob("*/edgeres.json")).read_text())
    assert record["class_names"] == "the model's sidecar"


def test_names_of_another_count_are_not_recorded_and_the_refusal_says_what_to_pass(tmp_path: Path) -> None:
    weights = _finetune_like_output(tmp_path / "ft", NAMES[:3])  # a classes.txt of another run
    model = tmp_path / "m.onnx"
    assert _cli("export", "--arch", "resnet18", "--weights", weights, "--num-classes", 4, "-o", model).exit_code == 0
    spec = read_model_spec(model)
    assert spec is not None and spec.class_names is None
    refused = _cli("deploy", "triton", model, "-o", tmp_path / "repo")
    errors = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert refused.exit_code == 2 and len(errors) == 1, refused.output
    assert "--labels" in errors[0] and "classes.txt" in errors[0]


def test_a_sidecar_whose_names_do_not_match_its_class_count_is_refused(tmp_path: Path) -> None:
    weights = _finetune_like_output(tmp_path / "ft")
    model = tmp_path / "m.onnx"
    assert _cli("export", "--arch", "resnet18", "--weights", weights, "--num-classes", 4, "-o", model).exit_code == 0
    sidecar_file = tmp_path / "m.onnx.json"
    sidecar = json.loads(sidecar_file.read_text())
    sidecar["options"]["class_names"] = ["only", "two"]
    sidecar_file.write_text(json.dumps(sidecar))
    with pytest.raises(UserInputError, match="class_names"):
        read_model_spec(model)
