"""Memory the model needs: weights, activations, host peak RSS, GPU memory (NVML) and bytes per frame.

Each number says how it was obtained; a number that cannot be measured here is None, not a guess.
"""

from __future__ import annotations

import math
import resource
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import onnx

from edgeres.errors import UserInputError

_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class FrameBytes:
    """Bytes one input frame occupies in each representation a camera pipeline passes it through."""

    width: int
    height: int
    yuv422: int  # 2 bytes per pixel: YUYV/UYVY/NV16/I422 all carry 16 bits per pixel
    rgb24: int  # 3 bytes per pixel after colour conversion
    float32_network: int | None  # the network's float input for one frame (C x H x W x 4); None: raw-frame input

    @classmethod
    def for_frame(cls, width: int, height: int, network_chw: tuple[int, int, int] | None) -> FrameBytes:
        if width < 1 or height < 1:
            raise UserInputError(f"frame size {width}x{height} is not positive")
        network = math.prod(network_chw) * 4 if network_chw is not None else None
        return cls(width, height, width * height * 2, width * height * 3, network)


def onnx_weights_bytes(path: Path) -> int:
    """Bytes of all initializers and Constant-node tensors, at their stored element type.

    Read from tensor shapes and types, not the data, so external-data models need no loading.
    INT8 Q/DQ weights count 1 byte per element, FP16 2, FP32 4.
    """
    proto = onnx.load(str(path), load_external_data=False)
    tensors = list(proto.graph.initializer)
    constants = (node for node in proto.graph.node if node.op_type == "Constant")
    tensors += [a.t for node in constants for a in node.attribute if a.name == "value"]
    total = 0
    for tensor in tensors:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        total += math.prod(tensor.dims) * itemsize
    return total


def _status_kib(field: str) -> int | None:
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux: write 5 to clear_refs).

    Lets each artifact's peak be measured on its own in one process; False where unsupported,
    and then the peak reported is the whole process's since it started.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak resident set size: VmHWM on Linux, else getrusage's ru_maxrss."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # macOS reports bytes, Linux KiB


def _nvml() -> Any:
    """The pynvml module initialised, or None (not installed, no driver, or a Jetson, which lacks NVML)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, or NVMLError when there is no driver/device
        return None
    return pynvml


def gpu_description() -> dict[str, Any] | None:
    """Name, memory and clocks of GPU 0 through NVML, or None when NVML is not available."""
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        name = nvml.nvmlDeviceGetName(handle)
        return {
            "name": name.decode() if isinstance(name, bytes) else str(name),
            "memory_total_bytes": int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
            "sm_clock_mhz": int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)),
            "memory_clock_mhz": int(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)),
        }
    except Exception:
        return None
    finally:
        nvml.nvmlShutdown()


class GpuMemorySampler:
    """Samples device memory in use (NVML, GPU 0) on a thread while a block runs; keeps the peak.

    NVML reports memory used on the whole device, so the peak includes other processes; the
    baseline taken before the block lets the report show the growth too.
    """

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.available = False
        self.baseline_bytes: int | None = None
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None

    def _used(self) -> int:
        return int(self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes or 0, self._used())
            time.sleep(self.interval_s)

    def __enter__(self) -> GpuMemorySampler:
        self._nvml = _nvml()
        if self._nvml is None:
            return self
        self._handle = self._nvml.nvmlDeviceGetHandleByIndex(0)
        self.available = True
        self.baseline_bytes = self.peak_bytes = self._used()
        self._thread = threading.Thread(target=self._poll, name="edgeres-nvml", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak_bytes = max(self.peak_bytes or 0, self._used())
        if self._nvml is not None:
            self._nvml.nvmlShutdown()
