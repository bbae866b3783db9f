"""Triton's CPU instances on the OpenVINO backend: written where the build recorded OpenVINO as its CPU runtime,
the onnxruntime twin otherwise; asking for OpenVINO refused where the build never verified it there unless
accepted unverified; each config parsed back with Triton's ModelConfig, and the OpenVINO entry loaded by real
OpenVINO the way the backend loads it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.cli.app import app
from edgeres.deploy.cpu_backend import OPENVINO_SECTION, CpuBackend, cpu_artifact
from edgeres.deploy.record import PROVENANCE_NAME, TritonRecord
from edgeres.deploy.triton import RUNTIME_UNVERIFIED_COMMENT, TritonOptions, TritonResult, write_triton_repository
from edgeres.deploy.triton_config import InstanceKind, TritonServing
from edgeres.errors import UserInputError
from edgeres.runtime.cpu_choice import CPU_RUNTIME_SECTION, CpuRuntimeChoice
from edgeres.runtime.kinds import RuntimeKind
from tests.deploy.test_deploy import custom_names, parse_triton_config, tiny_artifact

CLASSES = 10
QDQ, TWIN = "model_int8_qdq.onnx", "model_int8_u8s8.onnx"
OPENVINO_CHOSEN = CpuRuntimeChoice(RuntimeKind.OPENVINO, QDQ, "OpenVINO 3.8 ms, the twin 8.1 ms; OpenVINO verified")
SLOWER = CpuRuntimeChoice(RuntimeKind.ONNXRUNTIME, TWIN, "OpenVINO 0.11 ms, the twin 0.08 ms; OpenVINO verified")
FAILED = CpuRuntimeChoice(RuntimeKind.ONNXRUNTIME, TWIN, "OpenVINO's run of the Q/DQ model is not verified")
FAILURE = "logits SQNR 3.0 dB against FP32 is below the 20.0 dB its reference arithmetic allows"
CPU = InstanceKind.CPU


@pytest.fixture(scope="module")
def int8_build(tmp_path_factory) -> Path:
    """A real INT8 `edgeres build` of the tiny model (Q/DQ for TensorRT + U8S8 twin), as built today: no record."""
    from edgeres.artifacts.precision import Precision
    from edgeres.flow.options import BuildOptions
    from edgeres.flow.orchestrator import build
    from edgeres.quantize.gate import FidelityGate

    root = tmp_path_factory.mktemp("openvino")
    source = tiny_artifact(root / "export", "fp32", classes=CLASSES)
    gate = FidelityGate(min_sqnr_db=0.0, min_agreement=0.0)  # random tiny weights: the gate is not the point here
    options = BuildOptions(precision=Precision.INT8, onnx=source, calib_size=8, batch_size=4, gate=gate)
    return build(options, root / "build").outdir


def recording(build: Path, folder: Path, choice: CpuRuntimeChoice | None, *failures: str) -> Path:
    """A copy of `build` whose summary records `choice` under cpu_runtime and OpenVINO's measure of the Q/DQ model
    with `failures` (none: verified), as `edgeres build` writes them; with no choice, neither (an older build)."""
    shutil.copytree(build, folder)
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    sections = {k: v for k, v in summary.sections.items() if k not in (CPU_RUNTIME_SECTION, OPENVINO_SECTION)}
    if choice is not None:
        fidelity = summary.sections["fidelity"]["int8_tensorrt"]  # as if OpenVINO had matched the reference exactly
        measured = {"model": "int8_tensorrt", "version": "2026.4.1", "fidelity": fidelity, "verified": not failures,
                    "failures": list(failures)}  # fmt: skip
        sections |= {CPU_RUNTIME_SECTION: choice.to_json(), OPENVINO_SECTION: measured}
    replace(summary, sections=sections).write(folder / SUMMARY_NAME)
    return folder


def deploy(folder: Path, repo: Path, backend: CpuBackend = CpuBackend.AUTO, **options) -> TritonResult:
    chosen = TritonOptions(kind=CPU, cpu_backend=backend, **options)
    return write_triton_repository(cpu_artifact(folder, backend), repo, custom_names(CLASSES), chosen)


def _parameters(config) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def test_a_build_recording_openvino_is_served_on_the_openvino_backend(tmp_path: Path, int8_build: Path):
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN)
    assert cpu_artifact(folder, CpuBackend.AUTO).name == QDQ
    result = deploy(folder, tmp_path / "repo")
    config, schema = parse_triton_config(result.config)
    assert (config.backend, config.platform, config.default_model_filename) == ("openvino", "", "model.onnx")
    assert config.name == result.name == "tiny_int8_cpu" and result.model_file.name == "model.onnx"
    assert sha256_file(result.model_file) == sha256_file(folder / QDQ)  # the file the build measured, unconverted
    assert [(g.kind, g.count) for g in config.instance_group] == [(schema.ModelInstanceGroup.KIND_CPU, 1)]
    assert _parameters(config) == {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY", "ENABLE_BATCH_PADDING": "YES"}
    assert not config.HasField("optimization")
    # batching, input and output as the onnxruntime twin's config has them
    twin = deploy(recording(int8_build, tmp_path / "plain", None), tmp_path / "twin_repo")
    twin_config, _ = parse_triton_config(twin.config)
    assert config.max_batch_size == twin_config.max_batch_size == 8
    assert config.dynamic_batching == twin_config.dynamic_batching
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        (t.name, t.data_type, list(t.dims)) for t in twin_config.input
    ]
    assert config.output == twin_config.output and config.output[0].label_filename == "labels.txt"
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert (record.serving, record.instance_kind, record.runtime_unverified) == (TritonServing.OPENVINO_CPU, CPU, False)
    assert record.artifact == QDQ and OPENVINO_CHOSEN.reason in record.why
    assert json.loads((result.model_dir / PROVENANCE_NAME).read_text())["backend"] == "openvino"
    assert RUNTIME_UNVERIFIED_COMMENT not in result.config.read_text()


@pytest.mark.parametrize(
    ("instances", "max_batch", "expected"),
    [
        (3, 8, {"NUM_STREAMS": "3", "ENABLE_BATCH_PADDING": "YES"}),  # the README's throughput example
        (1, 1, {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}),  # batch 1 is always max_batch_size: no padding
    ],
)
def test_openvino_streams_follow_the_instances_and_padding_the_batch(
    tmp_path: Path, int8_build: Path, instances: int, max_batch: int, expected: dict[str, str]
):
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN)
    result = deploy(folder, tmp_path / "repo", instances=instances, max_batch_size=max_batch)
    config, _ = parse_triton_config(result.config)
    assert _parameters(config) == expected and config.instance_group[0].count == instances


@pytest.mark.parametrize(
    ("choice", "failures"), [(None, ()), (SLOWER, ()), (FAILED, (FAILURE,))], ids=["no record", "slower", "failed"]
)
def test_auto_serves_the_twin_on_onnxruntime_unless_the_build_chose_openvino(
    tmp_path: Path, int8_build: Path, choice: CpuRuntimeChoice | None, failures: tuple[str, ...]
):
    folder = recording(int8_build, tmp_path / "build", choice, *failures)
    assert cpu_artifact(folder, CpuBackend.AUTO).name == TWIN
    result = deploy(folder, tmp_path / "repo")
    config, _ = parse_triton_config(result.config)
    assert (config.platform, config.backend, config.default_model_filename) == ("onnxruntime_onnx", "", "")
    assert not config.parameters and sha256_file(result.model_file) == sha256_file(folder / TWIN)
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert record.serving is TritonServing.ONNX_CPU and not record.runtime_unverified
    assert json.loads((result.model_dir / PROVENANCE_NAME).read_text())["backend"] == "onnxruntime"


def test_auto_keeps_onnxruntime_for_a_model_the_record_does_not_name(tmp_path: Path, int8_build: Path):
    folder = recording(int8_build, tmp_path / "build", replace(OPENVINO_CHOSEN, model="model_fp32.onnx"))
    assert cpu_artifact(folder, CpuBackend.AUTO).name == TWIN


def test_the_real_build_deploys_what_it_recorded(tmp_path: Path, int8_build: Path):
    """The fixture build's own cpu_runtime (edgeres.flow.cpu_runtime measured it on this CPU), or none at all."""
    summary = BuildSummary.read(int8_build / SUMMARY_NAME)
    recorded = summary.sections.get(CPU_RUNTIME_SECTION)
    result = deploy(int8_build, tmp_path / "repo")
    served = TritonRecord.read(result.model_dir / PROVENANCE_NAME).serving
    on_openvino = recorded is not None and recorded["runtime"] == "openvino"
    assert served is (TritonServing.OPENVINO_CPU if on_openvino else TritonServing.ONNX_CPU)


@pytest.mark.parametrize(
    ("choice", "failures", "refusal"),
    [
        (None, (), "its build never ran it on OpenVINO \\(its build_summary.json records no openvino measure\\)"),
        (FAILED, (FAILURE,), f"its build measured it on OpenVINO and it FAILED \\({FAILURE}\\)"),
    ],
    ids=["never measured", "failed"],
)
def test_openvino_asked_for_is_refused_unless_the_build_verified_it_or_it_is_accepted_unverified(
    tmp_path: Path, int8_build: Path, choice: CpuRuntimeChoice | None, failures: tuple[str, ...], refusal: str
):
    folder = recording(int8_build, tmp_path / "build", choice, *failures)
    assert cpu_artifact(folder, CpuBackend.OPENVINO).name == QDQ
    with pytest.raises(UserInputError, match=refusal) as refused:
        deploy(folder, tmp_path / "repo", CpuBackend.OPENVINO)
    assert "\n" not in str(refused.value) and "--allow-unverified" in str(refused.value)
    assert not (tmp_path / "repo").exists()
    result = deploy(folder, tmp_path / "repo", CpuBackend.OPENVINO, allow_unverified=True)
    config, _ = parse_triton_config(result.config)
    assert config.backend == "openvino" and result.config.read_text().startswith(RUNTIME_UNVERIFIED_COMMENT)
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert record.serving is TritonServing.OPENVINO_CPU and record.runtime_unverified is True


@pytest.mark.parametrize(("choice", "why"), [(OPENVINO_CHOSEN, "The build chose it"), (SLOWER, f"but chose {TWIN}")])
def test_openvino_asked_for_where_the_build_verified_it_needs_nothing_more(
    tmp_path: Path, int8_build: Path, choice: CpuRuntimeChoice, why: str
):
    folder = recording(int8_build, tmp_path / "build", choice)
    result = deploy(folder, tmp_path / "repo", CpuBackend.OPENVINO)
    record = TritonRecord.read(result.model_dir / PROVENANCE_NAME)
    assert record.serving is TritonServing.OPENVINO_CPU and record.runtime_unverified is False
    assert why in record.why and choice.reason in record.why


def test_a_malformed_openvino_measure_is_one_line(tmp_path: Path, int8_build: Path):
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN, FAILURE)  # verified: false
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    measured = {**summary.sections[OPENVINO_SECTION], "verified": True}  # yet a failure listed
    replace(summary, sections={**summary.sections, OPENVINO_SECTION: measured}).write(folder / SUMMARY_NAME)
    with pytest.raises(UserInputError, match="openvino: verified and failures disagree"):
        deploy(folder, tmp_path / "repo", CpuBackend.OPENVINO)


def test_onnxruntime_asked_for_serves_the_twin_where_the_build_chose_openvino(tmp_path: Path, int8_build: Path):
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN)
    result = deploy(folder, tmp_path / "repo", CpuBackend.ONNXRUNTIME)
    assert TritonRecord.read(result.model_dir / PROVENANCE_NAME).serving is TritonServing.ONNX_CPU
    assert result.model_file.read_bytes() == (folder / TWIN).read_bytes()


@pytest.mark.parametrize(
    ("model", "options", "refusal"),
    [
        (TWIN, TritonOptions(kind=CPU, cpu_backend=CpuBackend.OPENVINO), "OpenVINO serves the TensorRT Q/DQ model"),
        (QDQ, TritonOptions(cpu_backend=CpuBackend.OPENVINO), "CPU backend openvino: it names what CPU instances run"),
        (QDQ, TritonOptions(kind=CPU, cpu_backend=CpuBackend.ONNXRUNTIME), "or this model on OpenVINO"),
    ],
)
def test_a_model_or_instance_kind_the_backend_does_not_take_is_refused(
    tmp_path: Path, int8_build: Path, model: str, options: TritonOptions, refusal: str
):
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN)
    with pytest.raises(UserInputError, match=refusal):
        write_triton_repository(folder / model, tmp_path / "repo", custom_names(CLASSES), options)
    assert not (tmp_path / "repo").exists()


def test_cli_cpu_backend(tmp_path: Path, int8_build: Path):
    labels = tmp_path / "names.txt"
    labels.write_text("".join(f"part {i}\n" for i in range(CLASSES)))
    recorded, plain = (recording(int8_build, tmp_path / n, c) for n, c in (("ov", OPENVINO_CHOSEN), ("plain", None)))

    def run(folder: Path, *extra: str):
        args = ["deploy", "triton", str(folder), "--kind", "cpu", "--labels", str(labels), "-o", str(tmp_path / "r")]
        return CliRunner().invoke(app, [*args, *extra])

    result = run(recorded)
    assert result.exit_code == 0, result.output
    assert "openvino backend" in result.output and f"from {QDQ}" in result.output
    shutil.rmtree(tmp_path / "r")
    result = run(plain, "--cpu-backend", "openvino")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "never ran it on OpenVINO" in result.output
    result = run(plain, "--cpu-backend", "openvino", "--allow-unverified")
    assert result.exit_code == 0, result.output
    result = run(plain, "--cpu-backend", "tpu")
    assert result.exit_code == 2 and "unknown --cpu-backend 'tpu': choose one of auto|onnxruntime|openvino" in (
        result.output
    )


def test_the_openvino_entry_loads_as_the_backend_loads_it_and_gives_the_builds_logits(tmp_path: Path, int8_build: Path):
    """What src/openvino.cc does with the entry: read_model of the version folder's default_model_filename, each
    config input's data_type and layout "N..." through a PrePostProcessor, ov::set_batch(max_batch_size), compile
    for the CPU; a smaller batch is zero-padded to max_batch_size (ENABLE_BATCH_PADDING). Its logits for the
    requests' rows are OpenVINO's on the build's own file (both at f32, the precision the build measures)."""
    ov = pytest.importorskip("openvino")
    folder = recording(int8_build, tmp_path / "build", OPENVINO_CHOSEN)
    result = deploy(folder, tmp_path / "repo", max_batch_size=4)
    config, schema = parse_triton_config(result.config)
    core, f32 = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    model = core.read_model(str(result.model_dir / "1" / config.default_model_filename))
    ppp = ov.preprocess.PrePostProcessor(model)
    for tensor in config.input:
        element = {schema.TYPE_FP32: ov.Type.f32, schema.TYPE_UINT8: ov.Type.u8}[tensor.data_type]
        ppp.input(tensor.name).tensor().set_element_type(element).set_layout(ov.Layout("N..."))
    model = ppp.build()
    ov.set_batch(model, config.max_batch_size)
    served = core.compile_model(model, "CPU", f32)
    requests = np.random.default_rng(0).standard_normal((3, *config.input[0].dims)).astype(np.float32)
    padded = np.zeros((config.max_batch_size, *config.input[0].dims), np.float32)
    padded[: len(requests)] = requests
    logits = served(padded)[0][: len(requests)]
    assert logits.shape == (3, *config.output[0].dims)
    measured = core.compile_model(str(folder / QDQ), "CPU", f32)(requests)[0]
    np.testing.assert_allclose(logits, measured, rtol=1e-5, atol=1e-5)
