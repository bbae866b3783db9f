"""The few CUDA runtime calls the TensorRT runner needs, through NVIDIA's cuda-python (`cuda.bindings`).

cuda-python rather than pycuda: it ships as a wheel (no build against the driver), imports without
a GPU, and is what TensorRT's own Python samples use since TensorRT 10. Every call goes through
`check`, which turns the returned `cudaError_t` into an exception naming the error.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeres.errors import BackendUnavailableError, EdgeresError


class CudaError(EdgeresError):
    """A CUDA runtime call failed; the message names the call and the `cudaError_t`."""


def runtime_module() -> Any:
    """`cuda.bindings.runtime` (cudart), imported on first use so CPU-only installs never need it.

    cuda-python before 12.8 (e.g. what an older JetPack image carries) has the same module as
    `cuda.cudart`; it is used when `cuda.bindings` is absent.
    """
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendUnavailableError("cuda-python is not installed: pip install 'edgeres[gpu]'") from exc
    return cudart


def check(call: str, result: Any) -> Any:
    """Unpack a cuda-python result tuple `(err, *values)`; raise CudaError unless err is cudaSuccess.

    Returns None, the single value, or the tuple of values.
    """
    cudart = runtime_module()
    status, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if status != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(status)
        label = name.decode() if isinstance(name, bytes) else str(status)
        raise CudaError(f"{call} failed: {label}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to: the GPU's name and compute capability."""

    index: int
    name: str
    compute_capability: str


def current_device() -> DeviceInfo:
    """Name and compute capability of the current device; raises CudaError without a usable GPU."""
    cudart = runtime_module()
    try:
        index = int(check("cudaGetDevice", cudart.cudaGetDevice()))
    except RuntimeError as exc:  # older cuda-python raises when it cannot load libcuda at all
        raise CudaError(f"cudaGetDevice failed: {exc}") from exc
    props = check("cudaGetDeviceProperties", cudart.cudaGetDeviceProperties(index))
    raw_name = props.name
    name = raw_name.split(b"\0", 1)[0].decode() if isinstance(raw_name, bytes) else str(raw_name)
    return DeviceInfo(index, name, f"{props.major}.{props.minor}")


class Stream:
    """A non-blocking CUDA stream: work queued on it does not wait for the legacy default stream."""

    def __init__(self) -> None:
        cudart = runtime_module()
        self.handle = check("cudaStreamCreateWithFlags", cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking))

    @property
    def address(self) -> int:
        """The raw `cudaStream_t` as an integer, the form TensorRT's execute_async_v3 takes."""
        return int(self.handle)

    def synchronize(self) -> None:
        check("cudaStreamSynchronize", runtime_module().cudaStreamSynchronize(self.handle))

    def destroy(self) -> None:
        if self.handle is not None:
            check("cudaStreamDestroy", runtime_module().cudaStreamDestroy(self.handle))
            self.handle = None


class DeviceBuffer:
    """`nbytes` of device memory; `ptr` is the integer address TensorRT's set_tensor_address takes."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr: int = int(check("cudaMalloc", runtime_module().cudaMalloc(nbytes)))

    def free(self) -> None:
        if self.ptr:
            check("cudaFree", runtime_module().cudaFree(self.ptr))
            self.ptr = 0


class PinnedArray:
    """Page-locked host memory seen as a numpy array, so copies to and from the GPU run asynchronously."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        count = int(np.prod(shape)) if shape else 1
        self.nbytes = max(1, count * dtype.itemsize)
        self.ptr: int = int(check("cudaMallocHost", runtime_module().cudaMallocHost(self.nbytes)))
        raw = np.ctypeslib.as_array(ctypes.cast(self.ptr, ctypes.POINTER(ctypes.c_uint8)), (self.nbytes,))
        self.array: np.ndarray = raw[: count * dtype.itemsize].view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            check("cudaFreeHost", runtime_module().cudaFreeHost(self.ptr))
            self.ptr = 0


def _copy_async(
    dst: int, src: int, nbytes: int, device: DeviceBuffer, host: PinnedArray, kind: str, stream: Stream
) -> None:
    """cudaMemcpyAsync of `nbytes` between a device buffer and pinned host memory, checked against both sizes."""
    if nbytes > min(device.nbytes, host.nbytes):
        raise CudaError(f"copy of {nbytes} bytes exceeds a buffer ({device.nbytes} device, {host.nbytes} host)")
    cudart = runtime_module()
    direction = getattr(cudart.cudaMemcpyKind, kind)
    check("cudaMemcpyAsync", cudart.cudaMemcpyAsync(dst, src, nbytes, direction, stream.handle))


def copy_to_device(dst: DeviceBuffer, src: PinnedArray, nbytes: int, stream: Stream) -> None:
    _copy_async(dst.ptr, src.ptr, nbytes, dst, src, "cudaMemcpyHostToDevice", stream)


def copy_to_host(dst: PinnedArray, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _copy_async(dst.ptr, src.ptr, nbytes, src, dst, "cudaMemcpyDeviceToHost", stream)


class EventTimer:
    """A pair of CUDA events measuring GPU time between `start()` and `stop()` on one stream."""

    def __init__(self) -> None:
        cudart = runtime_module()
        self._start: Any = check("cudaEventCreate", cudart.cudaEventCreate())
        self._stop: Any = None
        try:
            self._stop = check("cudaEventCreate", cudart.cudaEventCreate())
        except CudaError:
            self.destroy()  # do not leak the first event
            raise

    def start(self, stream: Stream) -> None:
        check("cudaEventRecord", runtime_module().cudaEventRecord(self._start, stream.handle))

    def stop(self, stream: Stream) -> None:
        check("cudaEventRecord", runtime_module().cudaEventRecord(self._stop, stream.handle))

    def elapsed_ms(self) -> float:
        cudart = runtime_module()
        check("cudaEventSynchronize", cudart.cudaEventSynchronize(self._stop))
        return float(check("cudaEventElapsedTime", cudart.cudaEventElapsedTime(self._start, self._stop)))

    def destroy(self) -> None:
        """Destroy both events; calling it again (or after a failed constructor) does nothing."""
        cudart = runtime_module()
        start, stop = self._start, self._stop
        self._start = self._stop = None
        for event in (start, stop):
            if event is not None:
                check("cudaEventDestroy", cudart.cudaEventDestroy(event))


class CapturedGraph:
    """Work recorded once on a stream (`begin`, enqueue, `end`) and replayed with one `launch`.

    For fixed shapes and fixed buffer addresses only: the graph replays exactly what was captured.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._graph: Any = None
        self._exec: Any = None

    def begin(self) -> None:
        cudart = runtime_module()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check("cudaStreamBeginCapture", cudart.cudaStreamBeginCapture(self.stream.handle, mode))

    def end(self) -> None:
        cudart = runtime_module()
        self._graph = check("cudaStreamEndCapture", cudart.cudaStreamEndCapture(self.stream.handle))
        self._exec = check("cudaGraphInstantiate", cudart.cudaGraphInstantiate(self._graph, 0))

    @property
    def ready(self) -> bool:
        return self._exec is not None

    def launch(self) -> None:
        if self._exec is None:
            raise CudaError("cudaGraphLaunch: no graph has been captured")
        check("cudaGraphLaunch", runtime_module().cudaGraphLaunch(self._exec, self.stream.handle))

    def destroy(self) -> None:
        cudart = runtime_module()
        if self._exec is not None:
            check("cudaGraphExecDestroy", cudart.cudaGraphExecDestroy(self._exec))
            self._exec = None
        if self._graph is not None:
            check("cudaGraphDestroy", cudart.cudaGraphDestroy(self._graph))
            self._graph = None
