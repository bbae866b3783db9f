"""Run an artifact: one runner interface, an ONNX Runtime runner and a TensorRT runner.

The same application code runs on a laptop (ONNX Runtime, CPU) and on the device (TensorRT).
Nothing on this path imports torch: camera applications do not ship PyTorch.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from edgeres.artifacts import verify_sidecar
from edgeres.errors import EdgeresError, UserInputError

if TYPE_CHECKING:
    import tensorrt as trt

    from edgeres.cuda import CapturedGraph, DeviceBuffer, PinnedArray, Stream


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of a network input; None marks a dimension set at run time."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int | None, ...]

    def check(self, array: np.ndarray) -> None:
        """Raise UserInputError unless `array` has this dtype, rank and every fixed dimension."""
        if array.dtype != self.dtype:
            raise UserInputError(f"input '{self.name}': dtype {array.dtype} given, the model takes {self.dtype}")
        if array.ndim != len(self.shape):
            raise UserInputError(
                f"input '{self.name}': shape {array.shape} given, the model takes rank {len(self.shape)} "
                f"{self.describe()}"
            )
        for axis, (want, got) in enumerate(zip(self.shape, array.shape, strict=True)):
            if want is not None and want != got:
                raise UserInputError(f"input '{self.name}': axis {axis} is {got}, the model takes {self.describe()}")
            if got == 0:
                raise UserInputError(f"input '{self.name}': axis {axis} is empty")

    def describe(self) -> str:
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


RunnerT = TypeVar("RunnerT", bound="Runner")


class RunnerState(Enum):
    NEW = "new"
    LOADED = "loaded"
    CLOSED = "closed"


class Runner(ABC):
    """Load once, infer many times, close; also a context manager.

    Public methods check state and inputs; subclasses implement the `*_impl` methods only.
    """

    def __init__(self, artifact: Path) -> None:
        self.artifact = Path(artifact)
        self.state = RunnerState.NEW
        self._spec: TensorSpec | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def load(self) -> None:
        if self.state is not RunnerState.NEW:
            raise EdgeresError(f"{self.name}: load() called on a runner that is {self.state.value}")
        if not self.artifact.is_file():
            raise UserInputError(f"{self.artifact}: file not found")
        try:
            self._spec = self._load_impl()
        except BaseException:
            # release whatever the failed load had already acquired (stream, buffers, engine...);
            # a second failure while cleaning up must not hide the first one
            with contextlib.suppress(Exception):
                self._close_impl()
            raise
        self.state = RunnerState.LOADED

    @property
    def input_spec(self) -> TensorSpec:
        if self._spec is None:
            raise EdgeresError(f"{self.name}: load() the runner before asking for its input")
        return self._spec

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits [N, classes] as float32 numpy for one input batch in the model's own layout."""
        if self.state is not RunnerState.LOADED:
            raise EdgeresError(f"{self.name}: infer() needs a loaded runner, this one is {self.state.value}")
        if not isinstance(batch, np.ndarray):
            raise UserInputError(f"input '{self.input_spec.name}': a numpy array is needed, got {type(batch).__name__}")
        self.input_spec.check(batch)
        logits = self._infer_impl(np.ascontiguousarray(batch))
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        """Release the backend's resources; closing twice is harmless."""
        if self.state is RunnerState.LOADED:
            self._close_impl()
        self.state = RunnerState.CLOSED

    def __enter__(self: RunnerT) -> RunnerT:
        if self.state is RunnerState.NEW:
            self.load()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def _load_impl(self) -> TensorSpec: ...

    @abstractmethod
    def _infer_impl(self, batch: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _close_impl(self) -> None:
        """Release the backend; also called after a failed `_load_impl`, so it must cope with partial state."""


_ORT_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(uint16)": np.uint16,
}


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime: CPU everywhere, CUDA execution provider first when the installed build has it."""

    def __init__(self, artifact: Path, providers: Sequence[str] | None = None, threads: int = 0) -> None:
        super().__init__(artifact)
        self.requested_providers = tuple(providers) if providers else None
        self.threads = threads
        self._session: Any = None

    def _load_impl(self) -> TensorSpec:
        import onnxruntime as ort

        available = ort.get_available_providers()
        wanted = self.requested_providers or tuple(
            p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available
        )
        missing = [p for p in wanted if p not in available]
        if missing:
            raise UserInputError(f"onnxruntime here has no {', '.join(missing)} (available: {', '.join(available)})")
        options = self._session_options()
        try:
            self._session = ort.InferenceSession(str(self.artifact), options, providers=list(wanted))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UserInputError(f"{self.artifact}: onnxruntime cannot load it ({type(exc).__name__}: {exc})") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise UserInputError(f"{self.artifact}: {len(inputs)} inputs, a classifier with one input is expected")
        first = inputs[0]
        if first.type not in _ORT_TYPES:
            raise UserInputError(f"{self.artifact}: input '{first.name}' has unsupported type {first.type}")
        shape = tuple(d if isinstance(d, int) else None for d in first.shape)
        return TensorSpec(first.name, np.dtype(_ORT_TYPES[first.type]), shape)

    def _session_options(self) -> Any:
        """Options for the session; a hook so a subclass (the profiler's) can switch on profiling."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        return options

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, in priority order."""
        return list(self._session.get_providers()) if self._session is not None else []

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._session.run(None, {self.input_spec.name: batch})
        return np.asarray(outputs[0])

    def _close_impl(self) -> None:
        self._session = None


@dataclass(frozen=True)
class TopK:
    """Best `k` classes per sample: indices and softmax probabilities, both [N, k], best first."""

    indices: np.ndarray
    probabilities: np.ndarray


def top_k(logits: np.ndarray, k: int = 5) -> TopK:
    """Sort each row of logits [N, C]; probabilities are the softmax over all C classes."""
    if logits.ndim != 2:
        raise UserInputError(f"logits must be [N, classes], got shape {logits.shape}")
    if not 1 <= k <= logits.shape[1]:
        raise UserInputError(f"top-k: k={k} is outside 1..{logits.shape[1]} classes")
    wide = logits.astype(np.float64)
    exp = np.exp(wide - wide.max(axis=1, keepdims=True))
    probs = exp / exp.sum(axis=1, keepdims=True)
    order = np.argsort(-wide, axis=1, kind="stable")[:, :k]
    return TopK(order, np.take_along_axis(probs, order, axis=1).astype(np.float32))


def open_runner(artifact: Path) -> Runner:
    """The runner for a file: ONNX Runtime for `.onnx`, TensorRT for `.engine`/`.plan`."""
    suffix = Path(artifact).suffix.lower()
    if suffix == ".onnx":
        return OnnxRuntimeRunner(artifact)
    if suffix in (".engine", ".plan"):
        return TensorRTRunner(artifact)
    raise UserInputError(f"{artifact}: unknown artifact type '{suffix}' (expected .onnx, .engine or .plan)")


class TensorRTRunner(Runner):
    """A serialized TensorRT engine run with tensorrt + cuda-python + numpy only.

    One stream, pinned host and device buffers sized for the profile's largest batch, tensor
    addresses set once; `set_input_shape` when the batch size changes; optional CUDA-graph replay
    of the current shape. The engine's sidecar must describe this file (size and SHA-256) and is
    checked against this TensorRT and GPU before anything is deserialized.
    """

    def __init__(self, artifact: Path, cuda_graph: bool = False) -> None:
        super().__init__(artifact)
        self.cuda_graph = cuda_graph
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

    def _load_impl(self) -> TensorSpec:
        from edgeres.cuda import DeviceBuffer, PinnedArray, Stream
        from edgeres.engine import dims_tuple
        from edgeres.engine_target import check_engine_target, require_tensorrt, running_target

        sidecar = verify_sidecar(self.artifact)  # a sidecar of another file is refused before anything else
        require_tensorrt()
        import tensorrt as trt

        if sidecar is None:
            raise UserInputError(f"{self.artifact}: no sidecar, so its TensorRT version and GPU cannot be checked")
        check_engine_target(self.artifact, sidecar, running_target())
        # The runtime (and its logger) must outlive every engine it deserialized: kept until _close_impl.
        logger = self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = self._runtime = trt.Runtime(logger)
        if (sidecar.get("options") or {}).get("version_compatible"):
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
        self._stream = Stream()
        for name, shape in ((inputs[0], high), (outputs[0], out_high)):
            host = PinnedArray(shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            self._buffers.append(host)  # appended one by one: a failed allocation leaves nothing untracked
            device = DeviceBuffer(host.nbytes)
            self._buffers.append(device)
            if not self._context.set_tensor_address(name, device.ptr):
                raise EdgeresError(f"{self.artifact}: TensorRT refused the device address for tensor '{name}'")
        in_shape = dims_tuple(engine.get_tensor_shape(inputs[0]))
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(inputs[0])))
        return TensorSpec(inputs[0], dtype, tuple(None if d < 0 else d for d in in_shape))

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        """`set_input_shape` on the input, checked: TensorRT returns False for a shape outside the profile."""
        from edgeres.engine import as_dims

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
        from edgeres.cuda import CapturedGraph

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
        from edgeres.cuda import DeviceBuffer, PinnedArray, copy_to_device, copy_to_host
        from edgeres.engine import dims_tuple

        low, high = self._batch_range
        if not low <= len(batch) <= high:
            raise UserInputError(f"{self.artifact}: batch of {len(batch)}, the engine's profile takes {low}..{high}")
        stream, context, out_name = self._stream, self._context, self._names[1]
        assert context is not None
        host_in, dev_in, host_out, dev_out = self._buffers
        assert stream is not None and isinstance(host_in, PinnedArray) and isinstance(host_out, PinnedArray)
        assert isinstance(dev_in, DeviceBuffer) and isinstance(dev_out, DeviceBuffer)
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
            self._context = None  # TensorRT objects are freed when their last reference goes
            self._engine = None
            self._runtime = None
            self._logger = None
