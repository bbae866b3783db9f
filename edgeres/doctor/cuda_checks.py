"""Checks of CUDA through edgeres's own wrappers (edgeres.engine.cuda): cuda-python against the driver, the
GPU and its memory, NVML, pinned memory, a stream with events, and a CUDA-graph capture and replay.

cuda-python is imported on first use (`cuda.runtime_module`), like everywhere in edgeres.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from edgeres.doctor.check import Outcome, error_text, failed, gib, passed, skipped
from edgeres.engine import cuda
from edgeres.errors import BackendUnavailableError

CUDA_PYTHON_DISTRIBUTIONS = ("cuda-bindings", "cuda-python")  # cuda.bindings ships in the first since 12.8
DRIVER_INSTALL = "install the NVIDIA driver (on Jetson: flash JetPack), then reboot; nvidia-smi should list the GPU"
# Building a ResNet50 engine holds its weights (25-100 MB), activations and the builder's tactic workspace
# (TensorRT tries several hundred MiB by default) on the GPU; with less than this free, builds fail or fall
# back to slow tactics. A Jetson shares memory with the CPU, and its figure is what the OS has free.
MIN_FREE_GPU_BYTES = 512 << 20
PROBE_BYTES = 4 << 20  # host and device buffers of the memory checks
FILL_BYTE = 0x5A  # what the captured graph writes
JETSON_RELEASE = Path("/etc/nv_tegra_release")  # present on every L4T (Jetson) image


def cuda_text(version: int) -> str:
    """CUDA's 1000 * major + 10 * minor as 'major.minor': 12060 -> '12.6'."""
    return f"{version // 1000}.{version % 1000 // 10}"


def cuda_python_version() -> str:
    """The installed version of the distribution that carries cuda.bindings (or the older cuda.cudart)."""
    for distribution in CUDA_PYTHON_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(distribution)
    return "(version unknown)"


def check_cuda_python() -> Outcome:
    """cuda-python imports; which version, and which CUDA major its runtime API is built for."""
    try:
        cudart = cuda.runtime_module()
    except BackendUnavailableError as exc:
        return failed(error_text(exc), "pip install 'edgeres[gpu]' (on Jetson: pip install 'cuda-python>=12.8,<13')")
    runtime = int(cuda.check("cudaRuntimeGetVersion", cudart.cudaRuntimeGetVersion()))
    return passed(f"cuda-python {cuda_python_version()}, built for CUDA {cuda_text(runtime)}")


def check_cuda_driver() -> Outcome:
    """The driver supports at least the CUDA major version cuda-python is built for."""
    cudart = cuda.runtime_module()
    driver = int(cuda.check("cudaDriverGetVersion", cudart.cudaDriverGetVersion()))
    runtime = int(cuda.check("cudaRuntimeGetVersion", cudart.cudaRuntimeGetVersion()))
    if driver == 0:
        return failed("no NVIDIA driver found (cudaDriverGetVersion returned 0)", DRIVER_INSTALL)
    package = f"cuda-python {cuda_python_version()}"
    if driver // 1000 < runtime // 1000:
        major = driver // 1000
        return failed(
            f"the driver supports CUDA {cuda_text(driver)}, {package} needs CUDA {runtime // 1000}",
            f"install cuda-python {major}.* matching the driver's CUDA {cuda_text(driver)} "
            f"(pip install 'cuda-python=={major}.*'), or update the driver",
        )
    return passed(f"the driver supports CUDA {cuda_text(driver)}; {package} needs CUDA {runtime // 1000}")


def check_gpu(min_free_bytes: int = MIN_FREE_GPU_BYTES) -> Outcome:
    """The current GPU: name, compute capability, and free and total memory (cudaMemGetInfo)."""
    device = cuda.current_device()
    free, total = cuda.check("cudaMemGetInfo", cuda.runtime_module().cudaMemGetInfo())
    detail = (f"GPU {device.index}: {device.name}, compute capability {device.compute_capability}, "
              f"{gib(int(free))} free of {gib(int(total))}")  # fmt: skip
    if int(free) < min_free_bytes:
        return failed(
            f"{detail}: under the {gib(min_free_bytes)} an engine build needs",
            "stop what holds GPU memory (nvidia-smi, or tegrastats on Jetson, shows it) and rerun",
        )
    return passed(detail)


def check_nvml(jetson_release: Path = JETSON_RELEASE) -> Outcome:
    """NVML (pynvml), which edgeres profile reads GPU memory and clocks through; a Jetson (L4T) has none."""
    if importlib.util.find_spec("pynvml") is None:
        return skipped("pynvml is not installed (optional: GPU memory and clocks in edgeres profile; "
                       "pip install nvidia-ml-py)")  # fmt: skip
    import pynvml

    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError and its per-code subclasses
        if jetson_release.exists():
            return skipped(f"this Jetson has no NVML ({error_text(exc)}); tegrastats shows its memory and clocks")
        return failed(f"NVML does not start: {error_text(exc)}", f"reinstall the driver: libnvidia-ml comes with it; "
                      f"{DRIVER_INSTALL}")  # fmt: skip
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
        count = int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()
    text = version.decode() if isinstance(version, bytes) else str(version)
    return passed(f"NVML: driver {text}, {count} GPU(s)")


def _pattern(nbytes: int) -> np.ndarray:
    return (np.arange(nbytes) % 251).astype(np.uint8)  # a prime period: a shifted copy does not match


def check_pinned_memory() -> Outcome:
    """Page-locked host memory (cudaMallocHost, what the runner's copies need) is allocated, written, freed."""
    host = cuda.PinnedArray((PROBE_BYTES,), np.dtype(np.uint8))
    try:
        host.array[:] = _pattern(PROBE_BYTES)
        intact = bool(np.array_equal(host.array, _pattern(PROBE_BYTES)))
    finally:
        host.free()
    if not intact:
        return failed("pinned host memory did not hold what was written to it", DRIVER_INSTALL)
    return passed(f"{gib(PROBE_BYTES)} of page-locked host memory allocated, written and freed")


def check_stream_and_events() -> Outcome:
    """Host -> device -> host copies on a stream, between two recorded events; the bytes come back intact."""
    with contextlib.ExitStack() as cleanup:
        stream = cuda.Stream()
        cleanup.callback(stream.destroy)
        timer = cuda.EventTimer()
        cleanup.callback(timer.destroy)
        device = cuda.DeviceBuffer(PROBE_BYTES)
        cleanup.callback(device.free)
        source = cuda.PinnedArray((PROBE_BYTES,), np.dtype(np.uint8))
        cleanup.callback(source.free)
        back = cuda.PinnedArray((PROBE_BYTES,), np.dtype(np.uint8))
        cleanup.callback(back.free)
        source.array[:] = _pattern(PROBE_BYTES)
        back.array[:] = 0
        timer.start(stream)
        cuda.copy_to_device(device, source, PROBE_BYTES, stream)
        cuda.copy_to_host(back, device, PROBE_BYTES, stream)
        timer.stop(stream)
        milliseconds = timer.elapsed_ms()  # waits for the stop event
        stream.synchronize()
        intact = bool(np.array_equal(back.array, source.array))
    if not intact:
        return failed("the bytes copied to the GPU and back differ from those sent", DRIVER_INSTALL)
    return passed(
        f"{gib(PROBE_BYTES)} host -> device -> host on a stream, intact, {milliseconds:.2f} ms between events"
    )


def check_cuda_graph() -> Outcome:
    """A cudaMemsetAsync captured into a CUDA graph (as the runner captures an inference) and replayed."""
    cudart = cuda.runtime_module()
    with contextlib.ExitStack() as cleanup:
        stream = cuda.Stream()
        cleanup.callback(stream.destroy)
        device = cuda.DeviceBuffer(PROBE_BYTES)
        cleanup.callback(device.free)
        host = cuda.PinnedArray((PROBE_BYTES,), np.dtype(np.uint8))
        cleanup.callback(host.free)
        graph = cuda.CapturedGraph(stream)
        cleanup.callback(graph.destroy)
        graph.begin()
        try:
            cuda.check("cudaMemsetAsync", cudart.cudaMemsetAsync(device.ptr, FILL_BYTE, PROBE_BYTES, stream.handle))
        except BaseException:
            with contextlib.suppress(Exception):  # end the capture, or the stream stays capturing
                graph.end()
            raise
        graph.end()
        host.array[:] = 0
        cuda.copy_to_device(device, host, PROBE_BYTES, stream)  # zeros: only the replay can fill it
        graph.launch()
        cuda.copy_to_host(host, device, PROBE_BYTES, stream)
        stream.synchronize()
        filled = bool(np.all(host.array == FILL_BYTE))
    if not filled:
        return failed("the replayed graph did not write the device buffer", DRIVER_INSTALL)
    return passed(f"a cudaMemsetAsync of {gib(PROBE_BYTES)} captured into a CUDA graph, replayed, bytes verified")
