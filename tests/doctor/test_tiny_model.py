"""The doctor's tiny model: what onnxruntime computes is the network its nodes describe, it is seeded, and its
FP16 and INT8 variants carry those precisions and stay close to it (so the engine checks' thresholds are
about TensorRT, not about the model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from onnx import numpy_helper

from edgeres.artifacts.ort_session import cpu_session
from edgeres.artifacts.precision import Precision, graph_precision
from edgeres.doctor.engine_checks import MIN_SQNR_DB
from edgeres.doctor.tiny_model import (
    BATCH,
    CLASSES,
    INPUT_NAME,
    fp16_variant,
    int8_variant,
    sample_batch,
    save,
    tiny_classifier,
)
from edgeres.quantize.fidelity import sqnr_db


def numpy_forward(batch: np.ndarray) -> np.ndarray:
    """Conv 3x3 (pad 1) + bias -> ReLU -> global mean -> Gemm, in float64, from the model's own weights."""
    initializers = tiny_classifier().graph.initializer
    weights = {init.name: numpy_helper.to_array(init).astype(np.float64) for init in initializers}
    padded = np.pad(batch.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))  # [N, C, H, W, 3, 3]
    conv = np.einsum("nchwij,ocij->nohw", windows, weights["conv_w"]) + weights["conv_b"][None, :, None, None]
    pooled = np.maximum(conv, 0).mean(axis=(2, 3))
    return pooled @ weights["fc_w"].T + weights["fc_b"]


def run(model_or_path, batch: np.ndarray) -> np.ndarray:
    return np.asarray(cpu_session(model_or_path, reference_kernels=True).run(None, {INPUT_NAME: batch})[0])


def snr(reference: np.ndarray, candidate: np.ndarray) -> float:
    reference, candidate = reference.astype(np.float64), candidate.astype(np.float64)
    return sqnr_db(float(np.sum(reference**2)), float(np.sum((candidate - reference) ** 2)))


def test_onnxruntime_computes_the_network_the_nodes_describe() -> None:
    batch = sample_batch()
    logits = run(tiny_classifier(), batch)
    assert logits.shape == (BATCH, CLASSES)
    np.testing.assert_allclose(logits, numpy_forward(batch), rtol=1e-4, atol=1e-5)


def test_model_and_inputs_are_seeded() -> None:
    assert tiny_classifier().SerializeToString() == tiny_classifier().SerializeToString()
    np.testing.assert_array_equal(sample_batch(), sample_batch())
    assert not np.array_equal(tiny_classifier(seed=1).graph.initializer[0].raw_data,
                              tiny_classifier().graph.initializer[0].raw_data)  # fmt: skip


def test_the_variants_carry_their_precision_and_stay_near_fp32(tmp_path: Path) -> None:
    batch = sample_batch()
    fp32 = save(tiny_classifier(), tmp_path / "tiny_fp32.onnx")
    reference = run(fp32, batch)
    fp16, int8 = fp16_variant(tiny_classifier()), int8_variant(fp32, batch)
    assert graph_precision(fp16) is Precision.FP16 and graph_precision(int8) is Precision.INT8
    assert {n.op_type for n in int8.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    # Against FP32 these include the quantization itself, which the engine checks do not measure: the variants
    # must still clear the engine thresholds by a margin, or a threshold would be about the model.
    assert snr(reference, run(fp16, batch)) >= MIN_SQNR_DB[Precision.FP16] + 20
    assert snr(reference, run(int8, batch)) >= MIN_SQNR_DB[Precision.INT8] + 10
