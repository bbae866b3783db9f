"""Activation ranges for INT8: run the FP32 ONNX in onnxruntime and stream per-tensor statistics.

Contract (what the Q/DQ step codes against)::

    collect_ranges(onnx_path, batches, algo, tensors=None, options=None, progress=None) -> dict[str, float]

maps tensor name -> symmetric amax > 0 (scale = amax / 127, zero point 0) for each activation tensor.
`tensors=None` means every float activation (not an initializer, not a Constant output) that feeds a
Conv, Gemm, MatMul, Add, Concat, MaxPool or GlobalAveragePool node — see `activation_tensors`.
`batches` is any iterable of model-input arrays (edgeres.samples.calibration yields them).

The chosen tensors become extra graph outputs of a copy of the model; each batch's values are folded
into a fixed-size histogram per tensor (edgeres.quantize.histogram), so memory depends on the batch size and the
number of tensors, never on the number of samples. One pass serves every algorithm: `collect_statistics`
returns the histograms and `ranges_from_statistics` turns them into ranges for any `CalibAlgo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgeres.artifacts.onnx import as_model, graph_input, with_outputs
from edgeres.artifacts.ort_session import PASS_THREADS, cpu_session
from edgeres.errors import UserInputError
from edgeres.progress import ProgressCallback
from edgeres.quantize.grid import MIN_AMAX
from edgeres.quantize.histogram import CalibAlgo, CalibOptions, StreamingHistogram, StreamingMean, compute_amax

__all__ = [
    "CONSUMER_OPS",
    "MIN_AMAX",
    "CalibAlgo",
    "CalibOptions",
    "CalibrationStats",
    "activation_tensors",
    "collect_ranges",
    "collect_statistics",
    "ranges_from_statistics",
]

CONSUMER_OPS = ("Conv", "Gemm", "MatMul", "Add", "Concat", "MaxPool", "GlobalAveragePool")
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)






def collect_ranges(
    onnx_path: Path | str,
    batches: Iterable[np.ndarray],
    algo: CalibAlgo = CalibAlgo.ENTROPY,
    tensors: Sequence[str] | None = None,
    options: CalibOptions | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, float]:
    """Tensor name -> symmetric amax, calibrated on `batches` with `algo` (see the module docstring)."""
    options = options or CalibOptions()
    stats = collect_statistics(onnx_path, batches, tensors, options, progress, histograms=algo != CalibAlgo.MAX)
    return ranges_from_statistics(stats, algo, options)


@dataclass
class CalibrationStats:
    """What one calibration pass gathered: a histogram per tensor and how many samples fed it."""

    histograms: dict[str, StreamingHistogram]
    samples: int = 0
    batches: int = 0
    skipped: list[str] = field(default_factory=list)  # requested tensors that turned out not float
    means: dict[str, StreamingMean] = field(default_factory=dict)  # per-position means, where asked for

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes for h in self.histograms.values())


def ranges_from_statistics(
    stats: CalibrationStats, algo: CalibAlgo, options: CalibOptions | None = None
) -> dict[str, float]:
    """Apply one algorithm to every tensor's statistics.

    A tensor that was zero on every sample gets MIN_AMAX rather than 0: any scale represents zero
    exactly, and QuantizeLinear/TensorRT need a positive scale.
    """
    options = options or CalibOptions()
    return {name: max(compute_amax(hist, algo, options), MIN_AMAX) for name, hist in stats.histograms.items()}


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named tensor that shape inference can tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort; unknown types are checked at run time
        inferred = model
    graph = inferred.graph
    types: dict[str, int] = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    return types


def activation_tensors(
    model: onnx.ModelProto, op_types: Sequence[str] = CONSUMER_OPS, types: dict[str, int] | None = None
) -> list[str]:
    """Float activations (not weights) read by nodes of `op_types`, in graph order, without repeats."""
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    types = tensor_types(model) if types is None else types
    chosen: dict[str, None] = {}
    for node in graph.node:
        if node.op_type not in op_types:
            continue
        for name in node.input:
            if not name or name in constants or name in chosen:
                continue
            if types.get(name, onnx.TensorProto.FLOAT) in FLOAT_TYPES:
                chosen[name] = None
    return list(chosen)


class _ReusingRunner:
    """Runs the session, writing the fetched tensors into the same arrays batch after batch.

    The first batch of each shape runs normally; its output arrays are then bound as the output
    buffers (onnxruntime IO binding), which saves re-allocating hundreds of MB per batch.
    """

    def __init__(self, session: ort.InferenceSession, input_name: str, fetched: list[str]) -> None:
        self.session, self.input_name, self.fetched = session, input_name, fetched
        self.key: tuple[tuple[int, ...], np.dtype] | None = None
        self.binding: ort.IOBinding | None = None
        self.arrays: list[np.ndarray] = []

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        batch = np.ascontiguousarray(batch)
        if not self.fetched:
            return []
        if self.binding is not None and self.key == (batch.shape, batch.dtype):
            self.binding.bind_cpu_input(self.input_name, batch)
            self.session.run_with_iobinding(self.binding)
            return self.arrays
        arrays = self.session.run(self.fetched, {self.input_name: batch})
        self.binding, self.key, self.arrays = None, (batch.shape, batch.dtype), arrays
        if all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays):
            binding = self.session.io_binding()
            for name, array in zip(self.fetched, arrays, strict=True):
                binding.bind_output(name, "cpu", 0, array.dtype, list(array.shape), array.ctypes.data)
            self.binding = binding
        return arrays  # valid until the next call, which may overwrite them


def _prepare(
    onnx_path: Path | str | onnx.ModelProto, tensors: Sequence[str] | None, threads: int
) -> tuple[_ReusingRunner, list[str], set[str]]:
    """Session over the model with the wanted tensors as extra outputs; the ONNX proto is freed on return."""
    model = as_model(onnx_path)
    label = "model" if isinstance(onnx_path, onnx.ModelProto) else onnx_path
    types = tensor_types(model)
    names = list(tensors) if tensors is not None else activation_tensors(model, types=types)
    known = {out for node in model.graph.node for out in node.output} | {i.name for i in model.graph.input}
    missing = [name for name in names if name not in known]
    if missing:
        raise UserInputError(f"{label}: no tensor named {missing[0]!r} to calibrate")
    if not names:
        raise UserInputError(f"{label}: no activation tensors to calibrate")
    input_name = graph_input(model, label).name
    graph_inputs = {input_name}
    fetched = [name for name in names if name not in graph_inputs]
    session = cpu_session(with_outputs(model, fetched), threads)
    return _ReusingRunner(session, input_name, fetched), names, graph_inputs


def collect_statistics(
    onnx_path: Path | str | onnx.ModelProto,
    batches: Iterable[np.ndarray],
    tensors: Sequence[str] | None = None,
    options: CalibOptions | None = None,
    progress: ProgressCallback | None = None,
    histograms: bool = True,
    threads: int = PASS_THREADS,
    means_for: Sequence[str] = (),
) -> CalibrationStats:
    """One streaming pass over `batches`; `histograms=False` tracks only max |x| (enough for MAX).

    `means_for` (a subset of the calibrated tensors) also gets each tensor's per-position mean over all
    samples, in the same pass: what bias correction needs, without running the model a second time.
    """
    options = options or CalibOptions()
    runner, names, graph_inputs = _prepare(onnx_path, tensors, threads)
    fetched = runner.fetched
    unknown = [name for name in means_for if name not in names]
    if unknown:
        raise ValueError(f"mean requested for {unknown[0]!r}, which is not among the calibrated tensors")
    stats = CalibrationStats({name: StreamingHistogram(options.num_bins) for name in names})
    stats.means = {name: StreamingMean() for name in means_for}
    for batch in batches:
        values = dict(zip(fetched, runner.run(batch), strict=True))
        for name in names:
            array = batch if name in graph_inputs else values[name]
            if not np.issubdtype(array.dtype, np.floating):
                if name not in stats.skipped:
                    stats.skipped.append(name)
                continue
            if name in stats.means:
                stats.means[name].add(array)
            hist = stats.histograms[name]
            if histograms:
                hist.add(array)
            elif array.size:
                hist.amax = max(hist.amax, float(array.max()), -float(array.min()))
        stats.samples += len(batch)
        stats.batches += 1
        if progress is not None:
            progress(len(batch))
    if stats.samples == 0:
        label = "model" if isinstance(onnx_path, onnx.ModelProto) else onnx_path
        raise UserInputError(f"{label}: calibration received no samples")
    for name in stats.skipped:
        del stats.histograms[name]
        stats.means.pop(name, None)
    return stats

