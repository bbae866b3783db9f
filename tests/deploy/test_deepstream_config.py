"""The nvinfer config of every kind of build, for every DeepStream release, read back with GLib's GKeyFile
(the parser Gst-nvinfer loads it with) and checked against the model it points to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.cli.app import app
from edgeres.deploy.deepstream import DeepStreamOptions, write_deepstream
from edgeres.deploy.deepstream_release import NEWEST_RELEASE, RELEASES, DeepStreamRelease, TensorRTVersion
from edgeres.deploy.model import read_deploy_model, select_artifact
from edgeres.deploy.nvinfer import FILE_KEYS, NVINFER_KEYS, PROPERTY_GROUP, KeyType, NvinferEntry
from edgeres.deploy.record import DeepStreamRecord
from edgeres.errors import UserInputError
from edgeres.quantize.cache import read_trt_table, trt_version_number
from edgeres.quantize.tensorrt_qdq import HighPrecision
from tests.deploy.gkeyfile import GKeyFileError, KeyFile
from tests.deploy.nvinfer_config import DOCUMENTED_KEYS, read_property_group, require_glib
from tests.deploy.test_deploy import custom_names, tiny_artifact, yuv_artifact
from tests.fixtures.engines import engine_with_sidecar

# NvDsInferNetworkMode (nvdsinfer_context.h) and the names networkMode2Str gives engine files.
NVINFER_MODE = {Precision.FP32: (0, "fp32"), Precision.INT8: (1, "int8"), Precision.FP16: (2, "fp16")}
CLASSES = 10


@pytest.fixture(scope="module", autouse=True)
def needs_glib() -> None:
    require_glib()


@dataclass(frozen=True)
class Expected:
    """What the config must say about the model it was written for."""

    precision: Precision
    dims: tuple[int, ...]
    batch_size: int
    gpu_id: int
    engine: Path | None


def check_config(config: Path, expected: Expected) -> dict[str, Any]:
    prop = read_property_group(config)
    folder = config.parent
    mode, mode_name = NVINFER_MODE[expected.precision]
    assert prop["network-mode"] == mode and prop["batch-size"] == expected.batch_size
    assert prop["gpu-id"] == expected.gpu_id
    assert tuple(prop["infer-dims"]) == expected.dims
    onnx_path = folder / prop["onnx-file"]
    graph_input = onnx.load(str(onnx_path), load_external_data=False).graph.input[0]
    assert tuple(d.dim_value for d in graph_input.type.tensor_type.shape.dim[1:]) == expected.dims
    assert prop["output-blob-names"] == [read_deploy_model(onnx_path).output.name]
    labels = (folder / prop["labelfile-path"]).read_text().splitlines()
    assert len(labels) == 1 and len(labels[0].split(";")) == CLASSES
    own_engine = f"{prop['onnx-file']}_b{expected.batch_size}_gpu{expected.gpu_id}_{mode_name}.engine"
    if expected.engine is None:
        assert prop["model-engine-file"] == own_engine  # nvinfer saves its engine there, then loads it
    for key in FILE_KEYS:
        if key in prop and prop[key] != own_engine:
            assert (folder / prop[key]).is_file(), f"{key}={prop[key]} does not exist beside {config}"
    assert ("int8-calib-file" in prop) == (expected.precision is Precision.INT8)
    return prop


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """An FP32 export and real `edgeres build`s of it (FP16; INT8 with an FP16 and an FP32 remainder)."""
    from edgeres.flow.options import BuildOptions
    from edgeres.flow.orchestrator import build
    from edgeres.quantize.gate import FidelityGate

    root = tmp_path_factory.mktemp("builds")
    source = tiny_artifact(root / "export", "fp32", classes=CLASSES)
    gate = FidelityGate(min_sqnr_db=0.0, min_agreement=0.0)  # random tiny weights: the gate is not the point here
    made = {"fp32": source}
    for name, precision, remainder in [
        ("fp16", Precision.FP16, HighPrecision.FP16),
        ("int8", Precision.INT8, HighPrecision.FP16),
        ("int8-fp32-remainder", Precision.INT8, HighPrecision.FP32),
    ]:
        options = BuildOptions(
            precision=precision, onnx=source, calib_size=8, batch_size=4, gate=gate, high_precision=remainder
        )
        made[name] = build(options, root / name).outdir
    return made


def _engine_for(model: Path, precision: Precision, folder: Path) -> Path:
    """Stand-in engine bytes with a verified sidecar, as `edgeres engine` leaves them."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, str | None] = {"onnx": str(model), "onnx_sha256": sha256_file(model)}
    return engine_with_sidecar(folder / "user.engine", inputs, {"precision": precision.value})


def _parses(kind: str, release: DeepStreamRelease) -> bool:
    return kind != "int8" or release.tensorrt.major >= 10  # float16 Q/DQ scales need TensorRT 10


CASES = [
    (kind, release, engine)
    for kind in ("fp32", "fp16", "int8", "int8-fp32-remainder")
    for release in DeepStreamRelease
    for engine in (False, True)
    if _parses(kind, release)
]


@pytest.mark.parametrize(("kind", "release", "engine"), CASES, ids=lambda v: getattr(v, "value", str(v)))
def test_every_build_for_every_release_is_a_config_gkeyfile_reads_as_nvinfer_does(
    tmp_path: Path, builds: dict[str, Path], kind: str, release: DeepStreamRelease, engine: bool
):
    model = select_artifact(builds[kind]) if builds[kind].is_dir() else builds[kind]
    precision = read_deploy_model(model).precision
    user_engine = _engine_for(model, precision, tmp_path / "engines") if engine else None
    options = DeepStreamOptions(batch_size=2, gpu_id=1, engine=user_engine, release=release)
    result = write_deepstream(model, tmp_path / "ds", custom_names(CLASSES), options)
    prop = check_config(result.config, Expected(precision, (3, 32, 32), 2, 1, user_engine))
    if user_engine is not None:
        assert Path(prop["model-engine-file"]) == user_engine.resolve()
    assert result.engine_file == prop["model-engine-file"] and result.engine_from_nvinfer is (not engine)
    assert DeepStreamRecord.of(read_sidecar(result.onnx)).release is release  # type: ignore[arg-type]
    if precision is Precision.INT8:
        header, _ = read_trt_table(result.config.parent / prop["int8-calib-file"])
        assert header == f"TRT-{trt_version_number(str(release.tensorrt))}-EntropyCalibration2"


def test_the_default_release_is_the_newest_known():
    assert DeepStreamOptions().release is NEWEST_RELEASE is DeepStreamRelease.DS_9_1
    assert list(RELEASES) == list(DeepStreamRelease)


@pytest.mark.parametrize(
    ("version", "header"),
    [
        # TensorRT 8 headers (the existing tables' "TRT-8601-"); TensorRT 10's NV_TENSORRT_VERSION_INT
        # is major*10000 + minor*100 + patch (NVIDIA's TAO caches for TensorRT 10.3 start "TRT-100300-").
        (TensorRTVersion(8, 6, 1), 8601),
        (TensorRTVersion(8, 5, 3), 8503),
        (TensorRTVersion(10, 3, 0), 100300),
        (TensorRTVersion(10, 14, 1), 101401),
    ],
)
def test_the_table_header_number_is_tensorrts_own(version: TensorRTVersion, header: int):
    assert trt_version_number(str(version)) == header


def test_the_engine_nvinfer_builds_is_loaded_from_the_name_written(tmp_path: Path, builds: dict[str, Path]):
    """nvinfer resolves model-engine-file against the config's folder and serialises its own engine beside
    onnx-file: both are the same path, so the second start finds what the first one saved."""
    result = write_deepstream(select_artifact(builds["int8"]), tmp_path / "ds", custom_names(CLASSES))
    prop = read_property_group(result.config)
    saved_by_nvinfer = (result.config.parent / prop["onnx-file"]).resolve().as_posix() + "_b1_gpu0_int8.engine"
    assert (result.config.parent / prop["model-engine-file"]).resolve().as_posix() == saved_by_nvinfer


def test_nvinfer_normalisation_of_the_config_feeds_the_written_onnx(tmp_path: Path, builds: dict[str, Path]):
    """The values read through GKeyFile, applied as nvinfer does, give the source model's probabilities."""
    source = builds["fp32"]
    result = write_deepstream(source, tmp_path / "ds", custom_names(CLASSES))
    prop = read_property_group(result.config)
    pixels = np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32)).astype(np.float64)
    offsets = np.array(prop["offsets"]).reshape(1, 3, 1, 1)
    fed = (prop["net-scale-factor"] * (pixels - offsets)).astype(np.float32)
    served = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"]).run(None, {"input": fed})[0]
    mean, std = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1), np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    normalised = ((pixels / 255 - mean) / std).astype(np.float32)
    logits = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"input": normalised})[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(served, expected, atol=2e-6, rtol=1e-4)


# --- hostile -----------------------------------------------------------------------------------


@pytest.mark.parametrize("release", [r for r in DeepStreamRelease if r.tensorrt.major < 10])
def test_an_fp16_scale_int8_model_for_a_tensorrt_8_release_is_refused_with_the_fix(
    tmp_path: Path, builds: dict[str, Path], release: DeepStreamRelease
):
    model = select_artifact(builds["int8"])
    with pytest.raises(UserInputError) as refusal:
        write_deepstream(model, tmp_path / "ds", custom_names(CLASSES), DeepStreamOptions(release=release))
    message = str(refusal.value)
    assert "\n" not in message and f"DeepStream {release.value}" in message and "float16" in message
    assert "--high-precision fp32" in message and "DeepStream 7.1 or later" in message
    assert not (tmp_path / "ds").exists()


def test_the_fp32_remainder_int8_model_of_the_same_calibration_deploys_to_tensorrt_8(
    tmp_path: Path, builds: dict[str, Path]
):
    model = select_artifact(builds["int8-fp32-remainder"])
    options = DeepStreamOptions(release=DeepStreamRelease.DS_7_0)
    result = write_deepstream(model, tmp_path / "ds", custom_names(CLASSES), options)
    header, _ = read_trt_table(result.calibration)  # type: ignore[arg-type]
    assert header == "TRT-8601-EntropyCalibration2"


def test_a_raw_frame_model_is_refused_with_why_nvinfer_cannot_feed_it(tmp_path: Path):
    artifact, _ = yuv_artifact(tmp_path / "build")
    with pytest.raises(UserInputError) as refusal:
        write_deepstream(artifact, tmp_path / "ds", custom_names(5))
    message = str(refusal.value)
    assert "converts every frame to planar RGB before the network" in message
    assert "RGB model of the same build" in message and "camera_app" in message and "Triton" in message
    assert not (tmp_path / "ds").exists()


def test_the_cli_refuses_a_raw_frame_build_in_one_line_with_the_reason(tmp_path: Path):
    from tests.deploy.test_deploy import finish_build

    yuv_artifact(tmp_path / "camera")
    finish_build(tmp_path / "camera")
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"part {i}\n" for i in range(5)))
    result = CliRunner().invoke(app, ["deploy", "deepstream", str(tmp_path / "camera"), "--labels", str(labels),
                                      "-o", str(tmp_path / "ds")])  # fmt: skip
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and "planar RGB" in errors[0], result.output
    assert not (tmp_path / "ds").exists()


def test_the_cli_names_the_release_and_refuses_one_it_does_not_know(tmp_path: Path, builds: dict[str, Path]):
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"part {i}\n" for i in range(CLASSES)))
    args = ["deploy", "deepstream", str(builds["int8"]), "--labels", str(labels), "-o", str(tmp_path / "ds")]
    result = CliRunner().invoke(app, [*args, "--deepstream", "6.3"])
    assert result.exit_code == 2 and "--high-precision fp32" in result.output, result.output
    result = CliRunner().invoke(app, [*args, "--deepstream", "5.1"])
    assert result.exit_code == 2 and "unknown DeepStream release '5.1'" in result.output, result.output
    result = CliRunner().invoke(app, [*args, "--deepstream", "7.1", "--gpu-id", "1"])
    assert result.exit_code == 0, result.output
    prop = read_property_group(tmp_path / "ds" / "config_infer_primary.txt")
    assert prop["model-engine-file"] == "model_int8_qdq.nvinfer.onnx_b1_gpu1_int8.engine"
    assert "DeepStream 7.1" in result.output and prop["model-engine-file"] in result.output


def test_gkeyfile_refuses_what_configparser_would_accept(tmp_path: Path):
    """Why the tests read configs with GKeyFile: `True` is no GLib boolean, `1.0` no integer."""
    config = tmp_path / "config.txt"
    config.write_text("[property]\nmaintain-aspect-ratio=True\nbatch-size=1.0\n")
    with KeyFile(config) as keyfile:
        for key, kind in (("maintain-aspect-ratio", KeyType.BOOLEAN), ("batch-size", KeyType.INTEGER)):
            with pytest.raises(GKeyFileError, match="cannot be interpreted"):
                keyfile.get(PROPERTY_GROUP, key, kind)


def test_a_key_nvinfer_does_not_know_cannot_be_written():
    with pytest.raises(ValueError, match="not a Gst-nvinfer key"):
        NvinferEntry("maintain-aspect", False).render()
    assert set(NVINFER_KEYS) <= DOCUMENTED_KEYS


@pytest.mark.parametrize(
    ("key", "value"),
    [("batch-size", True), ("batch-size", 1.5), ("maintain-aspect-ratio", 0), ("onnx-file", "a;b.onnx"),
     ("onnx-file", "C:\\models\\a.onnx"), ("onnx-file", " a.onnx"), ("infer-dims", [])],
)  # fmt: skip
def test_a_value_its_getter_would_refuse_is_not_written(key: str, value: object):
    with pytest.raises(UserInputError, match=f"nvinfer config key {key}"):
        NvinferEntry(key, value).render()  # type: ignore[arg-type]
