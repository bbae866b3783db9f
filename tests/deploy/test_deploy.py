"""Deploy configs checked field by field against the artifact's sidecar, and parsed back by real schemas."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.class_names import ClassNames, class_names_for, imagenet_class_names
from edgeres.artifacts.completion import set_hashes
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.onnx import model_opset
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.quantize_record import read_quantize_record
from edgeres.artifacts.sidecar import read_sidecar, write_sidecar
from edgeres.deploy.deepstream import DeepStreamOptions, nvinfer_normalization, write_deepstream
from edgeres.deploy.model import ENGINE_UNVERIFIED_COMMENT, read_deploy_model, select_artifact
from edgeres.deploy.nvinfer import NETWORK_MODE
from edgeres.deploy.record import DeepStreamRecord, TritonRecord
from edgeres.deploy.triton import PROVENANCE_NAME, TritonOptions, write_triton_repository
from edgeres.engine.verification_record import VerificationOutcome
from edgeres.errors import EdgeresError, UserInputError
from edgeres.frames.contract import InputContract, InputKind
from edgeres.frames.normalization import IMAGENET_MEAN, IMAGENET_RGB, ChannelOrder, PixelNormalization
from edgeres.frames.yuv import YuvLayout
from edgeres.frontend.graph import attach_frontend
from tests.fixtures.engines import PASSED, engine_with_sidecar, verification
from tests.fixtures.faults import ENOSPC, fail_at_write
from tests.fixtures.tiny_classifier import TINY_SIZE, save_with_sidecar, tiny_classifier_proto


def triton_model_config() -> ModuleType:
    """Triton's ModelConfig protobuf module from the tritonclient wheel, loaded without grpc."""
    import tritonclient

    path = Path(tritonclient.__file__).parent / "grpc" / "model_config_pb2.py"
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def custom_names(count: int) -> ClassNames:
    return ClassNames(tuple(f"part {i}" for i in range(count)), "parts.txt")


def tiny_artifact(folder: Path, precision: str = "fp32", classes: int = 5, batch: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return save_with_sidecar(tiny_classifier_proto(classes, batch=batch), folder / f"tiny_{precision}.onnx", precision)


ROLE_OF_PRECISION = {"fp32": ArtifactRole.FP32, "fp16": ArtifactRole.FP16, "int8": ArtifactRole.INT8_TENSORRT}


def finish_build(
    folder: Path, gate_passed: bool | None = True, complete: bool = True, sha256: dict[str, str] | None = None
) -> Path:
    """A build_summary.json as `edgeres build` writes it last, listing every ONNX now in `folder` under the
    role its sidecar names (else the one of its precision)."""
    listed: dict[ArtifactRole, Path] = {}
    for path in sorted(folder.glob("*.onnx")):
        sidecar = read_sidecar(path)
        assert sidecar is not None and sidecar.precision is not None
        role = sidecar.role or ROLE_OF_PRECISION[sidecar.precision]
        assert role not in listed, f"{folder}: two models for {role}; a build writes one"
        listed[role] = path
    return write_summary(folder, listed, gate_passed, complete, sha256)


def write_summary(
    folder: Path,
    listed: dict[ArtifactRole, Path],
    gate_passed: bool | None = True,
    complete: bool = True,
    sha256: dict[str, str] | None = None,
) -> Path:
    """A summary listing `listed`, with each file's SHA-256 unless `sha256` is given, through its one writer."""
    hashes = set_hashes(folder, listed.values()) if sha256 is None else sha256  # as the build hashes its set
    summary = BuildSummary(
        precision=Precision.INT8, recipe={}, weights="random (seeded)", random_weights=True, input=None,
        artifacts=listed, gate_passed=gate_passed, complete=complete, sha256=hashes,
    )  # fmt: skip
    return summary.write(folder / SUMMARY_NAME)


def yuv_artifact(folder: Path, classes: int = 5) -> tuple[Path, InputContract]:
    contract = InputContract(YuvLayout.YUYV, width=64, height=48, size=TINY_SIZE)
    fused = attach_frontend(tiny_classifier_proto(classes), contract)
    folder.mkdir(parents=True, exist_ok=True)
    return save_with_sidecar(fused, folder / "tiny_yuyv.onnx", "fp32", input_contract=contract.to_dict()), contract


def read_nvinfer_config(path: Path) -> dict[str, Any]:
    """The [property] group read as nvinfer reads it (GLib's GKeyFile, a typed getter per key)."""
    from tests.deploy.nvinfer_config import read_property_group

    return read_property_group(path)


# --- DeepStream ---------------------------------------------------------------------------------


def test_deepstream_config_matches_the_sidecar_field_by_field(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "fp16", classes=7)
    sidecar = read_sidecar(artifact)
    assert sidecar is not None
    result = write_deepstream(artifact, tmp_path / "ds", custom_names(7), DeepStreamOptions(batch_size=4))
    prop = read_nvinfer_config(result.config)
    shape = sidecar.options["input"]["shape"]
    assert prop["infer-dims"] == shape[1:]
    assert prop["network-mode"] == NETWORK_MODE[Precision(sidecar.options["precision"])] == 2
    assert prop["batch-size"] == 4
    assert (result.config.parent / prop["onnx-file"]).is_file()
    assert "int8-calib-file" not in prop
    assert prop["model-engine-file"] == "tiny_fp16.nvinfer.onnx_b4_gpu0_fp16.engine"  # what nvinfer saves
    assert prop["network-type"] == 1 and prop["model-color-format"] == 0
    labels = (result.config.parent / prop["labelfile-path"]).read_text().splitlines()
    assert len(labels) == 1  # nvinfer: one line per output layer
    assert labels[0].split(";") == list(custom_names(7).names)
    assert len(labels[0].split(";")) == sidecar.options["num_classes"]
    generated = read_deploy_model(result.onnx)
    assert [generated.output.name] == prop["output-blob-names"]
    assert generated.output.shape[-1] == sidecar.options["num_classes"]


def test_deepstream_offsets_and_scale_reproduce_imagenet_normalisation_exactly(tmp_path: Path, real_images):
    """Feed the generated ONNX what nvinfer computes from the config; it must equal softmax(original(normalised))."""
    artifact = tiny_artifact(tmp_path / "build", "fp32", classes=5)
    result = write_deepstream(artifact, tmp_path / "ds", custom_names(5))
    prop = read_nvinfer_config(result.config)
    scale = prop["net-scale-factor"]
    offsets = np.array(prop["offsets"], dtype=np.float64).reshape(3, 1, 1)
    original = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    nvinfer = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"])
    for name in ("chelsea", "coffee", "rocket"):
        rgb = cv2.resize(real_images[name], (TINY_SIZE, TINY_SIZE), interpolation=cv2.INTER_AREA)
        pixels = rgb.transpose(2, 0, 1).astype(np.float64)  # nvinfer: planar RGB, x in 0..255
        nvinfer_input = (scale * (pixels - offsets)).astype(np.float32)[None]
        probabilities = nvinfer.run(None, {"input": nvinfer_input})[0]
        logits = original.run(None, {"input": IMAGENET_RGB.apply(rgb)[None]})[0].astype(np.float64)
        expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        np.testing.assert_allclose(probabilities, expected, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "taken",
    [IMAGENET_RGB, PixelNormalization((0.5, 0.4, 0.3), (0.1, 0.3, 0.9), ChannelOrder.BGR)],
    ids=["imagenet", "other"],
)
def test_nvinfer_normalization_splits_std_into_scale_and_gain(taken: PixelNormalization):
    norm = nvinfer_normalization(taken)
    for c in range(3):  # s * gain_c must be 1 / (255 * std_c), offsets 255 * mean_c (the model's channel order)
        assert norm.net_scale_factor * norm.channel_gain[c] == pytest.approx(1 / (255 * taken.std[c]), rel=1e-6)
        assert norm.offsets[c] == pytest.approx(255 * taken.mean[c], rel=1e-6)
    assert nvinfer_normalization() == nvinfer_normalization(IMAGENET_RGB)
    assert norm.offsets != pytest.approx(tuple(255 * m for m in IMAGENET_MEAN)) or taken is IMAGENET_RGB


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory) -> Path:
    """A real `edgeres build` (INT8: calibration, Q/DQ ONNX, U8S8 twin) of the tiny model: ~2 s."""
    from edgeres.artifacts.precision import Precision as BuildPrecision
    from edgeres.flow.options import BuildOptions
    from edgeres.flow.orchestrator import build
    from edgeres.quantize.gate import FidelityGate

    root = tmp_path_factory.mktemp("int8")
    source = tiny_artifact(root / "source", "fp32", classes=10)
    gate = FidelityGate(min_sqnr_db=0.0, min_agreement=0.0)  # random tiny weights: the gate is not the point here
    options = BuildOptions(precision=BuildPrecision.INT8, onnx=source, calib_size=8, batch_size=4, gate=gate)
    return build(options, root / "build").outdir


def test_deepstream_from_an_int8_build_uses_the_tensorrt_qdq_model_and_a_table(tmp_path: Path, int8_build: Path):
    from edgeres.quantize.cache import read_trt_table

    result = write_deepstream(select_artifact(int8_build), tmp_path / "ds", custom_names(10))
    prop = read_nvinfer_config(result.config)
    assert prop["network-mode"] == 1
    assert result.onnx.name == "model_int8_qdq.nvinfer.onnx"  # not the onnxruntime U8S8 twin
    header, scales = read_trt_table(result.config.parent / prop["int8-calib-file"])
    ranges = read_sidecar(int8_build / "model_int8_qdq.onnx").results["ranges"]  # type: ignore[union-attr]
    assert header == "TRT-101601-EntropyCalibration2"  # TensorRT 10.16.1 of DeepStream 9.1, the default
    assert set(scales) == set(ranges)
    for name, amax in ranges.items():
        assert scales[name] == pytest.approx(amax / 127, rel=1e-6)
    edited = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"])
    probabilities = edited.run(None, {"input": np.zeros((2, 3, TINY_SIZE, TINY_SIZE), np.float32)})[0]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    quantized = read_quantize_record(int8_build / "model_int8_qdq.onnx")
    assert quantized is not None and quantized.role is ArtifactRole.INT8_TENSORRT and quantized.ranges == ranges


def test_deepstream_onnx_of_an_int8_build_reads_back_as_an_int8_model(tmp_path: Path, int8_build: Path):
    """Its sidecar is a model's like any other: its own precision, the probabilities output, no build role."""
    result = write_deepstream(select_artifact(int8_build), tmp_path / "ds", custom_names(10))
    generated = read_deploy_model(result.onnx)
    assert generated.precision is Precision.INT8 and generated.num_classes == 10
    assert generated.output.name == "probabilities" and generated.spec.output is not None
    record = DeepStreamRecord.of(read_sidecar(result.onnx))  # type: ignore[arg-type]
    assert record.model == "model_int8_qdq.onnx" and record.model_sha256 == sha256_file(int8_build / record.model)
    assert record.served.precision is Precision.INT8 and len(record.channel_gain) == 3
    shipped = onnx.load(str(result.onnx), load_external_data=False)
    assert record.served.spec.opset == model_opset(shipped) == generated.spec.opset  # its own, not the FP32 export's
    fp32 = onnx.load(str(next((int8_build.parent / "source").glob("*.onnx"))))
    assert record.served.spec.opset != model_opset(fp32)  # the FP16 Q/DQ scales need a later opset
    quantized = read_sidecar(int8_build / "model_int8_qdq.onnx")
    assert quantized is not None  # how the model was quantized travels with it, written for people and tools
    assert read_sidecar(result.onnx).options["quantized"] == quantized.options  # type: ignore[union-attr]


def test_triton_from_an_int8_build_matches_the_export_sidecar(tmp_path: Path, int8_build: Path):
    result = write_triton_repository(select_artifact(int8_build), tmp_path / "repo", custom_names(10))
    config, _ = parse_triton_config(result.config)
    source = read_sidecar(next((int8_build.parent / "source").glob("*.onnx")))
    assert source is not None
    assert config.name == "tiny_int8"
    assert list(config.input[0].dims) == source.options["input"]["shape"][1:]
    assert list(config.output[0].dims) == [source.options["num_classes"]] == [10]
    assert sha256_file(result.model_file) == sha256_file(int8_build / "model_int8_qdq.onnx")
    provenance = TritonRecord.read(result.model_dir / "edgeres.json")
    assert provenance.artifact == "model_int8_qdq.onnx" and provenance.source_sha256 == sha256_file(result.model_file)
    assert provenance.served.precision is Precision.INT8 and provenance.served.spec.num_classes == 10
    assert provenance.served.spec.input is not None and provenance.served.spec.input.kind is InputKind.RGB_FLOAT
    written = json.loads((result.model_dir / "edgeres.json").read_text())["artifact_options"]["quantized"]
    assert written["role"] == "int8_tensorrt" and "calib_algo" in written and "high_precision" in written


def test_deepstream_int8_without_calibrated_ranges_is_a_user_error(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "int8")
    with pytest.raises(UserInputError, match="records no calibrated ranges"):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5))


def test_deepstream_refuses_a_yuv_frame_model(tmp_path: Path):
    artifact, _ = yuv_artifact(tmp_path / "build")
    with pytest.raises(UserInputError, match=r"YUV422 frame.*planar RGB.*RGB model"):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5))


def test_deepstream_batch_above_a_fixed_graph_batch_is_refused(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", batch=1)
    with pytest.raises(UserInputError, match="batch size 2"):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5), DeepStreamOptions(batch_size=2))


# --- Triton -------------------------------------------------------------------------------------


def parse_triton_config(path: Path):
    schema = triton_model_config()
    return text_format.Parse(path.read_text(), schema.ModelConfig()), schema


def test_triton_config_parses_with_tritons_schema_and_matches_the_sidecar(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "int8", classes=6)
    sidecar = read_sidecar(artifact)
    assert sidecar is not None
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(6), TritonOptions(max_batch_size=16))
    config, schema = parse_triton_config(result.config)
    assert config.name == result.name == result.model_dir.name == "tiny_int8"
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 16
    (given,) = config.input
    assert given.name == sidecar.options["input"]["name"]
    assert given.data_type == schema.TYPE_FP32
    assert list(given.dims) == sidecar.options["input"]["shape"][1:]
    (output,) = config.output
    assert output.name == sidecar.options["output"]["name"]
    assert list(output.dims) == [sidecar.options["num_classes"]]
    labels = (result.model_dir / output.label_filename).read_text().splitlines()
    assert labels == list(custom_names(6).names)
    assert config.HasField("dynamic_batching")
    assert result.model_file == result.model_dir / "1" / "model.onnx"
    assert sha256_file(result.model_file) == sha256_file(artifact)


def test_triton_yuv_model_takes_the_uint8_frame(tmp_path: Path):
    artifact, contract = yuv_artifact(tmp_path / "build")
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5))
    config, schema = parse_triton_config(result.config)
    (given,) = config.input
    assert given.data_type == schema.TYPE_UINT8
    assert list(given.dims) == [contract.height, contract.width * 2] == list(contract.frame_shape)
    assert result.name == "tiny_fp32_yuv422"


def test_triton_fixed_batch_graph_gets_max_batch_zero_and_full_dims(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", batch=1)
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5))
    config, _ = parse_triton_config(result.config)
    assert config.max_batch_size == 0
    assert list(config.input[0].dims) == [1, 3, TINY_SIZE, TINY_SIZE]
    assert not config.HasField("dynamic_batching")


def test_triton_onnx_copy_runs_and_gives_the_artifacts_logits(tmp_path: Path, real_images):
    artifact = tiny_artifact(tmp_path / "build")
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5))
    rgb = cv2.resize(real_images["astronaut"], (TINY_SIZE, TINY_SIZE), interpolation=cv2.INTER_AREA)
    batch = IMAGENET_RGB.apply(rgb)[None]
    served = ort.InferenceSession(str(result.model_file), providers=["CPUExecutionProvider"])
    source = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(served.run(None, {"input": batch})[0], source.run(None, {"input": batch})[0])


def _plan_for(
    artifact: Path, folder: Path, precision: str, low: int = 1, high: int = 8,
    verified: VerificationOutcome | None = PASSED,
) -> Path:  # fmt: skip
    """Stand-in bytes for an engine (deploy only copies it) with the sidecar layout `edgeres engine` writes."""
    profile = {"tensor": "input", "min": [low, 3, 32, 32], "opt": [low, 3, 32, 32], "max": [high, 3, 32, 32]}
    inputs: dict[str, str | None] = {"onnx": str(artifact), "onnx_sha256": sha256_file(artifact)}
    return engine_with_sidecar(folder / "tiny.plan", inputs, {"precision": precision, "profile": profile}, verified)


@pytest.mark.parametrize(("verified", "refusal"), [(None, "never verified"), (verification(False), "FAILED verif")])
def test_a_plan_never_verified_or_failed_is_refused_unless_allowed_and_then_recorded(
    tmp_path: Path, verified: VerificationOutcome | None, refusal: str
):
    artifact = tiny_artifact(tmp_path / "build", "fp16")
    plan = _plan_for(artifact, tmp_path / "build", "fp16", verified=verified)
    with pytest.raises(UserInputError, match=refusal):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(plan=plan))
    assert not (tmp_path / "repo").exists()
    allowed = TritonOptions(plan=plan, allow_unverified=True)
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5), allowed)
    assert result.config.read_text().startswith(ENGINE_UNVERIFIED_COMMENT)
    assert TritonRecord.read(result.model_dir / PROVENANCE_NAME).engine_unverified is True
    with pytest.raises(UserInputError, match=refusal):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5), DeepStreamOptions(engine=plan))
    allowed_ds = DeepStreamOptions(engine=plan, allow_unverified=True)
    ds = write_deepstream(artifact, tmp_path / "ds", custom_names(5), allowed_ds)
    assert ENGINE_UNVERIFIED_COMMENT in ds.config.read_text()
    sidecar = read_sidecar(ds.onnx)
    assert sidecar is not None and DeepStreamRecord.of(sidecar).engine_unverified is True


def test_a_verified_plan_is_served_with_nothing_recorded_against_it(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "fp16")
    plan = _plan_for(artifact, tmp_path / "build", "fp16")
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(plan=plan))
    assert ENGINE_UNVERIFIED_COMMENT not in result.config.read_text()
    assert TritonRecord.read(result.model_dir / PROVENANCE_NAME).engine_unverified is False


def test_a_verified_sidecar_beside_another_engine_vouches_for_nothing(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "fp16")
    plan = _plan_for(artifact, tmp_path / "build", "fp16")
    plan.write_bytes(b"another engine's bytes")  # swapped after the sidecar was written
    with pytest.raises(UserInputError, match="describes another file"):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(plan=plan))


def test_triton_plan_becomes_tensorrt_plan_with_batch_checked_against_its_profile(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "fp16")
    plan = _plan_for(artifact, tmp_path / "build", "fp16", high=8)
    options = TritonOptions(plan=plan, max_batch_size=8)
    result = write_triton_repository(artifact, tmp_path / "repo", custom_names(5), options)
    config, _ = parse_triton_config(result.config)
    assert config.platform == "tensorrt_plan"
    assert result.model_file.name == "model.plan"
    assert result.model_file.read_bytes() == plan.read_bytes()
    with pytest.raises(UserInputError, match="at most 8"):
        too_many = TritonOptions(plan=plan, max_batch_size=9)
        write_triton_repository(artifact, tmp_path / "repo2", custom_names(5), too_many)


def test_triton_plan_from_another_model_or_precision_is_refused(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", "fp16")
    other = tiny_artifact(tmp_path / "other", "fp16", classes=6)
    wrong_model = _plan_for(other, tmp_path / "other", "fp16")
    with pytest.raises(UserInputError, match="sha256"):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(plan=wrong_model))
    wrong_precision = _plan_for(artifact, tmp_path / "build", "int8")
    with pytest.raises(UserInputError, match="precision int8"):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(plan=wrong_precision))


# --- shared: class names and artifact selection -------------------------------------------------


def test_class_names_must_match_the_model(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", classes=5)
    with pytest.raises(UserInputError, match="4 class names for a model with 5 classes"):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(4))
    with pytest.raises(UserInputError, match="4 class names for a model with 5 classes"):
        write_deepstream(artifact, tmp_path / "ds", custom_names(4))


def test_imagenet_names_fill_a_1000_class_deployment(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", classes=1000)
    result = write_triton_repository(artifact, tmp_path / "repo", class_names_for(1000))
    assert result.labels.read_text().splitlines() == list(imagenet_class_names().names)


def test_build_directory_prefers_int8_then_honours_the_asked_precision_and_input(tmp_path: Path):
    build, camera = tmp_path / "build", tmp_path / "camera"
    for precision in ("fp32", "fp16", "int8"):
        tiny_artifact(build, precision)
    finish_build(build)
    yuv_artifact(camera)
    finish_build(camera)
    assert select_artifact(build).name == "tiny_int8.onnx"
    assert select_artifact(build, Precision.FP16).name == "tiny_fp16.onnx"
    assert select_artifact(camera, Precision.FP32, InputKind.YUV422).name == "tiny_yuyv.onnx"
    with pytest.raises(UserInputError, match="no ONNX model with a sidecar taking yuv422 input"):
        select_artifact(build, input_kind=InputKind.YUV422)
    with pytest.raises(UserInputError, match="no ONNX model with a sidecar taking rgb_float input"):
        select_artifact(camera, input_kind=InputKind.RGB_FLOAT)


def test_sidecar_that_disagrees_with_the_graph_is_refused(tmp_path: Path):
    artifact = tiny_artifact(tmp_path / "build", classes=5)
    sidecar = read_sidecar(artifact)
    assert sidecar is not None
    options = dict(sidecar.options, num_classes=6)
    write_sidecar(artifact, "export", sidecar.inputs, options)
    with pytest.raises(UserInputError, match="5 classes, the sidecar says 6"):
        read_deploy_model(artifact)


def test_a_model_without_sidecar_is_refused(tmp_path: Path):
    path = tmp_path / "bare.onnx"
    path.write_bytes(tiny_classifier_proto(3).SerializeToString())
    with pytest.raises(UserInputError, match="no sidecar"):
        read_deploy_model(path)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_writes_both_deployments_from_a_build_directory(tmp_path: Path):
    from typer.testing import CliRunner

    from edgeres.cli.app import app

    build = tmp_path / "build"
    tiny_artifact(build, "fp16", classes=1000)
    finish_build(build)
    runner = CliRunner()
    ds = runner.invoke(app, ["deploy", "deepstream", str(build), "-o", str(tmp_path / "ds"), "--batch-size", "2"])
    assert ds.exit_code == 0, ds.output
    assert read_nvinfer_config(tmp_path / "ds" / "config_infer_primary.txt")["batch-size"] == 2
    tr = runner.invoke(app, ["deploy", "triton", str(build), "-o", str(tmp_path / "repo"), "--max-batch", "4"])
    assert tr.exit_code == 0, tr.output
    config, _ = parse_triton_config(tmp_path / "repo" / "tiny_fp16" / "config.pbtxt")
    assert config.max_batch_size == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "triton", "{tmp}/absent", "-o", "{tmp}/repo"], "no such artifact"),
        (["deploy", "deepstream", "{tmp}/build", "--precision", "int4", "-o", "{tmp}/ds"], "unknown --precision"),
        (["deploy", "deepstream", "{tmp}/build", "--threshold", "1.5", "-o", "{tmp}/ds"], "classifier threshold 1.5"),
        (["deploy", "deepstream", "{tmp}/build", "--precision", "int8", "-o", "{tmp}/ds"], "no int8 model"),
        (["deploy", "triton", "{tmp}/build", "--labels", "{tmp}/absent.txt", "-o", "{tmp}/repo"], "not found"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str):
    from typer.testing import CliRunner

    from edgeres.cli.app import app

    tiny_artifact(tmp_path / "build", "fp32", classes=1000)
    finish_build(tmp_path / "build")
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# --- nothing half-written: a full disk or an interrupt mid-deploy -------------------------------------


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


FAULTS = {"enospc": ENOSPC, "interrupt": KeyboardInterrupt("SIGTERM")}


# Triton writes: the model copy (shutil), then 1 labels, 2 edgeres.json, 3 config.pbtxt.
@pytest.mark.parametrize(("n", "fault"), [(1, "enospc"), (2, "enospc"), (3, "enospc"), (3, "interrupt")])
def test_triton_fault_mid_write_leaves_no_model_folder(tmp_path: Path, monkeypatch, n: int, fault: str):
    from edgeres.artifacts.atomic import ArtifactWriteError

    artifact = tiny_artifact(tmp_path / "build", "fp32", classes=5)
    (tmp_path / "repo" / "other_model").mkdir(parents=True)  # the repository is shared: left as it was
    fail_at_write(monkeypatch, n, FAULTS[fault])
    with pytest.raises(KeyboardInterrupt if fault == "interrupt" else ArtifactWriteError):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5))
    assert files_under(tmp_path / "repo") == ["other_model"]


def test_triton_fault_while_copying_the_model_leaves_no_model_folder(tmp_path: Path, monkeypatch):
    from edgeres.artifacts.atomic import ArtifactWriteError
    from edgeres.deploy import triton

    def half_copy(source: Path, target: Path) -> None:
        with open(target, "wb") as handle:
            handle.write(source.read_bytes()[:100])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(triton, "_copy", half_copy)
    with pytest.raises(ArtifactWriteError, match="No space left on device"):
        write_triton_repository(tiny_artifact(tmp_path / "build"), tmp_path / "repo", custom_names(5))
    assert not (tmp_path / "repo").exists()  # made by the failed call, so removed with the rest


def test_triton_new_version_that_fails_leaves_the_served_one_whole(tmp_path: Path, monkeypatch):
    artifact = tiny_artifact(tmp_path / "build", "fp32", classes=5)
    first = write_triton_repository(artifact, tmp_path / "repo", custom_names(5))
    before = files_under(first.model_dir)
    config = first.config.read_bytes()
    fail_at_write(monkeypatch, 3, KeyboardInterrupt())  # at config.pbtxt, the last file
    with pytest.raises(KeyboardInterrupt):
        write_triton_repository(artifact, tmp_path / "repo", custom_names(5), TritonOptions(version=2))
    assert files_under(first.model_dir) == before and first.config.read_bytes() == config
    assert sha256_file(first.model_file) == sha256_file(artifact)


# DeepStream writes: 1 the nvinfer ONNX, 2 its sidecar, 3 labels, 4 the config.
@pytest.mark.parametrize(("n", "fault"), [(1, "enospc"), (2, "enospc"), (3, "enospc"), (4, "enospc"), (2, "interrupt")])
def test_deepstream_fault_mid_write_leaves_no_folder(tmp_path: Path, monkeypatch, n: int, fault: str):
    from edgeres.artifacts.atomic import ArtifactWriteError

    artifact = tiny_artifact(tmp_path / "build", "fp32", classes=5)
    fail_at_write(monkeypatch, n, FAULTS[fault])
    with pytest.raises(KeyboardInterrupt if fault == "interrupt" else ArtifactWriteError):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_deepstream_fault_in_an_existing_folder_removes_only_what_it_added(tmp_path: Path, monkeypatch):
    artifact = tiny_artifact(tmp_path / "build", "fp32", classes=5)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "pipeline.txt").write_text("the user's own file\n")
    fail_at_write(monkeypatch, 4, OSError(28, "No space left on device"))
    with pytest.raises(EdgeresError):
        write_deepstream(artifact, tmp_path / "ds", custom_names(5))
    assert files_under(tmp_path / "ds") == ["pipeline.txt"]


def test_cli_deploy_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from edgeres.cli.app import app

    artifact = tiny_artifact(tmp_path / "build", "fp16", classes=1000)
    fail_at_write(monkeypatch, 2, ENOSPC)
    result = CliRunner().invoke(app, ["deploy", "triton", str(artifact), "-o", str(tmp_path / "repo")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "not written (No space left on device: the disk is full)" in result.output
    assert files_under(tmp_path / "repo") == []
