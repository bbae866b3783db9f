"""The one way edgeres makes a CPU onnxruntime session (export parity, calibration, fidelity, runners)."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort

from edgeres.artifacts.onnx import has_fp16_qdq_scales, load_onnx

CPU_PROVIDERS = ("CPUExecutionProvider",)
QUIET = 3  # onnxruntime log severity: errors only
# Threads of edgeres's own CPU passes (export parity, calibration, fidelity): fixed, so results and their
# cost do not depend on the machine's core count.
PASS_THREADS = 2
# onnxruntime's level-1 WeightBiasQuantization rewrites a float bias after DequantizeLinear -> Conv/Gemm into
# int32 codes of bias / (input scale x weight scale), dividing and rounding in the bias's own type: with FP16
# scales and biases (the TensorRT model's FP16 remainder, edgeres.quantize.tensorrt_qdq) a code of 65520 or
# more becomes infinity and then INT32_MIN, so the model no longer computes what its nodes say. Off with
# reference kernels, and in every session over a model with FP16 Q/DQ scales; left on for float32 scales
# (the CPU twin), where it is exact and what lets onnxruntime run integer convolutions.
BIAS_QUANTIZATION = "WeightBiasQuantization"
REFERENCE_DISABLED_OPTIMIZERS = (BIAS_QUANTIZATION,)


def disabled_optimizers(model: onnx.ModelProto, reference_kernels: bool = False) -> list[str]:
    """The onnxruntime optimizers a session over `model` must run without (see BIAS_QUANTIZATION)."""
    return [BIAS_QUANTIZATION] if reference_kernels or has_fp16_qdq_scales(model) else []


def session_options(threads: int = 0, reference_kernels: bool = False) -> ort.SessionOptions:
    """`threads` 0: onnxruntime's default (one per physical core). `reference_kernels` turns off the Q/DQ
    fusions (and, in `cpu_session`, REFERENCE_DISABLED_OPTIMIZERS), so a Q/DQ model computes exactly what
    its nodes say (float ops on dequantized values)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1  # nodes run one after the other; the intra-op pool does the work
    options.log_severity_level = QUIET
    if reference_kernels:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return options


def cpu_session(
    model: onnx.ModelProto | bytes | Path | str,
    threads: int = 0,
    reference_kernels: bool = False,
    optimized_to: Path | None = None,
) -> ort.InferenceSession:
    """A session on the CPU execution provider over a proto, serialized bytes or a file;
    `optimized_to` saves the graph onnxruntime actually runs (after its fusions) there."""
    proto = model if isinstance(model, onnx.ModelProto) else graph_of(model)
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    if isinstance(source, Path):
        source = str(source)
    options = session_options(threads, reference_kernels)
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    disabled = disabled_optimizers(proto, reference_kernels)
    return ort.InferenceSession(source, options, providers=list(CPU_PROVIDERS), disabled_optimizers=disabled)


def graph_of(model: bytes | Path | str) -> onnx.ModelProto:
    """The graph of serialized bytes, or of a file through the one loader (structure only: its weights stay
    unread), for the rules above."""
    if isinstance(model, bytes):
        return onnx.load_model_from_string(model)
    return load_onnx(model, weights=False)
