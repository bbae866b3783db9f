"""The CPU runtime step of an INT8 build: the Q/DQ model measured on OpenVINO for real, then the recorded choice.

What is checked: a build records OpenVINO's fidelity against FP32 and against the reference arithmetic, the
verdict, both batch-1 timings and the choice the camera command and deploy read back; a Q/DQ model that computes
something else (a weight scale off) is not verified on OpenVINO and never chosen; without OpenVINO the twin is
chosen and the line says why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeres.artifacts.build_summary import SUMMARY_NAME
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.errors import UserInputError
from edgeres.flow.cpu_runtime import cpu_runtime_step, measure_openvino
from edgeres.flow.orchestrator import BuildResult, build
from edgeres.progress import Stages
from edgeres.quantize.fidelity import HeldOutEvaluation, Kernels
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.cpu_choice import folder_cpu_runtime
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import OpenVinoRunner
from tests.flow.test_build import tiny_build_options


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto

    root = tmp_path_factory.mktemp("cpu_runtime")
    source = save_with_sidecar(tiny_classifier_proto(10), root / "tiny_fp32.onnx", "fp32")
    return build(tiny_build_options(source, build_engine=False), root / "build")


def test_a_build_records_openvinos_fidelity_and_the_choice(built: BuildResult) -> None:
    summary = json.loads((built.outdir / SUMMARY_NAME).read_text())
    measured = summary["openvino"]
    assert measured["model"] == "int8_tensorrt" and measured["verified"] is True and measured["failures"] == []
    assert measured["fidelity"]["samples"] == built.fidelity[ArtifactRole.INT8_TENSORRT].samples
    assert measured["vs_reference_arithmetic"]["top1_agreement"] > 0.9
    assert set(measured["latency_ms"]) == {"openvino", "onnxruntime"}
    choice = folder_cpu_runtime(built.outdir)
    assert choice is not None and choice.path_in(built.outdir).is_file()
    faster = min(measured["latency_ms"], key=measured["latency_ms"].get)
    assert choice.runtime is RuntimeKind(faster)  # the faster of the two, both verified
    assert any(line.startswith(f"CPU runtime: {faster} runs {choice.model}") for line in built.notes)
    assert built.report is not None
    page = built.report.read_text()
    assert "INT8, TensorRT Q/DQ model on OpenVINO 20" in page
    assert f'<div id="cpu-runtime">{faster} runs {choice.model}' in page


def test_a_wrong_qdq_model_is_not_verified_on_openvino_and_not_chosen(built: BuildResult, tmp_path: Path) -> None:
    qdq = onnx.load(str(built.artifacts[ArtifactRole.INT8_TENSORRT]))
    scale = next(i for i in qdq.graph.initializer if i.name.endswith("scale") and len(i.dims) == 1)
    values = numpy_helper.to_array(scale)
    scale.CopyFrom(numpy_helper.from_array((values * 3).astype(values.dtype), scale.name))
    wrong = tmp_path / "model_int8_qdq.onnx"
    onnx.save(qdq, str(wrong))
    heldout = np.load(built.outdir / "heldout.npz")
    evaluation = HeldOutEvaluation(built.artifacts[ArtifactRole.FP32], [(heldout["inputs"], None)])
    reference = evaluation.measure(built.artifacts[ArtifactRole.INT8_TENSORRT], kernels=Kernels.REFERENCE)
    with OpenVinoRunner(wrong) as runner:
        measured = measure_openvino(runner, evaluation, reference, FidelityGate(), "test")
    assert not measured.verified and "below the" in measured.failures[0]
    artifacts = {ArtifactRole.INT8_TENSORRT: wrong,
                 ArtifactRole.INT8_ONNXRUNTIME: built.artifacts[ArtifactRole.INT8_ONNXRUNTIME]}  # fmt: skip
    step = cpu_runtime_step(artifacts, {ArtifactRole.INT8_TENSORRT: reference}, evaluation, FidelityGate(), Stages())
    assert step.choice.runtime is RuntimeKind.ONNXRUNTIME and "not verified" in step.choice.reason
    assert "NOT verified" in step.lines()[0]


def test_without_openvino_the_twin_is_chosen_and_the_line_says_why(built: BuildResult) -> None:
    def missing() -> object:
        raise UserInputError("OpenVINO is not installed: pip install edgeres[openvino]")

    heldout = np.load(built.outdir / "heldout.npz")
    evaluation = HeldOutEvaluation(built.artifacts[ArtifactRole.FP32], [(heldout["inputs"], None)])
    step = cpu_runtime_step(built.artifacts, built.fidelity, evaluation, FidelityGate(), Stages(), missing)
    assert step.choice.runtime is RuntimeKind.ONNXRUNTIME and step.openvino is None
    assert step.lines() == (f"CPU runtime: onnxruntime runs {step.choice.model} (OpenVINO not usable here: OpenVINO is "
                            "not installed: pip install edgeres[openvino])",)  # fmt: skip


def test_the_quick_profile_runs_the_int8_model_on_the_cpu_runtime_the_build_chose(built: BuildResult) -> None:
    from types import SimpleNamespace

    from edgeres.flow.cpu_runtime import CpuRuntimeStep
    from edgeres.flow.orchestrator import profile_stage
    from edgeres.runtime.cpu_choice import CpuRuntimeChoice

    options = tiny_build_options(built.artifacts[ArtifactRole.FP32], profile_iterations=3)
    chose = CpuRuntimeStep(CpuRuntimeChoice(RuntimeKind.OPENVINO, "model_int8_qdq.onnx", "faster"))
    source = SimpleNamespace(contract=None)
    quick = profile_stage(options, built.artifacts, ArtifactRole.INT8_ONNXRUNTIME, source, Stages(), chose)
    assert quick.lines[1].startswith("int8_tensorrt: model_int8_qdq.onnx on openvino CPU")
    assert quick.as_dict()["backends"]["fp32"].startswith("onnxruntime")
    twin = CpuRuntimeStep(CpuRuntimeChoice(RuntimeKind.ONNXRUNTIME, "model_int8_u8s8.onnx", "faster"))
    quick = profile_stage(options, built.artifacts, ArtifactRole.INT8_ONNXRUNTIME, source, Stages(), twin)
    assert quick.lines[1].startswith("int8_onnxruntime: model_int8_u8s8.onnx on onnxruntime")
