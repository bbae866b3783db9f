"""`edgeres engine`: a TensorRT engine from an ONNX a build (or anyone) wrote, on the machine that runs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgeres.artifacts.kinds import ENGINE_SUFFIX, is_engine_path
from edgeres.artifacts.staging import rollback_on_failure
from edgeres.engine.builder import build_engine
from edgeres.engine.options import EngineOptions
from edgeres.errors import UserInputError
from edgeres.quantize.artifacts import CACHE_NAME


def engine_path_for(onnx_path: Path, output: Path) -> Path:
    """`-o` of `edgeres engine`: an .engine/.plan file as given, else a folder that gets `<onnx stem>.engine`."""
    output = Path(output)
    return output if is_engine_path(output) else output / f"{Path(onnx_path).stem}{ENGINE_SUFFIX}"


def engine_from_onnx(onnx_path: Path, output: Path, options: EngineOptions | None = None) -> Path:
    """TensorRT engine from an existing ONNX; its folder's calibration cache (if any) is hashed into the sidecar."""
    onnx_path, options = Path(onnx_path), options or EngineOptions()
    if not onnx_path.is_file():
        raise UserInputError(f"{onnx_path}: ONNX file not found")
    cache = onnx_path.parent / CACHE_NAME
    if options.calibration_cache is None and cache.is_file() and onnx_path.name.startswith("model_int8"):
        options = replace(options, calibration_cache=cache)
    engine = engine_path_for(onnx_path, output)
    with rollback_on_failure(engine.parent):  # never an engine without its sidecar
        build_engine(onnx_path, engine, options)
    return engine
