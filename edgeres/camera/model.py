"""Which model file the camera loop runs, on which runtime, and a first check that it is one."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeres.artifacts.kinds import is_engine_path
from edgeres.artifacts.onnx import load_onnx
from edgeres.errors import UserInputError
from edgeres.runtime.cpu_choice import folder_cpu_runtime
from edgeres.runtime.kinds import RuntimeKind
from edgeres.runtime.openvino_runner import import_openvino

# On a CPU onnxruntime runs the U8S8 INT8 twin fastest, then FP32 (FP16 kernels are GPU ones).
CPU_MODEL_PATTERNS = ("*_u8s8.onnx", "*_fp32.onnx", "*.onnx")
ENGINE_PATTERNS = ("*.engine", "*.plan")
# A build folder's files for each runtime named, best first. OpenVINO runs the TensorRT Q/DQ model on its own
# INT8 kernels (a build that measured it records that choice, read first).
FOLDER_PATTERNS = {
    RuntimeKind.ONNXRUNTIME: CPU_MODEL_PATTERNS,
    RuntimeKind.OPENVINO: ("*_qdq.onnx", "*_fp32.onnx", "*.onnx"),
    RuntimeKind.TENSORRT: ENGINE_PATTERNS,
}


@dataclass(frozen=True)
class CameraModel:
    """The file the camera loop runs and the runtime asked to run it (AUTO: the file's kind decides)."""

    path: Path
    runtime: RuntimeKind


def choose_model(path: Path, runtime: RuntimeKind = RuntimeKind.AUTO) -> CameraModel:
    """A file as given, on `runtime`. A build folder with AUTO: its engine where TensorRT is installed, else the
    model its build recorded for OpenVINO where OpenVINO can run it, else its ONNX for onnxruntime (`pick_model`);
    with a runtime named, the folder's best file for that runtime (FOLDER_PATTERNS, after a recorded OpenVINO
    model for openvino)."""
    path = Path(path)
    if path.is_file():
        return CameraModel(path, runtime)
    if runtime is RuntimeKind.AUTO:
        picked = pick_model(path)
        if not is_engine_path(picked):
            recorded = recorded_openvino_model(path)
            if recorded is not None and openvino_usable():
                return CameraModel(recorded, RuntimeKind.OPENVINO)
        return CameraModel(picked, runtime)
    _require_folder(path)
    recorded = recorded_openvino_model(path) if runtime is RuntimeKind.OPENVINO else None
    if recorded is not None:
        return CameraModel(recorded, runtime)
    patterns = FOLDER_PATTERNS[runtime]
    found = _first_match(path, patterns)
    if found is None:
        raise UserInputError(f"{path}: no model file that {runtime.value} runs ({', '.join(patterns)})")
    return CameraModel(found, runtime)


def pick_model(path: Path) -> Path:
    """A file as given; in a build folder the engine where TensorRT is installed, else the ONNX for the CPU."""
    path = Path(path)
    if path.is_file():
        return path
    _require_folder(path)
    engine = _first_match(path, ENGINE_PATTERNS)
    if engine is not None and importlib.util.find_spec("tensorrt") is not None:
        return engine
    found = _first_match(path, CPU_MODEL_PATTERNS)
    if found is None:
        raise UserInputError(f"{path}: no model file (.engine, .plan or .onnx)")
    return found


def recorded_openvino_model(folder: Path) -> Path | None:
    """The model the folder's build recorded for OpenVINO (its `cpu_runtime`); None when it recorded none or
    another runtime."""
    choice = folder_cpu_runtime(folder)
    if choice is None or choice.runtime is not RuntimeKind.OPENVINO:
        return None
    model = choice.path_in(folder)
    if not model.is_file():
        raise UserInputError(f"{folder}: its build summary records {choice.model} for OpenVINO; no such file there")
    return model


def openvino_usable() -> bool:
    """True where OpenVINO is installed and recent enough to read a build's Q/DQ model."""
    try:
        import_openvino()
    except UserInputError:
        return False
    return True


def _require_folder(path: Path) -> None:
    if not path.is_dir():
        raise UserInputError(f"{path}: no such model file or build folder")


def _first_match(folder: Path, patterns: Sequence[str]) -> Path | None:
    """The first file, by name, of the first pattern any file of `folder` matches."""
    for pattern in patterns:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


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
