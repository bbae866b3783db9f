"""The machine a profile ran on (CPU, GPU, usable cores, package versions), recorded with every report."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.sidecar import package_versions
from edgeres.profile.memory import gpu_description


@dataclass(frozen=True)
class MachineInfo:
    cpu_model: str
    logical_cpus: int
    usable_cpus: int
    cpu_max_mhz: float | None
    platform: str
    gpu: dict[str, Any] | None
    versions: dict[str, str | None]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _cpu_max_mhz() -> float | None:
    try:
        return int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError):
        return None


def machine_info() -> MachineInfo:
    """The CPU, GPU (through NVML where present), thread counts and package versions of this run."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return MachineInfo(
        cpu_model=_cpu_model(),
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable,
        cpu_max_mhz=_cpu_max_mhz(),
        platform=platform.platform(),
        gpu=gpu_description(),
        versions=package_versions("onnxruntime", "openvino", "onnx", "numpy", "tensorrt", "cuda-python"),
    )
