"""Which runtime runs an artifact: a user's choice, or AUTO for the one its file kind implies."""

from __future__ import annotations

import enum


class RuntimeKind(str, enum.Enum):
    """AUTO: onnxruntime for an ONNX, TensorRT for an engine; the others name the runtime outright."""

    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"
