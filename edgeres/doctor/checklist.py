"""The doctor's checks, in the order they run, with what each needs to have passed: the CPU part first (it
always runs), then the device part, which starts from TensorRT and SKIPs, naming why, where it is absent.

A new check is one more Step here and one small function in the module of its kind.
"""

from __future__ import annotations

from collections.abc import Callable

from edgeres.doctor import cuda_checks, engine_checks, host, package_data, tensorrt_checks
from edgeres.doctor.check import Check, DoctorReport
from edgeres.doctor.runner import Step, run_checks

REINSTALL = "reinstall edgeres and its dependencies: pip install --force-reinstall edgeres"
BUG_REPORT = "attach `edgeres doctor --json` to a bug report"
TENSORRT_REINSTALL = ("TensorRT is installed but broken: reinstall it (Jetson: sudo apt install --reinstall "
                      "python3-libnvinfer; x86: pip install --force-reinstall 'edgeres[gpu]')")  # fmt: skip
DRIVER = cuda_checks.DRIVER_INSTALL

CPU_STEPS: tuple[Step, ...] = (
    Step("edgeres", host.check_edgeres, REINSTALL),
    Step("onnxruntime", host.check_onnxruntime, host.ONNXRUNTIME_INSTALL),
    Step("onnxruntime session", host.check_onnxruntime_session, host.ONNXRUNTIME_INSTALL, ("onnxruntime",)),
    Step("class names", package_data.check_class_names, REINSTALL),
    Step("report schema", package_data.check_report_schema, REINSTALL),
    Step("calibration photographs", package_data.check_calibration_photographs, REINSTALL),
    Step("temp folder", host.check_temp_folder, "set TMPDIR to a writable folder with free space"),
)
DEVICE_STEPS: tuple[Step, ...] = (
    Step("tensorrt", tensorrt_checks.check_tensorrt, TENSORRT_REINSTALL),
    Step("strongly typed networks", tensorrt_checks.check_strongly_typed, TENSORRT_REINSTALL, ("tensorrt",)),
    Step("fp16 q/dq scales", tensorrt_checks.check_fp16_qdq_scales, TENSORRT_REINSTALL, ("tensorrt",)),
    Step("cuda-python", cuda_checks.check_cuda_python, "pip install --force-reinstall 'edgeres[gpu]'", ("tensorrt",)),
    Step("cuda driver", cuda_checks.check_cuda_driver, DRIVER, ("cuda-python",)),
    Step("gpu", cuda_checks.check_gpu, DRIVER, ("cuda driver",)),
    Step("dla cores", tensorrt_checks.check_dla_cores, TENSORRT_REINSTALL, ("gpu",)),
    Step("nvml", cuda_checks.check_nvml, DRIVER, ("gpu",)),
    Step("pinned memory", cuda_checks.check_pinned_memory, DRIVER, ("gpu",)),
    Step("stream and events", cuda_checks.check_stream_and_events, DRIVER, ("gpu",)),
    Step("cuda graph", cuda_checks.check_cuda_graph, DRIVER, ("stream and events",)),
    Step("fp16 engine", engine_checks.check_fp16_engine, f"see the TensorRT log above; {BUG_REPORT}",
         ("gpu", "pinned memory", "stream and events", "onnxruntime session")),
    Step("int8 engine", engine_checks.check_int8_engine, f"see the TensorRT log above; {BUG_REPORT}",
         ("gpu", "pinned memory", "stream and events", "onnxruntime session")),
)  # fmt: skip
STEPS = CPU_STEPS + DEVICE_STEPS


def run_doctor(on_check: Callable[[Check], None] | None = None) -> DoctorReport:
    """Every check of STEPS, in order; `on_check` sees each line as it is known."""
    return run_checks(STEPS, on_check)
