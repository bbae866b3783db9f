"""The one input spec a sidecar records (options["input"]): round trips, and malformed ones refused naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeres.artifacts.sidecar import read_sidecar, sidecar_path, write_sidecar
from edgeres.errors import UserInputError
from edgeres.frames.contract import FRAME_INPUT, InputContract, InputKind, InputSpec, parse_input, recorded_input
from edgeres.frames.yuv import YuvLayout


def model_with_input(folder: Path, value: object, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(b"stand-in model bytes")
    write_sidecar(path, "export", {}, {"input": value})
    return path


@pytest.mark.parametrize(
    "spec",
    [InputSpec.rgb("input"), InputSpec.rgb("images", 160), InputSpec.frames(parse_input("nv16:1280x720", "bt709"))],
    ids=["rgb", "rgb-160", "nv16"],
)
def test_spec_round_trips_through_a_real_sidecar(tmp_path: Path, spec: InputSpec):
    path = model_with_input(tmp_path, spec.to_json())
    assert recorded_input(path) == spec
    sidecar = read_sidecar(path)
    assert sidecar is not None and InputSpec.of(sidecar) == spec


def test_frame_spec_is_the_contracts_json_with_the_fused_input():
    contract = InputContract(YuvLayout.YUYV, 64, 48)
    spec = InputSpec.frames(contract)
    assert (spec.kind, spec.name, spec.contract) == (InputKind.YUV422, FRAME_INPUT, contract)
    assert spec.shape == ("batch", 48, 128)
    assert spec.to_json() == contract.to_dict()
    assert json.loads(json.dumps(spec.to_json()))["dtype"] == "uint8"
    assert InputSpec.rgb("input", 160).image_size == 160


def test_a_model_without_a_recorded_input_has_none(tmp_path: Path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    assert recorded_input(path) is None
    write_sidecar(path, "export", {}, {"num_classes": 3})
    assert recorded_input(path) is None


FRAMES = InputSpec.frames(InputContract(YuvLayout.YUYV, 64, 48)).to_json()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, r"options\.input is 5, not an object"),
        ("rgb", r"options\.input is 'rgb', not an object"),
        ({"name": "input", "shape": ["batch", 3, 8, 8]}, r"options\.input has no kind"),
        ({"kind": 1, "name": "input", "shape": [1]}, r"options\.input\.kind is 1, not a string"),
        ({"kind": "bgr", "name": "input", "shape": [1]}, r"input\.kind is 'bgr', not one of rgb_float, yuv422"),
        ({"kind": "rgb_float", "name": ["input"], "shape": [1]}, r"options\.input\.name is \['input'\], not a string"),
        ({"kind": "rgb_float", "name": "input"}, r"options\.input has no shape"),
        ({"kind": "rgb_float", "name": "input", "shape": [1, True]}, r"input\.shape is \[1, True\], not a shape"),
        ({"kind": "rgb_float", "name": "input", "shape": [1, -3]}, r"options\.input\.shape is \[1, -3\], not a shape"),
        ({k: v for k, v in FRAMES.items() if k != "colorspace"}, r"options\.input: input contract lacks colorspace"),
        ({**FRAMES, "width": "64"}, r"options\.input: input contract is not valid \('64' is not a whole number\)"),
        ({**FRAMES, "width": 63}, r"options\.input: input contract is not valid \(frame width 63 is odd"),
        ({**FRAMES, "layout": "rgb24"}, r"options\.input: input contract is not valid \('rgb24' is not a valid"),
    ],
)
def test_a_malformed_input_is_refused_in_one_line_naming_the_file(tmp_path: Path, value: Any, message: str):
    path = model_with_input(tmp_path, value)
    with pytest.raises(UserInputError, match=message) as info:
        recorded_input(path)
    assert str(info.value).startswith(f"{sidecar_path(path)}: options.input") and "\n" not in str(info.value)


def test_a_malformed_input_of_the_source_is_refused_through_a_quantized_model(tmp_path: Path):
    source = model_with_input(tmp_path, {"kind": "rgb_float", "name": "input", "shape": "224"}, "fp32.onnx")
    quantized = tmp_path / "int8.onnx"
    quantized.write_bytes(b"quantized bytes")
    write_sidecar(quantized, "quantize", {"onnx": str(source)}, {"role": "int8_tensorrt"})
    with pytest.raises(UserInputError, match=r"fp32\.onnx\.json: options\.input\.shape is '224'"):
        recorded_input(quantized)
