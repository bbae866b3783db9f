"""Checks of the TensorRT install and of the features edgeres builds with: strongly typed networks,
float16 Q/DQ scales, DLA cores. `tensorrt` is imported inside each check: most machines running the doctor
first have none, and that is a SKIP, not a crash."""

from __future__ import annotations

import importlib.util

from edgeres.doctor.check import Outcome, failed, passed, skipped

INSTALL = "JetPack ships it; on x86 pip install 'edgeres[gpu]'"
UPGRADE = "upgrade to TensorRT 10 or later (JetPack 6 on Jetson; on x86 pip install -U 'edgeres[gpu]')"


def tensorrt_major(version: str) -> int | None:
    """10 for '10.3.0.30'; None when the version does not start with a number."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def check_tensorrt() -> Outcome:
    """TensorRT imports, and which version it is; not installed at all is a SKIP (only engines need it)."""
    if importlib.util.find_spec("tensorrt") is None:
        return skipped(f"TensorRT is not installed; only building and running engines needs it ({INSTALL})")
    import tensorrt as trt

    return passed(f"TensorRT {trt.__version__}")


def check_strongly_typed() -> Outcome:
    """Strongly typed networks: TensorRT takes each layer's precision from the ONNX's types and Q/DQ nodes."""
    import tensorrt as trt

    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        return passed("NetworkDefinitionCreationFlag.STRONGLY_TYPED: precision comes from the ONNX")
    return failed(
        f"TensorRT {trt.__version__} has no strongly typed networks: engines are built with FP16/INT8 builder "
        "flags, and TensorRT may run layers at other precisions than the ONNX says",
        UPGRADE,
    )


def check_fp16_qdq_scales() -> Outcome:
    """TensorRT >= 10 reads float16 Q/DQ scales, which an INT8 model with an FP16 remainder carries."""
    import tensorrt as trt

    from edgeres.engine.builder import FP16_SCALES_FROM_MAJOR  # the builder pulls OpenCV: see engine_checks

    major = tensorrt_major(trt.__version__)
    if major is not None and major >= FP16_SCALES_FROM_MAJOR:
        return passed(f"TensorRT {trt.__version__} reads float16 and float32 Q/DQ scales")
    return failed(
        f"TensorRT {trt.__version__} reads float32 Q/DQ scales only (float16 from {FP16_SCALES_FROM_MAJOR}.0)",
        f"build INT8 models with edgeres build --high-precision fp32, or {UPGRADE}",
    )


def check_dla_cores() -> Outcome:
    """How many DLA cores TensorRT sees: Jetson AGX and NX modules have one or two, a discrete GPU none."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    count = int(builder.num_DLA_cores)
    if count == 0:
        return passed("0 DLA cores (none on a discrete GPU or a Jetson Nano; engines run on the GPU)")
    return passed(f"{count} DLA core(s): engines can be built for them with edgeres engine --dla 0..{count - 1}")
