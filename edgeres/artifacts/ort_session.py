"""The one way edgeres makes a CPU onnxruntime session (export parity, calibration, fidelity, runners)."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort

CPU_PROVIDERS = ("CPUExecutionProvider",)
QUIET = 3  # onnxruntime log severity: errors only
# Threads of edgeres's own CPU passes (export parity, calibration, fidelity): fixed, so results and their
# cost do not depend on the machine's core count.
PASS_THREADS = 2
# Off with reference kernels: this level-1 optimizer rewrites a float bias after DequantizeLinear -> Conv into int32
# codes of (input scale x weight scale), rounded to the scale's type first: with FP16 scales nearly every code
# overflows to infinity (edgeres.quantize.tensorrt_qdq), so the model would no longer compute what its nodes say.
REFERENCE_DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)


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
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    if isinstance(source, Path):
        source = str(source)
    options = session_options(threads, reference_kernels)
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    disabled = list(REFERENCE_DISABLED_OPTIMIZERS) if reference_kernels else []
    return ort.InferenceSession(source, options, providers=list(CPU_PROVIDERS), disabled_optimizers=disabled)
