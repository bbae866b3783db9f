"""The export record: written by export through its type, read back by its one reader, malformed values refused
naming the file. Sidecars written by hand here stand in for old or edited ones (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeres.artifacts.sidecar import sidecar_path, write_sidecar
from edgeres.errors import UserInputError
from edgeres.export.record import (
    ExportRecord,
    ModelSpec,
    OutputSpec,
    ParityReport,
    ParityTolerance,
    read_export_record,
    read_model_spec,
)
from edgeres.frames.contract import InputContract, InputSpec
from edgeres.frames.yuv import YuvLayout

PARITY = ParityReport(samples=6, max_abs_error=2e-5, max_rel_error=1e-6, min_cosine=0.9999999, top1_agreement=1.0)


def exported(folder: Path, record: ExportRecord, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(b"stand-in model bytes")
    record.write(path)
    return path


def camera_record() -> ExportRecord:
    spec = ModelSpec(
        arch="resnet18",
        num_classes=7,
        input=InputSpec.frames(InputContract(YuvLayout.UYVY, 64, 48)),
        output=OutputSpec("logits", ("batch", 7)),
        opset=17,
        random_weights=False,
    )
    return ExportRecord(
        spec, "ckpt.pth", "ab" * 32, "cd" * 32, "ef" * 32, PARITY, ParityTolerance(), frontend_parity=PARITY
    )


def test_record_round_trips_and_keeps_the_keys_export_always_wrote(tmp_path: Path):
    record = camera_record()
    path = exported(tmp_path, record)
    assert read_export_record(path) == record
    data = json.loads(sidecar_path(path).read_text())
    assert data["stage"] == "export"
    assert list(data["options"]) == ["arch", "num_classes", "opset", "precision", "input", "output", "random_weights"]
    assert data["options"]["precision"] == "fp32" and data["options"]["random_weights"] is False
    assert data["inputs"] == {
        "weights": "ckpt.pth",
        "weights_sha256": "ab" * 32,
        "parity_inputs_sha256": "cd" * 32,
        "parity_frames_sha256": "ef" * 32,
    }
    assert set(data["results"]) == {"parity", "tolerance", "frontend_parity"}


def test_a_quantized_model_inherits_its_sources_spec(tmp_path: Path):
    source = exported(tmp_path, camera_record())
    quantized = tmp_path / "int8.onnx"
    quantized.write_bytes(b"quantized")
    write_sidecar(quantized, "quantize", {"onnx": str(source)}, {"role": "int8_tensorrt"})
    assert read_model_spec(quantized) == camera_record().model
    assert read_export_record(quantized) is None  # its own sidecar is the quantize stage's


def test_a_sidecar_without_optional_fields_reads_them_as_unknown(tmp_path: Path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    write_sidecar(path, "export", {"weights": None}, {"num_classes": 3, "precision": "fp32"})
    record = read_export_record(path)
    assert record is not None and record.random_weights is None and record.parity is None
    assert record.model == ModelSpec(arch=None, num_classes=3, input=None, output=None)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("options", {"random_weights": "yes"}, r"options\.random_weights is 'yes', not true or false"),
        ("options", {"input": 5}, r"options\.input is 5, not an object"),
        ("options", {"num_classes": 0}, r"options\.num_classes is 0, not a class count of at least 1"),
        ("options", {"num_classes": None}, r"options has no num_classes"),
        ("options", {"opset": "17"}, r"options\.opset is '17', not a whole number"),
        ("options", {"output": {"name": "logits"}}, r"options\.output has no shape"),
        ("inputs", {"weights": 12}, r"inputs\.weights is 12, not a string"),
        ("results", {"parity": {"samples": "6"}}, r"results\.parity\.samples is '6', not a whole number"),
        ("results", {"frontend_parity": [0.1]}, r"results\.frontend_parity is \[0\.1\], not an object"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_in_one_line(
    tmp_path: Path, section: str, values: dict[str, Any], message: str
):
    path = exported(tmp_path, camera_record())
    data = json.loads(sidecar_path(path).read_text())
    data[section] = {**data[section], **values}
    sidecar_path(path).write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=message) as info:
        read_export_record(path)
    assert str(info.value).startswith(str(sidecar_path(path))) and "\n" not in str(info.value)
