"""Which model file the camera loop runs, and a first check that it is one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edgeres.artifacts.kinds import is_engine_path
from edgeres.artifacts.onnx import load_onnx
from edgeres.errors import UserInputError

# On a CPU onnxruntime runs the U8S8 INT8 twin fastest, then FP32 (FP16 kernels are GPU ones).
CPU_MODEL_PATTERNS = ("*_u8s8.onnx", "*_fp32.onnx", "*.onnx")


def pick_model(path: Path) -> Path:
    """A file as given; in a build folder the engine where TensorRT is installed, else the ONNX for the CPU."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UserInputError(f"{path}: no such model file or build folder")
    engines = sorted(path.glob("*.engine")) + sorted(path.glob("*.plan"))
    if engines and importlib.util.find_spec("tensorrt") is not None:
        return engines[0]
    for pattern in CPU_MODEL_PATTERNS:
        found = sorted(path.glob(pattern))
        if found:
            return found[0]
    raise UserInputError(f"{path}: no model file (.engine, .plan or .onnx)")


def check_onnx(model: Path) -> None:
    """An ONNX model file (not empty, not other bytes), said in one line before a runtime reads it; engines are
    checked by TensorRT itself."""
    if is_engine_path(model):
        return
    if model.stat().st_size == 0:
        raise UserInputError(f"{model}: not an ONNX model (empty file)")
    try:
        proto = load_onnx(model, weights=False)
    except UserInputError as exc:
        raise UserInputError(f"{model}: not an ONNX model ({exc.__cause__.__class__.__name__})") from None
    if not proto.graph.node:
        raise UserInputError(f"{model}: not an ONNX model (no graph)")
