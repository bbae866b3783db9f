"""Parity: the same batch through two implementations (PyTorch and onnxruntime, or the fused front-end and
the host path), compared by max error, cosine and top-1 agreement."""

from __future__ import annotations

import numpy as np
import torch

from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
from edgeres.errors import ParityError
from edgeres.export.record import ParityReport, ParityTolerance
from edgeres.frames.images import NETWORK_SIZE


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Max abs/relative error, worst per-sample cosine and top-1 agreement of two logit batches."""
    ref = reference.astype(np.float64).reshape(len(reference), -1)
    cand = candidate.astype(np.float64).reshape(len(candidate), -1)
    diff = np.abs(ref - cand)
    scale = np.maximum(np.abs(ref).max(axis=1, keepdims=True), 1e-12)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cosine = np.sum(ref * cand, axis=1) / np.maximum(norms, 1e-30)
    return ParityReport(
        samples=len(ref),
        max_abs_error=float(diff.max()),
        max_rel_error=float((diff / scale).max()),
        min_cosine=float(cosine.min()),
        top1_agreement=float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1))),
    )


def run_onnx(model_bytes: bytes | str, batch: np.ndarray, threads: int = PASS_THREADS) -> np.ndarray:
    """The first output of the model on `batch`, on the CPU."""
    session = cpu_session(model_bytes, threads)
    input_name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {input_name: batch})[0])


def require_finite(logits: np.ndarray, where: str, why: str) -> None:
    """Non-finite logits make every error measure NaN: name them instead of reporting 'max abs error nan'."""
    bad = ~np.isfinite(logits)
    if bad.any():
        raise ParityError(
            f"{where} computes {int(bad.sum())} non-finite logit(s) of {logits.size} on the parity batch ({why}); "
            "the model cannot be exported"
        )


def check_parity(
    model: torch.nn.Module, model_bytes: bytes, batch: np.ndarray, tolerance: ParityTolerance
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same batch; raise ParityError outside tolerance."""
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(batch)).numpy()
    require_finite(expected, "PyTorch", "its weights overflow float32 on these inputs")
    actual = run_onnx(model_bytes, batch)
    require_finite(actual, "the exported ONNX", "PyTorch's are finite")
    report = compare_logits(expected, actual)
    if not report.within(tolerance):
        raise ParityError(
            f"ONNX disagrees with PyTorch: max abs error {report.max_abs_error:.3g} "
            f"(limit {tolerance.max_abs:g}), min cosine {report.min_cosine:.7f} (limit {tolerance.min_cosine})"
        )
    return report


def parity_batch(real: np.ndarray | None, random_count: int = 2, seed: int = 0, size: int = NETWORK_SIZE) -> np.ndarray:
    """Real images (already normalised) followed by seeded standard-normal inputs."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((random_count, 3, size, size)).astype(np.float32)
    return noise if real is None or len(real) == 0 else np.concatenate([real.astype(np.float32), noise])

