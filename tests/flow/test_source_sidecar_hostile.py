"""`build --onnx SRC`: the sidecar beside SRC is trusted only when it describes SRC and reads as a sidecar;
otherwise the build is refused in one line, before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(sidecar: dict[str, Any]) -> None:
        for key in keys:
            sidecar.pop(key, None)

    return edit


def _set(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def edit(sidecar: dict[str, Any]) -> None:
        target = sidecar
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "no digest": (_drop("sha256", "bytes"), "records no bytes/sha256"),
    "no digest, sections of the wrong type": (
        lambda s: (_drop("sha256", "bytes")(s), _set(("options",), ["arch", "resnet50"])(s)), "records no bytes"
    ),
    "another file's size": (_set(("bytes",), 12), "describes another file"),
    "another file's digest": (_set(("sha256",), "0" * 64), "describes another file"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_source_sidecar_that_does_not_describe_the_source_is_refused(tmp_path: Path, case: str) -> None:
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "src.onnx", "fp32")
    sidecar_file = tmp_path / "src.onnx.json"
    sidecar = json.loads(sidecar_file.read_text())
    edit, reason = EDITS[case]
    edit(sidecar)
    sidecar_file.write_text(json.dumps(sidecar))
    result = CliRunner().invoke(app, ["build", "--onnx", str(source), "--no-profile", "-o", str(tmp_path / "out")])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and reason in errors[0], result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("section", "key", "value", "reason"),
    [
        ("options", "random_weights", "yes", "random_weights"),
        ("inputs", "weights", 7, "weights"),
        ("options", "input", "yuyv", "input"),
    ],
)
def test_a_source_sidecar_with_values_of_the_wrong_type_is_refused(
    tmp_path: Path, section: str, key: str, value: object, reason: str
) -> None:
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "src.onnx", "fp32")
    sidecar_file = tmp_path / "src.onnx.json"
    sidecar = json.loads(sidecar_file.read_text())
    sidecar[section][key] = value
    sidecar_file.write_text(json.dumps(sidecar))
    result = CliRunner().invoke(app, ["build", "--onnx", str(source), "--no-profile", "-o", str(tmp_path / "out")])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and reason in errors[0] and "src.onnx.json" in errors[0]
    assert not (tmp_path / "out").exists()
