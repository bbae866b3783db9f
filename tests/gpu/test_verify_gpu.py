"""Real TensorRT: a build verifies its engine on its held-out set, `edgeres verify` repeats it, and an engine
that computes something else (built from a Q/DQ model with a scale changed) is refused and stays refused.

Run on a machine with TensorRT and a GPU:  .venv/bin/python -m pytest tests/gpu -v -s  (-s prints the SQNRs)
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.build_summary import SUMMARY_NAME, BuildSummary
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.cli.app import app
from edgeres.engine.builder import build_engine
from edgeres.engine.record import read_engine_record
from edgeres.errors import UserInputError
from edgeres.flow.orchestrator import build
from edgeres.runtime.heldout import HELDOUT_NAME
from edgeres.runtime.trt_runner import TensorRTRunner
from edgeres.runtime.verification import VerificationFailed, verify_new_engine
from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto
from tests.runtime.test_verification import scaled_dequantize, tiny_build_options


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[Precision, Path]:
    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path_factory.mktemp("src") / "tiny.onnx", "fp32")
    folders = {}
    for precision in (Precision.INT8, Precision.FP16):
        folder = tmp_path_factory.mktemp(precision.value)
        build(tiny_build_options(source, precision), folder)  # build_engine is on: here TensorRT builds and verifies
        folders[precision] = folder
    return folders


@pytest.mark.parametrize("precision", [Precision.INT8, Precision.FP16])
def test_the_build_verifies_its_engine_and_the_runtime_opens_it(built: dict[Precision, Path], precision) -> None:
    folder = built[precision]
    summary = BuildSummary.read(folder / SUMMARY_NAME)
    engine = folder / summary.artifacts[ArtifactRole.ENGINE]
    record = read_engine_record(engine)
    assert record is not None and record.verification is not None
    print(precision.value, record.verification.summary())
    assert record.verification.passed, record.verification.failures
    assert summary.sections["engine_verification"]["passed"] is True
    with TensorRTRunner(engine) as runner:  # no override needed
        assert runner.batch_range[0] >= 1
    result = CliRunner().invoke(app, ["verify", str(engine)])
    assert result.exit_code == 0 and "verification passed" in result.output, result.output
    info = CliRunner().invoke(app, ["info", str(folder)])
    assert info.exit_code == 0 and "engine verification passed" in info.output, info.output


def test_an_engine_of_a_changed_model_is_refused_and_stays_refused(built: dict[Precision, Path], tmp_path: Path):
    folder = built[Precision.INT8]
    qdq = folder / "model_int8_qdq.onnx"
    broken = tmp_path / "model_int8_qdq.onnx"
    onnx.save(scaled_dequantize(onnx.load(str(qdq)), 4.0), str(broken))
    engine = tmp_path / "broken.engine"
    sidecar = build_engine(broken, engine)
    # the engine's record names the build's Q/DQ model, as a mis-built engine of that model would
    inputs = sidecar.inputs | {"onnx": str(qdq), "onnx_sha256": sha256_file(qdq)}
    write_sidecar(engine, "engine", inputs, sidecar.options, sidecar.results)
    with pytest.raises(VerificationFailed, match="below"):
        verify_new_engine(engine, folder / HELDOUT_NAME)
    record = read_engine_record(engine)
    assert record is not None and record.verification is not None and not record.verification.passed
    with pytest.raises(UserInputError, match="FAILED verification"):
        TensorRTRunner(engine).load()
    result = CliRunner().invoke(app, ["verify", str(engine), str(folder)])
    assert result.exit_code == 2, result.output
