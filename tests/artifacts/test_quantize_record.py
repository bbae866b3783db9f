"""The quantize record: written through its type with the keys the quantize stage has always written, read back
by its one reader, a malformed value refused in one line naming the file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.quantize_record import QuantizeRecord, read_quantize_record
from edgeres.artifacts.sidecar import sidecar_path, write_sidecar
from edgeres.errors import UserInputError


def models(folder: Path) -> tuple[Path, Path]:
    source, made = folder / "model_fp32.onnx", folder / "model_int8_qdq.onnx"
    source.write_bytes(b"fp32 model")
    made.write_bytes(b"int8 model")
    return source, made


def tensorrt_record(source: Path) -> QuantizeRecord:
    return QuantizeRecord(
        role=ArtifactRole.INT8_TENSORRT,
        source=source,
        calib_algo="entropy",
        keep_float=("fc",),
        bias_correction=True,
        weights="int8 symmetric per-channel",
        activations="int8 symmetric per-tensor",
        target="tensorrt (S8S8)",
        high_precision="fp16",
        ranges={"conv1": 2.5, "relu": 6.0},
        report={"placement": {"weights": 2}, "calibration": {"samples": 8}},
    )


def test_record_round_trips_with_the_keys_the_stage_writes(tmp_path: Path):
    source, made = models(tmp_path)
    record = tensorrt_record(source)
    record.write(made)
    read = read_quantize_record(made)
    assert read is not None
    assert read == replace(record, source_sha256=sha256_file(source))
    data = json.loads(sidecar_path(made).read_text())
    assert data["stage"] == "quantize" and data["inputs"] == {"onnx": str(source), "onnx_sha256": sha256_file(source)}
    assert list(data["options"]) == [
        "role", "calib_algo", "keep_float", "bias_correction", "weights", "activations", "target", "high_precision",
    ]  # fmt: skip
    assert data["options"]["keep_float"] == ["fc"] and data["results"]["ranges"] == {"conv1": 2.5, "relu": 6.0}


def test_fp16_record_writes_only_what_it_has(tmp_path: Path):
    source, made = models(tmp_path)
    QuantizeRecord(ArtifactRole.FP16, source, keep_io_float=True).write(made)
    data = json.loads(sidecar_path(made).read_text())
    assert data["options"] == {"role": "fp16", "keep_io_float": True} and data["results"] == {}
    read = read_quantize_record(made)
    assert read is not None and read.ranges is None and read.keep_float is None and read.keep_io_float is True


def test_another_stages_sidecar_is_no_quantize_record(tmp_path: Path):
    source, _ = models(tmp_path)
    write_sidecar(source, "export", {}, {"num_classes": 3})
    assert read_quantize_record(source) is None
    assert read_quantize_record(tmp_path / "absent.onnx") is None


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("options", {"keep_float": "fc"}, r"options\.keep_float is 'fc', not a list"),
        ("options", {"bias_correction": "yes"}, r"options\.bias_correction is 'yes', not true or false"),
        ("options", {"role": None}, r"options has no role"),
        ("options", {"role": "int9"}, r"unknown artifact role 'int9'"),
        ("inputs", {"onnx": None}, r"inputs has no onnx"),
        ("results", {"ranges": {"conv1": "2.5"}}, r"results\.ranges is .*, not an object of numbers"),
        ("results", {"ranges": [2.5]}, r"results\.ranges is \[2\.5\], not an object"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_in_one_line(tmp_path: Path, section: str, values: dict, message: str):
    source, made = models(tmp_path)
    tensorrt_record(source).write(made)
    data = json.loads(sidecar_path(made).read_text())
    data[section] = {**data[section], **values}
    sidecar_path(made).write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=message) as info:
        read_quantize_record(made)
    assert str(info.value).startswith(str(sidecar_path(made))) and "\n" not in str(info.value)
