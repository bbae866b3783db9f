"""The files the quantize stage writes, each with its sidecar naming the FP32 model it was made from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from edgeres.artifacts.atomic import write_bytes_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.quantize_record import QuantizeRecord
from edgeres.quantize.fp16 import to_fp16

CACHE_NAME = "calibration_cache.json"
TRT_TABLE_NAME = "calibration.table"
TENSORRT_MODEL_NAME = "model_int8_qdq.onnx"
CPU_MODEL_NAME = "model_int8_u8s8.onnx"
FP16_MODEL_NAME = "model_fp16.onnx"


def write_quantized(path: Path, model: onnx.ModelProto, record: QuantizeRecord) -> Path:
    """Write a model and its sidecar (which names the FP32 source and the model's role)."""
    write_bytes_atomic(path, model.SerializeToString())
    record.write(path)
    return path


def write_fp16_model(
    source: Path, model: onnx.ModelProto, outdir: Path, model_input: Mapping[str, Any] | None = None
) -> Path:
    """The FP16 model (float32 inputs and outputs) of the FP32 `model` read from `source`, recording
    `model_input` (what the FP32 model takes, as its sidecar's options["input"])."""
    record = QuantizeRecord(ArtifactRole.FP16, source, keep_io_float=True, input=model_input)
    return write_quantized(outdir / FP16_MODEL_NAME, to_fp16(model), record)
