"""Sidecar sections read with types checked: `Fields` and the typed properties of the `Sidecar` envelope."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.sidecar import Section, Stage, read_sidecar, sidecar_path, write_sidecar
from edgeres.errors import UserInputError

WHERE = "m.onnx.json: options"


def test_values_of_their_type_are_returned_and_absent_ones_are_none():
    fields = Fields({"n": 3, "x": 2, "f": 0.5, "b": False, "s": "a", "l": [1, 2], "o": {"k": 1}, "z": None}, WHERE)
    assert fields.get("n", int) == 3 and fields.get("x", float) == 2.0 and fields.get("f", float) == 0.5
    assert fields.get("b", bool) is False and fields.get("s", str) == "a"
    assert fields.items("l", int) == (1, 2) and fields.mapping("o", int) == {"k": 1}
    assert fields.get("z", int) is None and fields.get("absent", str) is None
    section = fields.section("o")
    assert section is not None and section.where == f"{WHERE}.o" and section.require("k", int) == 1


@pytest.mark.parametrize(
    ("data", "read", "message"),
    [
        ({"v": "yes"}, lambda f: f.get("v", bool), r"options\.v is 'yes', not true or false"),
        ({"v": True}, lambda f: f.get("v", int), r"options\.v is True, not a whole number"),
        ({"v": 1.5}, lambda f: f.get("v", int), r"options\.v is 1\.5, not a whole number"),
        ({"v": False}, lambda f: f.get("v", float), r"options\.v is False, not a number"),
        ({"v": 5}, lambda f: f.get("v", str), r"options\.v is 5, not a string"),
        ({"v": [1, "2"]}, lambda f: f.items("v", int), r"options\.v is \[1, '2'\], not a list of whole numbers"),
        ({"v": {"a": "b"}}, lambda f: f.mapping("v", float), r"options\.v is \{'a': 'b'\}, not an object of numbers"),
        ({"v": [1]}, lambda f: f.section("v"), r"options\.v is \[1\], not an object"),
        ({}, lambda f: f.require("v", str), r"options has no v"),
        ({"v": "x" * 500}, lambda f: f.get("v", int), r"options\.v is 'xxx+\.\.\., not a whole number"),
    ],
)
def test_a_value_of_another_type_is_refused_in_one_short_line(data: dict, read, message: str):
    with pytest.raises(UserInputError, match=message) as info:
        read(Fields(data, WHERE))
    assert str(info.value).startswith(WHERE) and "\n" not in str(info.value) and len(str(info.value)) < 160


def sidecar_with(tmp_path: Path, **data: object) -> Path:
    artifact = tmp_path / "model.onnx"
    artifact.write_bytes(b"model bytes")
    write_sidecar(artifact, "export", {}, {})
    written = json.loads(sidecar_path(artifact).read_text())
    sidecar_path(artifact).write_text(json.dumps({**written, **data}))
    return artifact


def test_envelope_properties_read_their_types(tmp_path: Path):
    artifact = sidecar_with(tmp_path, inputs={"onnx": "src.onnx"}, options={"precision": "int8", "role": "fp16"})
    sidecar = read_sidecar(artifact)
    assert sidecar is not None and sidecar.stage == Stage.EXPORT.value
    assert sidecar.precision == "int8" and sidecar.role is ArtifactRole.FP16 and sidecar.source_onnx == "src.onnx"
    assert sidecar.fields(Section.RESULTS).data == {}


@pytest.mark.parametrize(
    ("data", "read", "message"),
    [
        ({"options": 5}, lambda s: s.options, r"model\.onnx\.json: options is 5, not an object"),
        ({"results": [1]}, lambda s: s.fields(Section.RESULTS), r"model\.onnx\.json: results is \[1\], not an object"),
        ({"options": {"precision": 16}}, lambda s: s.precision, r"options\.precision is 16, not a string"),
        ({"options": {"role": "int4"}}, lambda s: s.role, r"unknown artifact role 'int4'"),
        ({"inputs": {"onnx": 3}}, lambda s: s.source_onnx, r"inputs\.onnx is 3, not a string"),
        ({"stage": "engine"}, lambda s: s.require_stage(Stage.EXPORT), r"a sidecar of stage 'engine', not 'export'"),
    ],
)
def test_a_malformed_envelope_is_refused_naming_the_file(tmp_path: Path, data: dict, read, message: str):
    sidecar = read_sidecar(sidecar_with(tmp_path, **data))
    assert sidecar is not None
    with pytest.raises(UserInputError, match=message) as info:
        read(sidecar)
    assert str(info.value).startswith(str(sidecar.path)) and "\n" not in str(info.value)
