"""PixelNormalization: what it computes, how it is parsed from options, read back from sidecars, and refused."""

from __future__ import annotations

import numpy as np
import pytest

from edgeres.errors import UserInputError
from edgeres.frames.contract import InputSpec
from edgeres.frames.normalization import IMAGENET_RGB, ChannelOrder, PixelNormalization

CAFFE = PixelNormalization((0.406, 0.456, 0.485), (1 / 255, 1 / 255, 1 / 255), ChannelOrder.BGR)


def test_imagenet_rgb_is_torchvision_normalisation() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((rgb / 255.0 - mean) / std).transpose(2, 0, 1)
    assert np.allclose(IMAGENET_RGB.apply(rgb), expected, atol=1e-5)


def test_bgr_takes_the_planes_in_reverse_and_its_statistics_in_its_own_order() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    planes = CAFFE.apply(rgb)
    bgr = rgb[..., ::-1].astype(np.float64)
    expected = (bgr - 255.0 * np.array(CAFFE.mean)).transpose(2, 0, 1)  # raw pixels less Caffe's BGR mean
    assert planes.dtype == np.float32 and np.allclose(planes, expected, atol=1e-3)


def test_parse_fills_what_was_not_given_from_imagenet_rgb() -> None:
    assert PixelNormalization.parse(None, None, None) is None
    assert PixelNormalization.parse(None, None, "BGR") == PixelNormalization(order=ChannelOrder.BGR)
    given = PixelNormalization.parse("0.5, 0.5,0.5", None, None)
    assert given is not None and given.mean == (0.5, 0.5, 0.5) and given.std == IMAGENET_RGB.std


@pytest.mark.parametrize(
    ("mean", "std", "order", "message"),
    [
        ("0.5,0.5", None, None, r"mean '0.5,0.5': 2 numbers; give three"),
        ("a,b,c", None, None, r"mean 'a,b,c': not three comma-separated numbers"),
        ("123.675,116.28,103.53", None, None, r"0\.\.1 scale of pixel/255 .*123\.675 is 0\.485"),
        (None, "58.395,57.12,57.375", None, r"std .*58\.395 is 0\.229"),
        (None, "0.2,0,0.2", None, r"each above 0"),
        (None, "nan,0.2,0.2", None, r"three finite numbers"),
        ("-0.1,0.2,0.3", None, None, r"0\.\.1 scale"),
        (None, None, "grb", r"channel order 'grb': not rgb or bgr"),
    ],
)
def test_bad_normalisation_options_are_refused_naming_the_value(
    mean: str | None, std: str | None, order: str | None, message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        PixelNormalization.parse(mean, std, order)


def test_a_recorded_normalisation_reads_back_and_an_old_record_means_imagenet_rgb() -> None:
    spec = InputSpec.rgb("input", 224, CAFFE)
    assert InputSpec.from_json(spec.to_json(), "options.input") == spec
    old = {"kind": "rgb_float", "name": "input", "shape": ["batch", 3, 224, 224]}  # written before the field
    assert InputSpec.from_json(old, "options.input").normalization == IMAGENET_RGB


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        ({"order": "grb", "mean": [0.5] * 3, "std": [0.5] * 3}, r"normalization\.order is 'grb', not one of rgb, bgr"),
        ({"order": "rgb", "mean": [0.5] * 2, "std": [0.5] * 3}, r"mean and std must each be three numbers"),
        ({"order": "rgb", "mean": ["x"] * 3, "std": [0.5] * 3}, r"normalization\.mean"),
        ({"order": "rgb", "mean": [0.5] * 3, "std": [0.0] * 3}, r"normalization: std .* each above 0"),
        ("imagenet", r"normalization is 'imagenet', not an object"),
    ],
)
def test_a_malformed_recorded_normalisation_is_refused_in_one_line(recorded: object, message: str) -> None:
    value = {"kind": "rgb_float", "name": "input", "shape": ["batch", 3, 8, 8], "normalization": recorded}
    with pytest.raises(UserInputError, match=message):
        InputSpec.from_json(value, "m.onnx.json: options.input")


def test_a_frame_model_records_no_normalisation_of_its_own() -> None:
    from edgeres.frames.contract import InputContract
    from edgeres.frames.yuv import YuvLayout

    contract = InputContract(YuvLayout.YUYV, 64, 48)
    assert "normalization" not in InputSpec.frames(contract).to_json()
    with pytest.raises(UserInputError, match="front-end normalises as ImageNet RGB"):
        InputSpec(InputSpec.frames(contract).kind, "frame", (1, 48, 128), contract, CAFFE)
