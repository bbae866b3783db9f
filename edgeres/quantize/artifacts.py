"""The files the quantize stage writes, each with its sidecar naming the FP32 model it was made from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.quantize.fp16 import to_fp16

CACHE_NAME = "calibration_cache.json"
TRT_TABLE_NAME = "calibration.table"
TENSORRT_MODEL_NAME = "model_int8_qdq.onnx"
CPU_MODEL_NAME = "model_int8_u8s8.onnx"
FP16_MODEL_NAME = "model_fp16.onnx"


def write_quantized(
    path: Path,
    model: onnx.ModelProto,
    source: Path,
    role: ArtifactRole,
    options: dict[str, Any],
    results: dict[str, Any],
) -> Path:
    """Write a model made from `source` and its sidecar (which names the source and the model's role)."""
    options = {"role": role.value, **options}
    write_bytes_atomic(path, model.SerializeToString())
    write_sidecar(path, "quantize", {"onnx": str(source), "onnx_sha256": sha256_file(source)}, options, results)
    return path


def write_fp16_model(source: Path, model: onnx.ModelProto, outdir: Path) -> Path:
    """The FP16 model (float32 inputs and outputs) of the FP32 `model` read from `source`."""
    return write_quantized(
        outdir / FP16_MODEL_NAME, to_fp16(model), source, ArtifactRole.FP16, {"keep_io_float": True}, {}
    )
