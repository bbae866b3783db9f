"""Run a serialized TensorRT engine with tensorrt, cuda-python and numpy only (no torch, no pycuda).

`TensorRTRunner` is the Runner for `.engine`/`.plan` files; `EngineBindings` is its read-only view of
the loaded engine, context, stream and I/O buffers, for code that drives the context itself (the
profiler's per-stage timing, queued runs and IProfiler pass). tensorrt and cuda-python are imported on
load, so importing this module needs neither.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeres.artifacts.sidecar import verify_sidecar
from edgeres.artifacts.tensors import TensorSpec
from edgeres.engine.dims import as_dims, dims_tuple
from edgeres.engine.record import EngineRecord
from edgeres.engine.target import check_engine_target, require_tensorrt, running_target
from edgeres.engine.verification_record import check_verified
from edgeres.errors import EdgeresError, UserInputError
from edgeres.runtime.base import Runner, RunnerState

if TYPE_CHECKING:
    import tensorrt as trt

    from edgeres.engine.cuda import CapturedGraph, DeviceBuffer, PinnedArray, Stream


@dataclass(frozen=True)
class EngineBindings:
    """What a loaded TensorRT runner computes with: engine, execution context, stream and I/O buffers.

    The buffers are sized for the profile's largest batch and their device addresses are already set on
    the context; the view is valid until the runner closes. It is read-only: the runner keeps owning
    (and freeing) everything in it.
    """

    engine: trt.ICudaEngine
    context: trt.IExecutionContext
    stream: Stream
    input_name: str
    output_name: str
    host_input: PinnedArray
    device_input: DeviceBuffer
    host_output: PinnedArray
    device_output: DeviceBuffer


class TensorRTRunner(Runner):
    """A serialized TensorRT engine run with tensorrt + cuda-python + numpy only.

    One stream, pinned host and device buffers sized for the profile's largest batch, tensor
    addresses set once; `set_input_shape` when the batch size changes; optional CUDA-graph replay
    of the current shape. The engine's sidecar must describe this file (size and SHA-256) and is
    checked against this TensorRT and GPU before anything is deserialized, and must record a passed
    verification against its ONNX (edgeres.runtime.verification) unless `allow_unverified`.
    """

    def __init__(self, artifact: Path, cuda_graph: bool = False, allow_unverified: bool = False) -> None:
        super().__init__(artifact)
        self.cuda_graph = cuda_graph
        self.allow_unverified = allow_unverified
        self._logger: trt.ILogger | None = None
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._names: tuple[str, str] = ("", "")
        self._batch_range: tuple[int, int] = (1, 1)
        self._buffers: list[PinnedArray | DeviceBuffer] = []
        self._stream: Stream | None = None
        self._graph: CapturedGraph | None = None
        self._shape: tuple[int, ...] | None = None
        self._bindings: EngineBindings | None = None

    @property
    def bindings(self) -> EngineBindings:
        """The loaded engine, context, stream and buffers (read-only); EdgeresError unless loaded."""
        if self.state is not RunnerState.LOADED or self._bindings is None:
            raise EdgeresError(f"{self.name}: load() the runner before asking for its bindings")
        return self._bindings

    @property
    def batch_range(self) -> tuple[int, int | None]:
        """The optimisation profile's smallest and largest batch."""
        return self._batch_range

    def enqueue(self) -> None:
        """One plain `execute_async_v3` on the runner's stream, on what is staged in the device input.

        No copies and no synchronize: for callers that stage and time the copies themselves."""
        if self.state is not RunnerState.LOADED:
            raise EdgeresError(f"{self.name}: enqueue() needs a loaded runner, this one is {self.state.value}")
        self._enqueue()

    def _load_impl(self) -> TensorSpec:
        from edgeres.engine.cuda import DeviceBuffer, PinnedArray, Stream

        sidecar = verify_sidecar(self.artifact)  # a sidecar of another file is refused before anything else
        if sidecar is None:
            raise UserInputError(f"{self.artifact}: no sidecar, so its TensorRT version and GPU cannot be checked")
        record = EngineRecord.of(sidecar)
        check_verified(self.artifact, record.verification, self.allow_unverified)
        require_tensorrt()
        import tensorrt as trt

        check_engine_target(self.artifact, record, running_target())
        # The runtime (and its logger) must outlive every engine it deserialized: kept until _close_impl.
        logger = self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = self._runtime = trt.Runtime(logger)
        if record.options.version_compatible:
            runtime.engine_host_code_allowed = True  # a version-compatible plan embeds its lean runtime
        engine = self._engine = runtime.deserialize_cuda_engine(self.artifact.read_bytes())
        if engine is None:
            raise UserInputError(f"{self.artifact}: TensorRT could not deserialize the engine")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserInputError(f"{self.artifact}: {len(inputs)} inputs, {len(outputs)} outputs; expected 1 and 1")
        self._names = (inputs[0], outputs[0])
        self._context = engine.create_execution_context()
        if self._context is None:
            raise EdgeresError(f"{self.artifact}: TensorRT could not create an execution context (GPU memory?)")
        low, _, high = (dims_tuple(d) for d in engine.get_tensor_profile_shape(inputs[0], 0))
        self._batch_range = (low[0], high[0])
        self._set_shape(high)
        out_high = dims_tuple(self._context.get_tensor_shape(outputs[0]))
        stream = self._stream = Stream()
        for name, shape in ((inputs[0], high), (outputs[0], out_high)):
            host = PinnedArray(shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            self._buffers.append(host)  # appended one by one: a failed allocation leaves nothing untracked
            device = DeviceBuffer(host.nbytes)
            self._buffers.append(device)
            if not self._context.set_tensor_address(name, device.ptr):
                raise EdgeresError(f"{self.artifact}: TensorRT refused the device address for tensor '{name}'")
        host_in, dev_in, host_out, dev_out = self._buffers
        assert isinstance(host_in, PinnedArray) and isinstance(host_out, PinnedArray)
        assert isinstance(dev_in, DeviceBuffer) and isinstance(dev_out, DeviceBuffer)
        self._bindings = EngineBindings(
            engine, self._context, stream, inputs[0], outputs[0], host_in, dev_in, host_out, dev_out
        )
        in_shape = dims_tuple(engine.get_tensor_shape(inputs[0]))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(inputs[0])))
        return TensorSpec(inputs[0], dtype, tuple(None if d < 0 else d for d in in_shape))

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        """`set_input_shape` on the input, checked: TensorRT returns False for a shape outside the profile."""
        assert self._context is not None
        if not self._context.set_input_shape(self._names[0], as_dims(shape)):
            raise EdgeresError(f"{self.artifact}: TensorRT refused shape {list(shape)} for input '{self._names[0]}'")

    def _enqueue(self) -> None:
        assert self._stream is not None and self._context is not None
        if not self._context.execute_async_v3(self._stream.address):
            raise EdgeresError(f"{self.artifact}: execute_async_v3 failed (see the TensorRT log)")

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
            self._graph = None

    def _run(self, new_shape: bool) -> None:
        """Compute on the staged input: a plain enqueue, or CUDA-graph replay of the current shape.

        TensorRT's developer guide ("CUDA Graphs"): a captured graph holds the shapes and the context
        state of its capture, and after an input-shape change one plain enqueue must run before the
        next capture. So a shape change drops the graph (A -> B -> A never replays A's stale graph);
        the first call at a shape enqueues plainly, then captures.
        """
        from edgeres.engine.cuda import CapturedGraph

        if new_shape:
            self._drop_graph()
        if not self.cuda_graph:
            self._enqueue()
            return
        if self._graph is None:
            assert self._stream is not None
            self._enqueue()  # the plain enqueue after the shape change; it also computes this call's output
            graph = CapturedGraph(self._stream)
            graph.begin()
            try:
                self._enqueue()
            except BaseException:
                with contextlib.suppress(Exception):  # end the capture, or the stream stays capturing
                    graph.end()
                    graph.destroy()
                raise
            graph.end()
            self._graph = graph
            return
        self._graph.launch()

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        from edgeres.engine.cuda import copy_to_device, copy_to_host

        low, high = self._batch_range
        if not low <= len(batch) <= high:
            raise UserInputError(f"{self.artifact}: batch of {len(batch)}, the engine's profile takes {low}..{high}")
        bindings = self.bindings
        stream, context, out_name = bindings.stream, bindings.context, bindings.output_name
        host_in, dev_in = bindings.host_input, bindings.device_input
        host_out, dev_out = bindings.host_output, bindings.device_output
        new_shape = batch.shape != self._shape
        if new_shape:
            self._shape = None  # unknown until TensorRT accepts the new one
            self._set_shape(batch.shape)
            self._shape = batch.shape
        out_shape = dims_tuple(context.get_tensor_shape(out_name))
        host_in.array.reshape(-1)[: batch.size] = batch.reshape(-1)
        copy_to_device(dev_in, host_in, batch.nbytes, stream)
        self._run(new_shape)
        out_count = int(np.prod(out_shape))
        copy_to_host(host_out, dev_out, out_count * host_out.array.itemsize, stream)
        stream.synchronize()
        return host_out.array.reshape(-1)[:out_count].reshape(out_shape).copy()

    def _close_impl(self) -> None:
        """Release in dependency order: graph, buffers, stream, then context, engine, runtime, logger.

        Works on a partly loaded runner (any of these may be missing)."""
        try:
            self._drop_graph()
            for buffer in self._buffers:
                buffer.free()
            if self._stream is not None:
                self._stream.destroy()
        finally:
            self._graph, self._buffers, self._stream, self._shape = None, [], None, None
            self._bindings = None
            self._context = None  # TensorRT objects are freed when their last reference goes
            self._engine = None
            self._runtime = None
            self._logger = None
