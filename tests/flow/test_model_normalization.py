"""`build --onnx` of a model that takes other floats than ImageNet RGB: --mean, --std, --channel-order.

The foreign model here is the tiny ImageNet-RGB classifier behind a few nodes that take Caffe-style input
(BGR planes of raw 0..255 pixels less a mean) and rebuild what the classifier takes. Given its convention, a
build must see exactly the logits the plain classifier gives on the same photographs; recorded with the models,
the convention reaches `info`, single-image inference, the rebuild recipe and DeepStream's config.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from typer.testing import CliRunner

from edgeres.artifacts.atomic import write_bytes_atomic
from edgeres.artifacts.build_summary import BuildSummary
from edgeres.cli.app import app
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import SUMMARY_NAME, build
from edgeres.frames.contract import recorded_input
from edgeres.frames.images import center_crop_resize, default_calibration_dir, list_images, read_rgb
from edgeres.frames.normalization import IMAGENET_MEAN, IMAGENET_RGB, IMAGENET_STD, ChannelOrder, PixelNormalization
from edgeres.quantize.artifacts import TENSORRT_MODEL_NAME
from edgeres.quantize.histogram import CalibAlgo
from edgeres.runtime.heldout import HELDOUT_NAME, HeldOutReference
from edgeres.runtime.inputs import read_input
from tests.fixtures.tiny_classifier import TINY_SIZE, save_with_sidecar, tiny_classifier_proto

CAFFE = PixelNormalization((0.406, 0.456, 0.485), (1 / 255, 1 / 255, 1 / 255), ChannelOrder.BGR)
CAFFE_FLAGS = ["--channel-order", "bgr", "--mean", "0.406,0.456,0.485", "--std", ",".join([repr(1 / 255)] * 3)]


def takes(normalization: PixelNormalization, model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` (ImageNet RGB in "input") behind nodes taking `normalization`'s floats in "pixels"."""
    order = [0, 1, 2] if normalization.order is ChannelOrder.RGB else [2, 1, 0]

    def channel(values: object, name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(values, np.float32).reshape(1, 3, 1, 1), name)

    constants = [
        channel(normalization.std, "their_std"), channel(normalization.mean, "their_mean"),
        numpy_helper.from_array(np.array(order, np.int64), "to_rgb"),
        channel(IMAGENET_MEAN, "imagenet_mean"), channel(IMAGENET_STD, "imagenet_std"),
    ]  # fmt: skip
    front = [
        helper.make_node("Mul", ["pixels", "their_std"], ["scaled"]),
        helper.make_node("Add", ["scaled", "their_mean"], ["unit"]),
        helper.make_node("Gather", ["unit", "to_rgb"], ["rgb"], axis=1),
        helper.make_node("Sub", ["rgb", "imagenet_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "imagenet_std"], ["input"]),
    ]
    graph = model.graph
    pixels = helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, ["batch", 3, TINY_SIZE, TINY_SIZE])
    wrapped = helper.make_graph(
        front + list(graph.node), "foreign", [pixels], list(graph.output), constants + list(graph.initializer)
    )
    out = helper.make_model(wrapped, opset_imports=list(model.opset_import), producer_name="elsewhere")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out, full_check=True)
    return out


def _save(model: onnx.ModelProto, path: Path) -> Path:
    write_bytes_atomic(path, model.SerializeToString())
    return path


def _options(onnx_path: Path, normalization: PixelNormalization | None = None) -> BuildOptions:
    return BuildOptions(
        onnx=onnx_path, calib_algo=CalibAlgo.MAX, calib_size=8, profile_iterations=0, build_engine=False,
        normalization=normalization,
    )  # fmt: skip


def _fp32_logits(folder: Path) -> np.ndarray:
    from edgeres.artifacts.kinds import ArtifactRole

    return HeldOutReference.read(folder / HELDOUT_NAME).logits[ArtifactRole.FP32]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The plain classifier built as it is, its Caffe-style twin built with and without its convention."""
    root = tmp_path_factory.mktemp("normalisation")
    plain = tiny_classifier_proto(6)
    paths = {"plain": _save(plain, root / "plain.onnx"), "caffe": _save(takes(CAFFE, plain), root / "caffe.onnx")}
    return {
        "plain": build(_options(paths["plain"]), root / "plain").outdir,
        "caffe": build(_options(paths["caffe"], CAFFE), root / "caffe").outdir,
        "caffe as imagenet": build(_options(paths["caffe"]), root / "caffe_as_imagenet").outdir,
    }


def test_given_its_convention_a_foreign_model_sees_what_the_plain_one_sees(builds: dict[str, Path]) -> None:
    plain, caffe = _fp32_logits(builds["plain"]), _fp32_logits(builds["caffe"])
    assert plain.shape == caffe.shape
    assert np.allclose(plain, caffe, atol=1e-3 * np.abs(plain).max())
    wrong = _fp32_logits(builds["caffe as imagenet"])  # ImageNet floats fed to a Caffe-style model
    assert np.abs(wrong - plain).max() > 0.1 * np.abs(plain).max()


def test_the_models_record_the_convention_and_the_summary_and_info_say_it(builds: dict[str, Path]) -> None:
    folder = builds["caffe"]
    spec = recorded_input(folder / TENSORRT_MODEL_NAME)
    assert spec is not None and spec.normalization == CAFFE and spec.name == "pixels"
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    assert BuildOptions.from_recipe(summary.recipe, folder / "x.onnx").normalization == CAFFE
    assert summary.input is not None and summary.input["normalization"]["order"] == "bgr"
    shown = CliRunner().invoke(app, ["info", str(folder)])
    assert shown.exit_code == 0 and "BGR, mean 0.406,0.456,0.485" in shown.output, shown.output
    plain = CliRunner().invoke(app, ["info", str(builds["plain"] / TENSORRT_MODEL_NAME)])
    assert plain.exit_code == 0 and "RGB, ImageNet mean/std" in plain.output, plain.output


def test_single_image_inference_normalises_as_the_model_records(builds: dict[str, Path]) -> None:
    photo = list_images(default_calibration_dir())[0]
    batch = read_input(builds["caffe"] / TENSORRT_MODEL_NAME, photo)
    expected = CAFFE.apply(center_crop_resize(read_rgb(photo), TINY_SIZE))
    assert np.array_equal(batch[0], expected)
    assert np.array_equal(read_input(builds["plain"] / TENSORRT_MODEL_NAME, photo)[0],
                          IMAGENET_RGB.apply(center_crop_resize(read_rgb(photo), TINY_SIZE)))  # fmt: skip


def test_deepstream_config_takes_bgr_planes_less_the_models_own_mean(builds: dict[str, Path], tmp_path: Path) -> None:
    folder = builds["caffe"]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class {k}" for k in range(6)) + "\n")
    result = CliRunner().invoke(app, ["deploy", "deepstream", str(folder), "--labels", str(labels),
                                      "-o", str(tmp_path / "ds")])  # fmt: skip
    assert result.exit_code == 0, result.output
    config = (tmp_path / "ds" / "config_infer_primary.txt").read_text()
    assert re.search(r"^model-color-format=1$", config, re.M), config
    offsets = re.search(r"^offsets=(.*)$", config, re.M)
    assert offsets is not None
    assert [float(v) for v in offsets.group(1).split(";") if v] == pytest.approx([255 * m for m in CAFFE.mean])


def test_the_build_command_takes_the_convention(tmp_path: Path) -> None:
    source = _save(takes(CAFFE, tiny_classifier_proto(6)), tmp_path / "caffe.onnx")
    result = CliRunner().invoke(app, ["build", "--onnx", str(source), *CAFFE_FLAGS, "--calib-size", "8",
                                      "--no-profile", "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "input: RGB floats, BGR, mean 0.406,0.456,0.485" in result.output
    spec = recorded_input(tmp_path / "out" / TENSORRT_MODEL_NAME)
    assert spec is not None and spec.normalization.order is ChannelOrder.BGR


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mean", "0.5,0.5,0.5"], "describe a model given with --onnx"),
        (["--onnx", "{src}", "--mean", "123.675,116.28,103.53"], "0..1 scale of pixel/255"),
        (["--onnx", "{src}", "--std", "0.2,0.2"], "2 numbers; give three"),
        (["--onnx", "{src}", "--channel-order", "grb"], "not rgb or bgr"),
        (["--onnx", "{src}", "--mean", "0.5,0.5,0.5", "--input", "yuyv:64x48"], "for a model taking RGB floats"),
        (["--onnx", "{edgeres}", "--channel-order", "bgr"], "its sidecar records input normalisation RGB, ImageNet"),
    ],
)
def test_a_convention_that_cannot_apply_is_refused_before_anything_is_written(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    src = _save(tiny_classifier_proto(6), tmp_path / "src.onnx")
    made = save_with_sidecar(tiny_classifier_proto(6), tmp_path / "made.onnx", "fp32")
    args = [a.replace("{src}", str(src)).replace("{edgeres}", str(made)) for a in extra]
    result = CliRunner().invoke(app, ["build", *args, "--no-profile", "-o", str(tmp_path / "out")])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and message in errors[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out").exists()


def test_profile_from_frames_feeds_the_model_what_it_records(builds: dict[str, Path], tmp_path: Path) -> None:
    from edgeres.frames.contract import FrameFormat
    from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv, yuv422_to_rgb
    from edgeres.profile.end_to_end import open_clip, run_end_to_end
    from edgeres.profile.options import FrameClip
    from edgeres.runtime.ort_runner import OnnxRuntimeRunner
    from edgeres.timing import RunLength

    seen: list[np.ndarray] = []

    class Seeing(OnnxRuntimeRunner):
        def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
            seen.append(batch.copy())
            return super()._infer_impl(batch)

    photo = read_rgb(list_images(default_calibration_dir())[0])
    frame = rgb_to_yuv422(np.ascontiguousarray(center_crop_resize(photo, 64, 64)), YuvLayout.YUYV)
    write_yuv(tmp_path / "clip.yuv", frame[None], YuvLayout.YUYV)
    clip = FrameClip(tmp_path / "clip.yuv", FrameFormat(YuvLayout.YUYV, 64, 64))
    with Seeing(builds["caffe"] / "model_int8_u8s8.onnx") as runner, open_clip(clip) as frames:
        assert run_end_to_end(runner, frames, RunLength(iterations=1), warmup=0) is not None
    expected = CAFFE.apply(center_crop_resize(yuv422_to_rgb(frame, YuvLayout.YUYV), TINY_SIZE))
    assert np.allclose(seen[0][0], expected, atol=1e-4)
