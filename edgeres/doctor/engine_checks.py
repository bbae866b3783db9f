"""The end-to-end device checks: the doctor's tiny model built as an FP16 and an INT8 (Q/DQ) TensorRT engine
with edgeres's builder, run with edgeres's TensorRT runner, and compared with onnxruntime running the same
ONNX on the CPU. The engines live in a scratch folder in TMPDIR, removed afterwards."""

from __future__ import annotations

import math
import time

import numpy as np

from edgeres.artifacts.precision import Precision
from edgeres.artifacts.staging import scratch_folder
from edgeres.doctor.check import Outcome, failed, passed
from edgeres.doctor.tiny_model import BATCH, INPUT_NAME, fp16_variant, int8_variant, sample_batch, save, tiny_classifier

# Each engine is compared with onnxruntime running the same ONNX with reference kernels (exactly what its nodes
# say: float arithmetic on dequantized values), so a threshold bounds TensorRT's own deviation, not quantization's.
# - FP16, 40 dB: both sides compute in float16 (unit roundoff 2^-11, ~70 dB per rounding), in other orders and
#   with other accumulators; onnxruntime's FP16 tiny model is 73 dB from its FP32 source (measured on a CPU), so
#   two correct FP16 computations agree to 60-70 dB. 40 dB allows 100-1000x that noise power and still fails
#   wrong arithmetic (a kernel off by a sign, a scale or a channel order gives under 10 dB).
# - INT8, 30 dB: both sides quantize to the same grids with the same scales; they differ only where float noise
#   moves a value across a rounding boundary (one code step) and in the order of TensorRT's int32 accumulation,
#   well below the quantization noise itself (the INT8 model is 46 dB from FP32 here). 30 dB (noise amplitude
#   3% of the logits') leaves room for that and fails wrong scales or zero points, which saturate or shift
#   whole layers.
MIN_SQNR_DB = {Precision.FP16: 40.0, Precision.INT8: 30.0}
FIX = "update TensorRT (JetPack on Jetson) and the driver; attach `edgeres doctor --json` to a bug report"


def tiny_engine_sqnr(precision: Precision) -> tuple[float, float]:
    """(SQNR in dB of TensorRT's logits against onnxruntime's on the same ONNX, build seconds)."""
    # Imported here: they pull onnxruntime and OpenCV, and the doctor must start where those are broken.
    from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
    from edgeres.engine.builder import build_engine
    from edgeres.engine.options import BatchProfile, EngineOptions
    from edgeres.quantize.fidelity import sqnr_db
    from edgeres.runtime.trt_runner import TensorRTRunner

    batch = sample_batch()
    with scratch_folder("edgeres-doctor-") as folder:
        fp32 = save(tiny_classifier(), folder / "tiny_fp32.onnx")
        variant = fp16_variant(tiny_classifier()) if precision is Precision.FP16 else int8_variant(fp32, batch)
        model = save(variant, folder / f"tiny_{precision.value}.onnx")
        engine = folder / f"tiny_{precision.value}.engine"
        started = time.perf_counter()
        build_engine(model, engine, EngineOptions(batch=BatchProfile(1, BATCH, BATCH)))
        seconds = time.perf_counter() - started
        session = cpu_session(model, threads=PASS_THREADS, reference_kernels=True)
        expected = np.asarray(session.run(None, {INPUT_NAME: batch})[0], dtype=np.float64)
        with TensorRTRunner(engine, allow_unverified=True) as runner:  # the doctor's own engine: no build verified it
            got = runner.infer(batch).astype(np.float64)
    if got.shape != expected.shape:
        raise ValueError(f"TensorRT gave logits of shape {list(got.shape)}, onnxruntime {list(expected.shape)}")
    return sqnr_db(float(np.sum(expected**2)), float(np.sum((got - expected) ** 2))), seconds


def decibels(score: float) -> str:
    if math.isfinite(score):
        return f"{score:.1f} dB"
    return "exact" if score > 0 else "none (non-finite logits)"


def check_tiny_engine(precision: Precision) -> Outcome:
    score, seconds = tiny_engine_sqnr(precision)
    least = MIN_SQNR_DB[precision]
    name = precision.value.upper()
    if not score >= least:  # NaN logits give -inf, which fails too
        return failed(f"the tiny {name} engine's logits against onnxruntime's: SQNR {decibels(score)}, under "
                      f"{least:.0f} dB", FIX)  # fmt: skip
    return passed(f"tiny model built as an {name} engine in {seconds:.1f} s and run: logits SQNR "
                  f"{decibels(score)} against onnxruntime on the same ONNX (at least {least:.0f} dB)")  # fmt: skip


def check_fp16_engine() -> Outcome:
    return check_tiny_engine(Precision.FP16)


def check_int8_engine() -> Outcome:
    return check_tiny_engine(Precision.INT8)
