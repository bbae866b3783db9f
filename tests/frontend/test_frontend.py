"""The fused camera front-end: ONNX graph vs host path, exactness of resizing planes first, contracts,
fused models (tiny, ResNet18, ResNet50 through `export_default`, trained EfficientNet-Lite0)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.export.parity import ParityTolerance, compare_logits, run_onnx
from edgeres.frames.contract import FRAME_INPUT, InputContract, ResizeMode, parse_input
from edgeres.frames.images import default_calibration_dir, list_images, read_rgb
from edgeres.frames.normalization import IMAGENET_MEAN, IMAGENET_STD
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout, rgb_to_yuv422, yuv422_to_rgb_float
from edgeres.frontend.graph import attach_frontend, frontend_graph
from edgeres.frontend.host import reference_input
from edgeres.frontend.plan import clip_bounds, folded_color, plan_resize
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model
from tests.conftest import real_image

# Graph and host path do the same float32 operations in different summation orders.
FRONTEND_ATOL = 1e-5
# TensorRT-parsable ops only (no Resize: TensorRT's has no antialias; no integer ops before the Cast).
PORTABLE_OPS = {"Cast", "Unsqueeze", "Reshape", "ReduceSum", "Conv", "Slice", "Concat", "Transpose", "Gather", "MatMul",
                "Max", "Min", "Pad"}  # fmt: skip


def rgb_reference_input(rgb: np.ndarray, contract: InputContract) -> np.ndarray:
    """An RGB image at the contract's size through the same geometry and filter, never YUV: what a camera
    with RGB output would feed the plain model. Dense matrices; float64."""
    plan = plan_resize(contract)
    window = rgb[plan.top : plan.top + plan.rows, plan.left : plan.left + plan.cols].astype(np.float64)
    resized = np.einsum("hr,rcx,wc->xhw", plan.dense_v, window, plan.dense_h, optimize=True)
    normalised = (resized / 255.0 - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
    low, high = clip_bounds()
    normalised = np.clip(normalised, low[:, None, None], high[:, None, None])
    top, left, bottom, right = plan.pad
    return np.pad(normalised, ((0, 0), (top, bottom), (left, right)))[None].astype(np.float32)


def random_frames(contract: InputContract, count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, *contract.frame_shape), dtype=np.uint8)


def photo_frames(contract: InputContract, names: tuple[str, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    size = (contract.width, contract.height)
    photos = [cv2.resize(real_image(n), size, interpolation=cv2.INTER_AREA) for n in names]
    frames = rgb_to_yuv422(np.stack(photos), contract.layout, contract.colorspace, contract.color_range)
    return frames, photos


SIZES = [(1280, 720), (300, 200), (40, 30), (6, 4)]


@pytest.mark.parametrize("layout", list(YuvLayout))
@pytest.mark.parametrize("mode", list(ResizeMode))
def test_graph_matches_host_path_and_converting_first(layout, mode):
    """For every layout and mode, at sizes that box (1280x720), barely box and upsample (6x4):
    the ONNX front-end equals the host path, and both equal converting at full resolution first
    (chroma repeated per pair) then filtering RGB with the same dense filters, clipped after."""
    for width, height in SIZES:
        contract = InputContract(layout, width, height, ColorSpace.BT709, ColorRange.FULL, mode)
        frames = random_frames(contract, 2, seed=width)
        host = reference_input(frames, contract)
        graph = run_onnx(frontend_graph(contract).SerializeToString(), frames)
        assert graph.shape == host.shape == (2, 3, 224, 224)
        assert np.abs(graph - host).max() <= FRONTEND_ATOL, (width, height)
        plan = plan_resize(contract)
        rgb = yuv422_to_rgb_float(frames, layout, contract.colorspace, contract.color_range, clip=False)
        window = rgb[:, plan.top : plan.top + plan.rows, plan.left : plan.left + plan.cols].astype(np.float64)
        resized = np.einsum("hr,nrcx,wc->nxhw", plan.dense_v, window, plan.dense_h, optimize=True)
        normalised = (resized / 255 - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]
        low, high = clip_bounds()
        normalised = np.clip(normalised, low[:, None, None], high[:, None, None])
        top, left, bottom, right = plan.pad
        expected = np.pad(normalised, ((0, 0), (0, 0), (top, bottom), (left, right)))
        assert np.abs(expected - host).max() <= FRONTEND_ATOL, (width, height)


def test_graph_starts_with_cast_of_the_uint8_frame_and_uses_portable_ops():
    contract = parse_input("yuyv:1920x1080")
    graph = frontend_graph(contract).graph
    (frame,) = graph.input
    assert frame.name == FRAME_INPUT and frame.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = [d.dim_param or d.dim_value for d in frame.type.tensor_type.shape.dim]
    assert dims == ["batch", 1080, 3840]
    assert graph.node[0].op_type == "Cast" and graph.node[0].input[0] == FRAME_INPUT
    assert {node.op_type for node in graph.node} <= PORTABLE_OPS
    planar = frontend_graph(parse_input("nv16:1920x1080")).graph.input[0]
    assert [d.dim_param or d.dim_value for d in planar.type.tensor_type.shape.dim] == ["batch", 2160, 1920]


def test_colour_folds_into_the_box_conv_exactly_where_all_roles_share_one_horizontal_filter():
    """Boxed plans give Y0 and Y1 the same taps and chroma twice them, so for packed layouts the colour map
    moves into the box Conv (no colour Conv left) and a centre crop is cut from the row sums before it.
    Planar layouts and plans too small to box keep per-role filters and the colour Conv."""
    for layout in YuvLayout:
        for width, height in ((1920, 1080), (300, 200)):
            contract = InputContract(layout, width, height)
            plan = plan_resize(contract)
            y0, y1, u, v = (plan.h_weight[plan.roles.index(role)] for role in ("y0", "y1", "u", "v"))
            if plan.boxed:
                np.testing.assert_array_equal(y0, y1)
                np.testing.assert_array_equal(u, 2 * y0)
                np.testing.assert_array_equal(v, 2 * y0)
            else:
                assert not np.array_equal(y0, y1)
            folded = folded_color(contract, plan) is not None
            assert folded == (layout.packed and plan.boxed) == (layout.packed and width == 1920)
            nodes = {node.name: node for node in frontend_graph(contract).graph.node}
            assert ("frontend/color" in nodes) != folded
            if folded:
                assert nodes["frontend/box"].input[0] == "frontend/box_crop"


def test_downscaling_is_antialiased():
    """One-pixel black/white columns (the worst case for aliasing) must come out flat grey; a plain
    bilinear 1920 -> 224 resize would pick columns and produce strong stripes."""
    contract = InputContract(YuvLayout.YUYV, 1920, 1080, color_range=ColorRange.FULL, resize=ResizeMode.STRETCH)
    stripes = np.zeros((1080, 1920, 3), np.uint8)
    stripes[:, 1::2] = 255
    stripes[1::3] = 255 - stripes[1::3]  # rows too
    frame = rgb_to_yuv422(stripes, contract.layout, contract.colorspace, contract.color_range)
    rgb = reference_input(frame, contract)[0] * IMAGENET_STD[:, None, None] + IMAGENET_MEAN[:, None, None]
    assert np.abs(rgb - rgb.mean()).max() < 0.05  # within 5% of full scale everywhere


def test_geometry_of_each_mode():
    """Center-crop takes the centred square (to one box), letterbox keeps the whole frame and pads evenly."""
    crop = plan_resize(InputContract(YuvLayout.YUYV, 1920, 1080, resize=ResizeMode.CENTER_CROP))
    assert (crop.rows, crop.pad) == (1080, (0, 0, 0, 0)) and 1072 <= crop.cols <= 1080
    assert abs(crop.left + crop.cols / 2 - 960) <= 2 * crop.fxp
    box = plan_resize(InputContract(YuvLayout.YUYV, 1920, 1080, resize=ResizeMode.LETTERBOX))
    assert (box.out_w, box.out_h, box.pad) == (224, 126, (49, 0, 49, 0))
    stretch = plan_resize(InputContract(YuvLayout.UYVY, 1920, 1080, resize=ResizeMode.STRETCH))
    assert (stretch.rows, stretch.cols, stretch.fy, stretch.fxp) == (1080, 1920, 4, 4)
    for plan in (crop, box, stretch):
        np.testing.assert_allclose(plan.dense_v.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(plan.dense_h.sum(axis=1), 1.0, atol=1e-12)


def test_contract_round_trip_and_parsing():
    contract = parse_input("NV16:1280x720", "bt709", "full", "letterbox")
    assert contract == InputContract(YuvLayout.NV16, 1280, 720, ColorSpace.BT709, ColorRange.FULL,
                                     ResizeMode.LETTERBOX)  # fmt: skip
    assert InputContract.from_dict(json.loads(json.dumps(contract.to_dict()))) == contract
    assert contract.to_dict()["shape"] == ["batch", 1440, 1280]
    default = parse_input("yuyv:640x480")
    assert (default.colorspace, default.color_range, default.resize) == (
        ColorSpace.BT601, ColorRange.LIMITED, ResizeMode.CENTER_CROP)  # fmt: skip
    for bad, message in [
        ("yuyv-1920x1080", "not FORMAT:WIDTHxHEIGHT"),
        ("yuyv:1921x1080", "odd"),
        ("rgb:1920x1080", "unknown frame format 'rgb'"),
    ]:
        with pytest.raises(UserInputError, match=message):
            parse_input(bad)
    with pytest.raises(UserInputError, match="unknown colorspace 'bt2020'"):
        parse_input("yuyv:64x64", colorspace="bt2020")
    with pytest.raises(UserInputError, match="unknown resize mode"):
        parse_input("yuyv:64x64", resize="fill")
    with pytest.raises(UserInputError, match="input contract"):
        InputContract.from_dict({"layout": "yuyv"})


def test_host_path_refuses_wrong_frames():
    contract = parse_input("yuyv:64x48")
    with pytest.raises(UserInputError, match="is 32x48, expected 64x48"):
        reference_input(np.zeros((48, 64), np.uint8), contract)
    with pytest.raises(UserInputError, match="uint8"):
        reference_input(np.zeros((48, 128), np.int16), contract)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.mark.parametrize("layout", list(YuvLayout))
def test_attached_model_matches_host_path_with_batches(layout):
    contract = InputContract(layout, 320, 240, resize=ResizeMode.LETTERBOX)
    plain = torch_to_onnx(TinyNet(), 17)
    fused = attach_frontend(plain, contract)
    assert [i.name for i in fused.graph.input] == [FRAME_INPUT]
    assert [o.name for o in fused.graph.output] == [o.name for o in plain.graph.output]
    frames = np.concatenate([photo_frames(contract, ("coffee", "rocket"))[0], random_frames(contract, 1)])
    expected = run_onnx(plain.SerializeToString(), reference_input(frames, contract))
    got = run_onnx(fused.SerializeToString(), frames)
    assert got.shape == (3, 5)
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_allclose(run_onnx(fused.SerializeToString(), frames[1:2]), got[1:2], atol=1e-5)


def test_attach_refuses_a_model_of_another_input_size():
    with pytest.raises(UserInputError, match=r"\[batch, 3, 160, 160\]"):
        attach_frontend(torch_to_onnx(TinyNet(), 17), InputContract(YuvLayout.YUYV, 64, 48, size=160))


def test_resnet18_on_a_real_720p_yuyv_frame():
    """A 1280x720 YUYV frame made from a photograph (and a batch of four) through the fused ResNet18 agrees
    with the host reference path: same top-1, logits within the export's parity tolerance (1e-3)."""
    contract = parse_input("yuyv:1280x720")
    plain = torch_to_onnx(build_model(Arch.RESNET18, 10), 17)
    fused = attach_frontend(plain, contract).SerializeToString()
    frames, _ = photo_frames(contract, ("astronaut", "chelsea", "coffee", "rocket"))
    for batch in (frames[:1], frames):
        report = compare_logits(run_onnx(plain.SerializeToString(), reference_input(batch, contract)),
                                run_onnx(fused, batch))  # fmt: skip
        assert report.top1_agreement == 1.0
        assert report.within(ParityTolerance()), report


def test_export_cli_writes_fused_resnet50_with_contract(tmp_path: Path):
    """The full product path: ResNet50 exported with a 1080p YUYV input; parity checked on real photographs
    encoded as frames; the contract recorded in the sidecar."""
    output = tmp_path / "r50_yuyv.onnx"
    result = CliRunner().invoke(app, ["export", "--arch", "resnet50", "--num-classes", "10", "--input",
                                      "yuyv:1920x1080", "--colorspace", "bt709", "-o", str(output)])  # fmt: skip
    assert result.exit_code == 0, result.output
    sidecar = json.loads(output.with_name(output.name + ".json").read_text())
    contract = InputContract.from_dict(sidecar["options"]["input"])
    assert contract == InputContract(YuvLayout.YUYV, 1920, 1080, ColorSpace.BT709)
    parity = sidecar["results"]["frontend_parity"]
    assert parity["samples"] == 6 and parity["max_abs_error"] <= 1e-3 and parity["top1_agreement"] == 1.0
    model = onnx.load(str(output))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    photo = cv2.resize(read_rgb(list_images(default_calibration_dir())[0]), (1920, 1080))
    frames = rgb_to_yuv422(np.stack([photo, photo[::-1]]), YuvLayout.YUYV, ColorSpace.BT709)
    assert run_onnx(str(output), frames).shape == (2, 10)
    bad = CliRunner().invoke(app, ["export", "--input", "yuyv:1920x1080", "--range", "tv", "-o", str(output)])
    assert bad.exit_code == 2 and "unknown range 'tv'" in bad.output


def test_trained_network_keeps_its_top1_on_yuyv_frames():
    """EfficientNet-Lite0 with ImageNet weights: the 11 shipped photographs as 1280x720 YUYV frames through
    the fused model vs the same photographs as RGB with the same crop and filter through the plain model.
    4:2:2 subsampling and 8-bit codes move logits by < 0.5 (measured 0.21); a top-1 may only change where
    the RGB path's top two are closer than twice the measured logit change (a near-tie), and at most once."""
    from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0

    contract = parse_input("yuyv:1280x720")
    plain = torch_to_onnx(load_efficientnet_lite0(), 17)
    fused = attach_frontend(plain, contract).SerializeToString()
    photos = [cv2.resize(read_rgb(p), (1280, 720), interpolation=cv2.INTER_AREA)
              for p in list_images(default_calibration_dir())]  # fmt: skip
    assert len(photos) >= 10
    frames = rgb_to_yuv422(np.stack(photos), contract.layout)
    from_frames = run_onnx(fused, frames)
    from_rgb = run_onnx(plain.SerializeToString(), np.concatenate([rgb_reference_input(p, contract) for p in photos]))
    host = run_onnx(plain.SerializeToString(), reference_input(frames, contract))
    assert compare_logits(host, from_frames).within(ParityTolerance())
    change = np.abs(from_frames - from_rgb).max()
    assert change < 0.5
    top2 = np.sort(from_rgb, axis=1)[:, -2:]
    flipped = from_frames.argmax(1) != from_rgb.argmax(1)
    assert np.all(top2[flipped, 1] - top2[flipped, 0] < 2 * change)
    assert flipped.sum() <= 1
