"""Where a Triton model runs and what it serves there: the GPU plan, the Q/DQ ONNX on onnxruntime with the
TensorRT accelerator, and the CPU twin on KIND_CPU instances, each parsed back with Triton's ModelConfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.precision import Precision
from edgeres.cli.app import app
from edgeres.deploy.model import select_artifact
from edgeres.deploy.record import PROVENANCE_NAME, TritonRecord
from edgeres.deploy.triton import TritonOptions, write_triton_repository
from edgeres.deploy.triton_config import InstanceKind, TritonServing
from edgeres.errors import UserInputError
from edgeres.quantize.tensorrt_qdq import HighPrecision
from tests.deploy.test_deploy import _plan_for, custom_names, parse_triton_config, tiny_artifact

CLASSES = 10


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """Real `edgeres build`s of a tiny FP32 export: INT8 (Q/DQ for TensorRT + U8S8 CPU twin) and FP16."""
    from edgeres.flow.options import BuildOptions
    from edgeres.flow.orchestrator import build
    from edgeres.quantize.gate import FidelityGate

    root = tmp_path_factory.mktemp("triton")
    source = tiny_artifact(root / "export", "fp32", classes=CLASSES)
    gate = FidelityGate(min_sqnr_db=0.0, min_agreement=0.0)  # random tiny weights: the gate is not the point here
    made = {"fp32": source}
    for name, precision in (("int8", Precision.INT8), ("fp16", Precision.FP16)):
        options = BuildOptions(
            precision=precision, onnx=source, calib_size=8, batch_size=4, gate=gate, high_precision=HighPrecision.FP16
        )
        made[name] = build(options, root / name).outdir
    return made


def _instances(config) -> list[tuple[int, int]]:
    return [(group.kind, group.count) for group in config.instance_group]


def test_gpu_instances_serve_the_qdq_onnx_through_the_tensorrt_accelerator_with_the_optimizer_off(
    tmp_path: Path, builds: dict[str, Path]
):
    model = select_artifact(builds["int8"])
    result = write_triton_repository(model, tmp_path / "repo", custom_names(CLASSES), TritonOptions(instances=2))
    config, schema = parse_triton_config(result.config)
    assert config.platform == "onnxruntime_onnx" and result.model_file.name == "model.onnx"
    assert sha256_file(result.model_file) == sha256_file(builds["int8"] / "model_int8_qdq.onnx")
    assert _instances(config) == [(schema.ModelInstanceGroup.KIND_GPU, 2)]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and dict(accelerator.parameters) == {"precision_mode": "INT8"}
    assert config.optimization.graph.level == 2  # onnxruntime_backend: 2 is ORT_DISABLE_ALL, -1 only BASIC
    assert not config.optimization.execution_accelerators.cpu_execution_accelerator
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert (record.instance_kind, record.instance_count) == (InstanceKind.GPU, 2)
    assert record.serving is TritonServing.ONNX_TENSORRT and "precision_mode INT8" in record.why
    comments = " ".join(line[2:] for line in result.config.read_text().splitlines() if line.startswith("# "))
    assert record.why in comments  # the same reason, in the config's comments


def test_an_fp16_onnx_on_gpu_gets_precision_mode_fp16_and_the_default_optimizer(
    tmp_path: Path, builds: dict[str, Path]
):
    model = select_artifact(builds["fp16"])
    result = write_triton_repository(model, tmp_path / "repo", custom_names(CLASSES))
    config, schema = parse_triton_config(result.config)
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert dict(accelerator.parameters) == {"precision_mode": "FP16"}
    assert not config.optimization.HasField("graph")
    assert _instances(config) == [(schema.ModelInstanceGroup.KIND_GPU, 1)]


def test_gpu_instances_serve_a_plan_as_tensorrt_plan_without_an_accelerator(tmp_path: Path, builds: dict[str, Path]):
    model = select_artifact(builds["int8"])
    plan = _plan_for(model, tmp_path, "int8")
    result = write_triton_repository(model, tmp_path / "repo", custom_names(CLASSES), TritonOptions(plan=plan))
    config, schema = parse_triton_config(result.config)
    assert config.platform == "tensorrt_plan" and result.model_file.read_bytes() == plan.read_bytes()
    assert _instances(config) == [(schema.ModelInstanceGroup.KIND_GPU, 1)]
    assert not config.HasField("optimization")
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert record.serving is TritonServing.TENSORRT_PLAN and record.source == plan.name


def test_cpu_instances_serve_the_cpu_twin(tmp_path: Path, builds: dict[str, Path]):
    model = select_artifact(builds["int8"], cpu=True)
    assert model.name == "model_int8_u8s8.onnx"
    options = TritonOptions(kind=InstanceKind.CPU, instances=3)
    result = write_triton_repository(model, tmp_path / "repo", custom_names(CLASSES), options)
    config, schema = parse_triton_config(result.config)
    assert config.platform == "onnxruntime_onnx" and config.name == result.name == "tiny_int8_cpu"
    assert sha256_file(result.model_file) == sha256_file(builds["int8"] / "model_int8_u8s8.onnx")
    assert _instances(config) == [(schema.ModelInstanceGroup.KIND_CPU, 3)]
    assert not config.HasField("optimization")  # the twin needs onnxruntime's QDQ fusions: default level
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert (record.instance_kind, record.instance_count, record.serving) == (
        InstanceKind.CPU,
        3,
        TritonServing.ONNX_CPU,
    )
    assert record.artifact == "model_int8_u8s8.onnx" and "U8S8 twin" in record.why


def test_cpu_prefers_the_twin_then_fp32_and_gpu_never_picks_the_twin(builds: dict[str, Path]):
    assert select_artifact(builds["int8"]).name == "model_int8_qdq.onnx"
    assert select_artifact(builds["int8"], cpu=True).name == "model_int8_u8s8.onnx"
    assert select_artifact(builds["fp16"], cpu=True).name == "model_fp16.onnx"  # what that build has


@pytest.mark.parametrize(
    ("model", "options", "refusal"),
    [
        ("model_int8_qdq.onnx", TritonOptions(kind=InstanceKind.CPU), "CPU instances serve the CPU twin"),
        ("model_int8_u8s8.onnx", TritonOptions(), "GPU instances serve the TensorRT Q/DQ model"),
        ("model_int8_qdq.onnx", TritonOptions(instances=0), "instance count 0"),
    ],
)
def test_a_model_made_for_the_other_device_is_refused(
    tmp_path: Path, builds: dict[str, Path], model: str, options: TritonOptions, refusal: str
):
    with pytest.raises(UserInputError, match=refusal):
        write_triton_repository(builds["int8"] / model, tmp_path / "repo", custom_names(CLASSES), options)
    assert not (tmp_path / "repo").exists()


def test_a_plan_for_cpu_instances_is_refused(tmp_path: Path, builds: dict[str, Path]):
    model = builds["int8"] / "model_int8_u8s8.onnx"
    plan = _plan_for(model, tmp_path, "int8")
    with pytest.raises(UserInputError, match="runs on GPU instances only"):
        options = TritonOptions(kind=InstanceKind.CPU, plan=plan)
        write_triton_repository(model, tmp_path / "repo", custom_names(CLASSES), options)


def test_a_record_written_before_instance_groups_reads_as_one_gpu_instance(tmp_path: Path, builds: dict[str, Path]):
    result = write_triton_repository(builds["fp32"], tmp_path / "repo", custom_names(CLASSES))
    path = result.model_dir / PROVENANCE_NAME
    written = json.loads(path.read_text())
    for key in ("instance_group", "serving", "why"):
        del written[key]
    path.write_text(json.dumps(written))
    record = TritonRecord.read(path)
    assert (record.instance_kind, record.instance_count, record.serving) == (InstanceKind.GPU, 1, None)
    written["instance_group"] = {"kind": "tpu", "count": 1}
    path.write_text(json.dumps(written))
    with pytest.raises(UserInputError, match=r"instance_group\.kind is 'tpu'"):
        TritonRecord.read(path)


def test_cli_kind_and_instances(tmp_path: Path, builds: dict[str, Path]):
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"part {i}\n" for i in range(CLASSES)))
    args = ["deploy", "triton", str(builds["int8"]), "--labels", str(labels), "-o", str(tmp_path / "repo")]
    result = CliRunner().invoke(app, [*args, "--kind", "cpu", "--instances", "2"])
    assert result.exit_code == 0, result.output
    config, schema = parse_triton_config(tmp_path / "repo" / "tiny_int8_cpu" / "config.pbtxt")
    assert _instances(config) == [(schema.ModelInstanceGroup.KIND_CPU, 2)]
    assert "KIND_CPU" in result.output and "U8S8 twin" in result.output
    result = CliRunner().invoke(app, [*args, "--kind", "tpu"])
    assert result.exit_code == 2 and "unknown --kind 'tpu': choose one of gpu|cpu" in result.output
    result = CliRunner().invoke(app, [*args])  # the GPU model beside the CPU one, in the same repository
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["tiny_int8", "tiny_int8_cpu"]
