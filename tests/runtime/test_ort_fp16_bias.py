"""onnxruntime's default optimizer computes the FP16-remainder Q/DQ model wrongly; edgeres's sessions do not.

`WeightBiasQuantization` divides each float bias by (input scale x weight scale) in the bias's type: in FP16
a code of 65520 or more is infinity, then INT32_MIN. On the trained EfficientNet-Lite0 about 1% of bias
channels overflow, in most layers: a default session's logits are noise, while the runner (and every
session edgeres opens) switches that optimizer off for models with FP16 Q/DQ scales, and keeps it for the
CPU twin's float32 scales, where it is exact and what makes the integer convolutions run.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeres.artifacts.ort_session import BIAS_QUANTIZATION, cpu_session, disabled_optimizers
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.frames.images import default_calibration_dir
from edgeres.quantize.fidelity import sqnr_db
from edgeres.quantize.histogram import CalibAlgo
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0
from tests.quantize.test_int8_trained import HELD_OUT, MIN_LOGITS_SQNR_DB, held_out_batch


@pytest.fixture(scope="module")
def lite0_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the FP32 Lite0 ONNX, its default INT8 build), calibrated without the held-out photographs."""
    folder = tmp_path_factory.mktemp("lite0")
    source = folder / "lite0.onnx"
    onnx.save(torch_to_onnx(load_efficientnet_lite0()), source)
    write_sidecar(source, "export", {"weights": "lite0"}, {"arch": "efficientnet-lite0", "random_weights": False})
    calibration = folder / "calib"
    calibration.mkdir()
    for photo in default_calibration_dir().glob("*.jpg"):
        if photo.stem not in HELD_OUT:
            shutil.copy(photo, calibration)
    options = BuildOptions(onnx=source, calib=calibration, calib_algo=CalibAlgo.MSE, calib_size=32)
    build(replace(options, profile_iterations=0), folder / "build")
    return source, folder / "build"


def _sqnr(reference: np.ndarray, candidate: np.ndarray) -> float:
    ref, cand = reference.astype(np.float64), candidate.astype(np.float64)
    return sqnr_db(float(np.sum(ref**2)), float(np.sum((ref - cand) ** 2)))


@pytest.mark.slow
def test_a_default_session_gets_the_fp16_remainder_model_wrong_and_edgeres_sessions_do_not(lite0_build) -> None:
    source, folder = lite0_build
    batch = held_out_batch()
    fp32 = cpu_session(source).run(None, {"input": batch})[0]
    qdq = folder / "model_int8_qdq.onnx"
    default = ort.InferenceSession(str(qdq), providers=["CPUExecutionProvider"]).run(None, {"input": batch})[0]
    with OnnxRuntimeRunner(qdq) as runner:
        safe = runner.infer(batch)
    reference = cpu_session(qdq, reference_kernels=True).run(None, {"input": batch})[0]
    # the failure this guards against: noise, not a slightly worse model
    assert _sqnr(fp32, default) < 5.0
    assert _sqnr(fp32, safe) > MIN_LOGITS_SQNR_DB
    assert abs(_sqnr(fp32, safe) - _sqnr(fp32, reference)) < 1.0
    assert np.mean(np.argmax(safe, 1) == np.argmax(fp32, 1)) > np.mean(np.argmax(default, 1) == np.argmax(fp32, 1))


@pytest.mark.slow
def test_the_optimizer_is_off_only_for_fp16_scales(lite0_build) -> None:
    _, folder = lite0_build
    assert disabled_optimizers(onnx.load(str(folder / "model_int8_qdq.onnx"))) == [BIAS_QUANTIZATION]
    assert disabled_optimizers(onnx.load(str(folder / "model_int8_u8s8.onnx"))) == []
