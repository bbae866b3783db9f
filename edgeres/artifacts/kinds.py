"""What an artifact is: an ONNX model or a TensorRT engine (by suffix), and its role in a build."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from edgeres.errors import UserInputError

ONNX_SUFFIX = ".onnx"
ENGINE_SUFFIXES = (".engine", ".plan")
ENGINE_SUFFIX = ENGINE_SUFFIXES[0]  # what edgeres names the engines it builds
FINETUNE_RECORD_NAME = "finetune.json"  # a fine-tune run's record (edgeres.train writes it, the report reads it)
FINETUNE_CURVES_NAME = "curves.png"  # its training curves
FINETUNE_MODEL_NAME = "model.pth"  # its best epoch's weights (beside model_qat.onnx when QAT ran)


class ArtifactKind(Enum):
    ONNX = "onnx"
    TENSORRT = "tensorrt"


class ArtifactRole(str, Enum):
    """The files one `edgeres build` writes; the values name them in build_summary.json."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8_TENSORRT = "int8_tensorrt"
    INT8_ONNXRUNTIME = "int8_onnxruntime"
    CALIBRATION_CACHE = "calibration_cache"
    CALIBRATION_TABLE = "calibration_table"
    ENGINE = "engine"
    SENSITIVITY = "sensitivity"
    HELDOUT = "heldout"  # held-out samples and reference logits, what verifies an engine on the device
    SENSITIVITY_PLOT = "sensitivity_plot"
    SUMMARY = "summary"

    # A role is also its name in build_summary.json: it hashes, compares and prints as that string.
    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


def is_engine_path(path: Path) -> bool:
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def artifact_kind(path: Path) -> ArtifactKind:
    """ONNX or TensorRT engine, by suffix; a missing file or another type is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ONNX_SUFFIX:
        return ArtifactKind.ONNX
    if is_engine_path(path):
        return ArtifactKind.TENSORRT
    raise UserInputError(
        f"{path}: a '{suffix or 'no suffix'}' file is neither an ONNX model nor a TensorRT engine "
        "(expected .onnx, .engine or .plan)"
    )
