"""ONNX -> TensorRT engine, plus the sidecar that ties an engine to its TensorRT version and GPU.

Precision lives in the ONNX (Q/DQ for INT8, casts for FP16), so the network is built strongly
typed where the API has that flag (TensorRT >= 10); on older APIs the FP16/INT8 builder flags that
Q/DQ networks need are set instead. Everything except `build_engine` runs without TensorRT;
`tensorrt` is imported inside the functions that need it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnx

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.onnx import graph_input, load_onnx
from edgeres.artifacts.precision import Precision, onnx_precision
from edgeres.artifacts.sidecar import Sidecar
from edgeres.artifacts.tensors import TensorSpec
from edgeres.engine.dims import as_dims
from edgeres.engine.options import EngineOptions
from edgeres.engine.record import EngineProfile, EngineRecord
from edgeres.engine.target import EngineTarget, HardwareCompatibility, require_tensorrt, running_target
from edgeres.errors import EdgeresError, UserInputError
from edgeres.frames.contract import recorded_input

if TYPE_CHECKING:
    import tensorrt as trt


def network_input(onnx_path: Path) -> TensorSpec:
    """The ONNX's one input, which the engine's optimisation profile is set for."""
    return graph_input(load_onnx(onnx_path, weights=False), onnx_path)


def engine_record(
    onnx_path: Path,
    options: EngineOptions,
    precision: Precision,
    target: EngineTarget,
    strongly_typed: bool,
    build_seconds: float | None = None,
) -> EngineRecord:
    """The record of an engine built from `onnx_path`: hashes of the ONNX and calibration cache, the
    profile's shapes, the target, the builder settings and the ONNX's recorded input."""
    onnx_input = network_input(onnx_path)
    min_shape, opt_shape, max_shape = options.batch.shapes(onnx_input.sample_shape(onnx_path))
    cache = options.calibration_cache
    return EngineRecord(
        onnx=str(onnx_path),
        onnx_sha256=sha256_file(onnx_path),
        precision=precision,
        profile=EngineProfile(onnx_input.name, min_shape, opt_shape, max_shape),
        target=target,
        options=options,
        calibration_cache=str(cache) if cache else None,
        calibration_cache_sha256=sha256_file(cache) if cache else None,
        strongly_typed=strongly_typed,
        input=recorded_input(onnx_path),
        build_seconds=build_seconds,
    )


def write_engine(output: Path, serialized: bytes, record: EngineRecord) -> Sidecar:
    """Write the engine atomically, then its sidecar; returns the sidecar."""
    if not serialized:
        raise EdgeresError(f"{output}: TensorRT returned an empty engine")
    write_bytes_atomic(output, serialized)
    return record.write(output)


def _parse_onnx(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: Path) -> trt.OnnxParser:
    """Fill `network` from the ONNX; returns the parser, which the caller keeps until the engine is built.

    The parser owns the weight memory the network points at, so it must outlive
    build_serialized_network (TensorRT Developer Guide, "Importing a Model Using the ONNX Parser").
    """
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return parser
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        node = error.node_name() or f"#{error.node()}"
        errors.append(f"node {node} ({error.node_operator()}): {error.desc()}")
    raise UserInputError(f"{onnx_path}: TensorRT's ONNX parser failed: " + "; ".join(errors or ["no detail given"]))


def _configure(builder: trt.Builder, config: trt.IBuilderConfig, options: EngineOptions) -> None:
    """Workspace, optimisation level, DLA, version and hardware compatibility on `config`."""
    import tensorrt as trt

    if options.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if options.optimization_level is not None:
        config.builder_optimization_level = options.optimization_level
    if options.dla_core is not None:
        if options.dla_core >= builder.num_DLA_cores:
            raise UserInputError(f"DLA core {options.dla_core}: this device has {builder.num_DLA_cores} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run stay on the GPU
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compatibility is not HardwareCompatibility.NONE:
        level = options.hardware_compatibility.name
        config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)


FP16_SCALES_FROM_MAJOR = 10  # TensorRT 8.6's Dequantize takes float32 scales only; 10's float16 too


def check_scale_types(onnx_path: Path, tensorrt_version: str) -> None:
    """Refuse a Q/DQ model with float16 scales (an FP16 remainder) on a TensorRT that takes float32 scales only."""
    try:
        major = int(tensorrt_version.split(".", 1)[0])
    except ValueError:
        return  # an unparseable version: let TensorRT's parser decide
    if major >= FP16_SCALES_FROM_MAJOR:
        return
    model = load_onnx(onnx_path, weights=False)
    fp16 = {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    scaled = [n.name for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear") and
              len(n.input) > 1 and n.input[1] in fp16]  # fmt: skip
    if scaled:
        raise UserInputError(
            f"{onnx_path}: its Q/DQ scales are float16 (an FP16 remainder, e.g. node '{scaled[0]}'); TensorRT "
            f"{tensorrt_version} takes float32 scales only ({FP16_SCALES_FROM_MAJOR} or later takes both): "
            "rebuild it with an FP32 remainder (edgeres build --high-precision fp32)"
        )


def network_flags(precision: Precision, dla: bool = False, trt: Any = None) -> tuple[int, list[Any], bool]:
    """(creation flags, builder flags, strongly typed) for building `precision` on this TensorRT.

    Strongly typed where the API has the flag, except for DLA on an API that still has the FP16/INT8
    builder flags (TensorRT 10.x, JetPack 6 ships 10.3): NVIDIA's 10.x "Working with DLA" guide
    builds DLA engines with those flags (`trtexec --useDLACore=0 --fp16`), and strongly typed DLA
    is documented only from TensorRT 11.4.1 ("Strongly Typed Networks for DLA"), where the flags
    are gone and every network is strongly typed. `trt` is the tensorrt module (a stand-in in tests).
    """
    if trt is None:
        import tensorrt as trt

    creation = trt.NetworkDefinitionCreationFlag
    legacy = hasattr(trt.BuilderFlag, "FP16") and hasattr(trt.BuilderFlag, "INT8")
    if hasattr(creation, "STRONGLY_TYPED") and not (dla and legacy):
        return 1 << int(creation.STRONGLY_TYPED), [], True
    flags = 1 << int(creation.EXPLICIT_BATCH) if hasattr(creation, "EXPLICIT_BATCH") else 0
    wanted = {Precision.FP32: [], Precision.FP16: ["FP16"], Precision.INT8: ["INT8", "FP16"]}[precision]
    return flags, [getattr(trt.BuilderFlag, name) for name in wanted if hasattr(trt.BuilderFlag, name)], False


def _attach_timing_cache(config: trt.IBuilderConfig, cache_path: Path) -> trt.ITimingCache:
    """Load `cache_path` (empty when absent) into `config`; a cache TensorRT rejects is refused, untouched."""
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        raise UserInputError(
            f"{cache_path}: TensorRT rejected this timing cache (made by another TensorRT version or GPU?); "
            "delete it or use another timing cache file"
        )
    return cache


def build_engine(onnx_path: Path, output: Path, options: EngineOptions | None = None) -> Sidecar:
    """Parse the ONNX, build one optimisation profile, write engine + sidecar; returns the sidecar."""
    onnx_path, options = Path(onnx_path), options or EngineOptions()
    if not onnx_path.is_file():
        raise UserInputError(f"{onnx_path}: ONNX file not found")
    require_tensorrt()
    import tensorrt as trt

    target = running_target()
    check_scale_types(onnx_path, target.tensorrt_version)
    precision = onnx_precision(onnx_path)
    onnx_input = network_input(onnx_path)
    started = time.perf_counter()
    # logger, builder, network, parser, config and timing cache are all held in this frame until
    # build_serialized_network returns: the network points into the parser's weights.
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    creation_flags, precision_flags, strongly_typed = network_flags(precision, dla=options.dla_core is not None)
    network = builder.create_network(creation_flags)
    parser = _parse_onnx(network, logger, onnx_path)
    config = builder.create_builder_config()
    for flag in precision_flags:
        config.set_flag(flag)
    _configure(builder, config, options)
    profile = builder.create_optimization_profile()
    min_shape, opt_shape, max_shape = options.batch.shapes(onnx_input.sample_shape(onnx_path))
    profile.set_shape(onnx_input.name, as_dims(min_shape), as_dims(opt_shape), as_dims(max_shape))
    if config.add_optimization_profile(profile) < 0:
        raise EdgeresError(f"{onnx_path}: TensorRT refused the profile {options.batch} for '{onnx_input.name}'")
    cache_path = options.timing_cache
    timing_cache = _attach_timing_cache(config, cache_path) if cache_path is not None else None
    serialized = builder.build_serialized_network(network, config)
    del parser  # only now may the parser's weight memory go
    if serialized is None:
        raise EdgeresError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
    if cache_path is not None and timing_cache is not None:  # reached only when TensorRT accepted the cache
        write_bytes_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    seconds = time.perf_counter() - started
    record = engine_record(onnx_path, options, precision, target, strongly_typed, build_seconds=seconds)
    return write_engine(output, bytes(serialized), record)

