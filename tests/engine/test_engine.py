"""Everything around the TensorRT calls, for real: options, profile shapes, precision and contract
discovery, sidecar metadata, the version/GPU mismatch refusal and the atomic write. Only the calls
into the TensorRT library itself are skipped where it is not installed."""

from __future__ import annotations

import enum
import importlib.util
import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.precision import Precision, onnx_precision
from edgeres.artifacts.sidecar import Sidecar, read_sidecar, sidecar_path, write_sidecar
from edgeres.choices import parse_choice
from edgeres.engine.builder import (
    _attach_timing_cache,
    build_engine,
    engine_record,
    network_flags,
    network_input,
    write_engine,
)
from edgeres.engine.options import BatchProfile, EngineOptions
from edgeres.engine.record import EngineProfile, EngineRecord, read_engine_record
from edgeres.engine.target import EngineMismatchError, EngineTarget, HardwareCompatibility, check_engine_target
from edgeres.errors import BackendUnavailableError, EdgeresError, UserInputError
from edgeres.frames.contract import InputContract, InputSpec, recorded_input
from edgeres.frames.normalization import IMAGENET_RGB
from edgeres.frames.yuv import YuvLayout

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
ORIN = EngineTarget("10.3.0", "Orin", "8.7")


def write_onnx(path: Path, qdq: bool = False, fp16: bool = False, dynamic_width: bool = False) -> Path:
    """A [batch,3,8,8] -> [batch,4] model: flatten + matmul, optionally with Q/DQ or an FP16 weight."""
    weight = np.random.default_rng(0).standard_normal((192, 4)).astype(np.float16 if fp16 else np.float32)
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1)]
    matmul_in = "flat"
    if qdq:
        nodes += [
            helper.make_node("QuantizeLinear", ["flat", "scale", "zero"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        ]
        matmul_in = "dq"
    if fp16:
        nodes.append(helper.make_node("Cast", [matmul_in], ["half"], to=TensorProto.FLOAT16))
        nodes += [
            helper.make_node("MatMul", ["half", "weight"], ["h"]),
            helper.make_node("Cast", ["h"], ["logits"], to=1),
        ]
    else:
        nodes.append(helper.make_node("MatMul", [matmul_in, "weight"], ["logits"]))
    inits = [numpy_helper.from_array(weight, "weight")]
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "scale"),
            numpy_helper.from_array(np.array(0, np.int8), "zero"),
        ]
    width: int | str = "w" if dynamic_width else 8
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


# --- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("1:1:1", (1, 1, 1)), ("1:8:32", (1, 8, 32)), ("4", (4, 4, 4)), (" 2:2:6 ", (2, 2, 6))]
)
def test_batch_profile_parses(text: str, expected: tuple[int, int, int]) -> None:
    profile = BatchProfile.parse(text)
    assert (profile.min, profile.opt, profile.max) == expected
    assert BatchProfile.parse(str(profile)) == profile


@pytest.mark.parametrize(
    ("text", "message"),
    [("8:1:32", "min <= opt <= max"), ("0:1:1", "1 <= min"), ("a:b:c", "whole numbers"), ("1:2", "2 fields")],
)
def test_batch_profile_refuses_bad_text(text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        BatchProfile.parse(text)


def test_profile_shapes_put_the_batch_first() -> None:
    assert BatchProfile(1, 8, 32).shapes((3, 224, 224)) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))
    assert EngineOptions().batch == BatchProfile(1, 1, 1)  # a camera's default


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workspace_mib": 0}, "workspace 0 MiB"),
        ({"optimization_level": 6}, "0..5"),
        ({"dla_core": -1}, "numbered from 0"),
        ({"dla_core": 0, "hardware_compatibility": HardwareCompatibility.AMPERE_PLUS}, "cannot be hardware-compatible"),
        ({"calibration_cache": Path("/nonexistent/calib.cache")}, "calibration cache not found"),
    ],
)
def test_build_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        EngineOptions(**kwargs)


def test_hardware_compatibility_parses() -> None:
    assert parse_choice(HardwareCompatibility, "Ampere-Plus", "level") is HardwareCompatibility.AMPERE_PLUS
    with pytest.raises(UserInputError, match=r"choose one of none\|ampere-plus\|same-compute-capability"):
        parse_choice(HardwareCompatibility, "turing", "hardware compatibility")


def test_build_options_serialise_to_json(tmp_path: Path) -> None:
    cache = tmp_path / "calib.cache"
    cache.write_bytes(b"TRT-calibration")
    options = EngineOptions(
        BatchProfile(1, 8, 32), 512, 4, tmp_path / "timing.cache", None, True, HardwareCompatibility.AMPERE_PLUS, cache
    )
    data = json.loads(json.dumps(options.as_dict()))
    assert data["batch"] == {"min": 1, "opt": 8, "max": 32}
    assert data["hardware_compatibility"] == "ampere-plus"
    assert data["workspace_mib"] == 512 and data["optimization_level"] == 4 and data["version_compatible"] is True
    assert data["calibration_cache"] == str(cache)


# --- what the ONNX says -----------------------------------------------------------------------------


def test_onnx_input_and_precision_from_the_graph(tmp_path: Path) -> None:
    fp32, int8, fp16 = (
        write_onnx(tmp_path / f"{n}.onnx", qdq=n == "int8", fp16=n == "fp16") for n in ("fp32", "int8", "fp16")
    )
    assert network_input(fp32).name == "input" and network_input(fp32).sample_shape(fp32) == (3, 8, 8)
    assert [onnx_precision(p) for p in (fp32, int8, fp16)] == [Precision.FP32, Precision.INT8, Precision.FP16]


def test_sidecar_precision_wins_and_is_checked(tmp_path: Path) -> None:
    path = write_onnx(tmp_path / "m.onnx")
    write_sidecar(path, "quantize", {}, {"precision": "INT8"})
    assert onnx_precision(path) is Precision.INT8
    write_sidecar(path, "quantize", {}, {"precision": "int4"})
    with pytest.raises(UserInputError, match="'int4'"):
        onnx_precision(path)


def test_dynamic_axis_besides_batch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="dynamic axis besides the batch"):
        dynamic = write_onnx(tmp_path / "m.onnx", dynamic_width=True)
        network_input(dynamic).sample_shape(dynamic)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(UserInputError, match="not a valid ONNX"):
        network_input(tmp_path / "junk.onnx")


def test_input_contract_is_followed_from_a_quantized_onnx_to_its_source(tmp_path: Path) -> None:
    source, quantized = write_onnx(tmp_path / "fused.onnx"), write_onnx(tmp_path / "fused_int8.onnx", qdq=True)
    contract = InputContract(YuvLayout.YUYV, 1920, 1080)
    write_sidecar(source, "export", {}, {"input": contract.to_dict()})
    write_sidecar(quantized, "quantize", {"onnx": str(source), "onnx_sha256": sha256_file(source)}, {})
    assert recorded_input(quantized) == InputSpec.frames(contract)
    assert recorded_input(write_onnx(tmp_path / "bare.onnx")) is None


# --- sidecar and atomic write -------------------------------------------------------------------------


def test_engine_sidecar_records_target_profile_contract_and_hashes(tmp_path: Path) -> None:
    onnx_path = write_onnx(tmp_path / "m.onnx", qdq=True)
    rgb = {"kind": "rgb_float", "name": "input", "shape": ["batch", 3, 8, 8]}
    write_sidecar(onnx_path, "export", {}, {"input": rgb})
    cache = tmp_path / "calib.cache"
    cache.write_bytes(b"scales")
    options = EngineOptions(batch=BatchProfile(1, 2, 4), calibration_cache=cache)
    precision = onnx_precision(onnx_path)
    record = engine_record(onnx_path, options, precision, ORIN, strongly_typed=True, build_seconds=12.345)
    engine = tmp_path / "m.engine"
    sidecar = write_engine(engine, b"serialized-engine-bytes", record)
    assert engine.read_bytes() == b"serialized-engine-bytes"
    assert read_sidecar(engine) == sidecar
    assert sidecar.stage == "engine" and sidecar.recorded_sha256 == sha256_file(engine)
    assert sidecar.inputs["onnx_sha256"] == sha256_file(onnx_path)
    assert sidecar.inputs["calibration_cache_sha256"] == sha256_file(cache)
    opts = sidecar.options  # the JSON keys older engines' sidecars have too
    assert opts["target"] == {"tensorrt_version": "10.3.0", "gpu_name": "Orin", "compute_capability": "8.7"}
    assert opts["precision"] == "int8" and opts["strongly_typed"] is True
    assert opts["input"] == {**rgb, "normalization": IMAGENET_RGB.to_json()}  # an old record meant ImageNet RGB
    assert opts["profile"] == {"tensor": "input", "min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}
    assert opts["batch"] == {"min": 1, "opt": 2, "max": 4} and opts["calibration_cache"] == str(cache)
    assert sidecar.results["build_seconds"] == 12.35
    read = read_engine_record(engine)
    assert read is not None
    assert (read.target, read.precision, read.input) == (ORIN, Precision.INT8, InputSpec.rgb("input", 8))
    assert read.profile == EngineProfile("input", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
    assert read.options.batch == options.batch and read.calibration_cache == str(cache)
    assert read.onnx_sha256 == sha256_file(onnx_path) and read.build_seconds == 12.35


def test_failed_or_empty_engine_write_leaves_nothing(tmp_path: Path) -> None:
    onnx_path = write_onnx(tmp_path / "m.onnx")
    record = engine_record(onnx_path, EngineOptions(), Precision.FP32, ORIN, strongly_typed=True, build_seconds=1.0)
    good = tmp_path / "good.engine"
    write_engine(good, b"first", record)
    with pytest.raises(EdgeresError, match="empty engine"):
        write_engine(good, b"", record)
    assert good.read_bytes() == b"first"  # the earlier engine is untouched
    blocked = tmp_path / "blocked.engine"
    blocked.mkdir()  # the final rename fails after the bytes were written to the temporary file
    with pytest.raises(EdgeresError, match=r"blocked\.engine: not written"):
        write_engine(blocked, b"second", record)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.engine", "good.engine", "good.engine.json", "m.onnx"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"version_compatible": "yes"}, r"options\.version_compatible is 'yes', not true or false"),
        ({"input": 5}, r"options\.input is 5, not an object"),
        ({"input": {"kind": "rgb_float", "name": "input", "shape": "batch"}}, r"options\.input\.shape is 'batch'"),
        ({"profile": {"tensor": "input", "min": [1], "opt": [1], "max": ["8"]}}, r"options\.profile\.max is \['8'\]"),
        ({"hardware_compatibility": "turing"}, r"options\.hardware_compatibility is 'turing', not one of none"),
        ({"target": {**ORIN.to_json(), "tensorrt_version": 10}}, r"options\.target\.tensorrt_version is 10"),
        ({"batch": {"min": 4, "opt": 2, "max": 1}}, r"options: batch profile 4:2:1: need 1 <= min"),
    ],
)
def test_engine_sidecar_with_a_value_of_the_wrong_type_is_refused_in_one_line(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    """The real reader, on a real sidecar file: the message names the file and the field."""
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"engine bytes")
    write_sidecar(engine, "engine", {}, options)
    with pytest.raises(UserInputError, match=message) as info:
        read_engine_record(engine)
    assert str(info.value).startswith(str(sidecar_path(engine))) and "\n" not in str(info.value)


def test_a_sidecar_of_another_stage_is_not_read_as_an_engines(tmp_path: Path) -> None:
    onnx_path = write_onnx(tmp_path / "m.onnx")
    write_sidecar(onnx_path, "export", {}, {"num_classes": 4})
    with pytest.raises(UserInputError, match=r"m\.onnx\.json: a sidecar of stage 'export', not 'engine'"):
        read_engine_record(onnx_path)


# --- refusing an engine built elsewhere ---------------------------------------------------------------


def engine_sidecar(target: EngineTarget, **options: Any) -> EngineRecord:
    return record_of({"options": {"target": target.to_json(), **options}})


def record_of(data: dict[str, Any]) -> EngineRecord:
    return EngineRecord.of(Sidecar(Path("m.engine.json"), {"stage": "engine", **data}))


def test_same_version_and_gpu_is_accepted() -> None:
    check_engine_target(Path("m.engine"), engine_sidecar(ORIN), ORIN)


@pytest.mark.parametrize(
    ("built", "running", "options", "message"),
    [
        (ORIN, EngineTarget("10.3.1", "Orin", "8.7"), {}, "built with TensorRT 10.3.0, this is TensorRT 10.3.1"),
        (ORIN, EngineTarget("10.3.0", "NVIDIA H100", "9.0"), {}, "built for Orin \\(compute capability 8.7\\)"),
        (ORIN, EngineTarget("11.0.0", "Orin", "8.7"), {"version_compatible": True}, "needs TensorRT 10.x"),
        (EngineTarget("10.8.0", "Orin", "8.7"), ORIN, {"version_compatible": True}, "at or above it"),
        (ORIN, EngineTarget("10.3.0", "Tesla T4", "7.5"), {"hardware_compatibility": "ampere-plus"}, "< 8.0"),
    ],
)
def test_mismatches_are_refused_naming_both_sides(
    built: EngineTarget, running: EngineTarget, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(EngineMismatchError, match=message) as info:
        check_engine_target(Path("m.engine"), engine_sidecar(built, **options), running)
    assert "rebuild it here" in str(info.value) and "\n" not in str(info.value)


def test_compatibility_options_widen_what_is_accepted() -> None:
    check_engine_target(
        Path("m.engine"), engine_sidecar(ORIN, version_compatible=True), EngineTarget("10.9.0", "Orin", "8.7")
    )
    check_engine_target(
        Path("m.engine"),
        engine_sidecar(ORIN, hardware_compatibility="ampere-plus"),
        EngineTarget("10.3.0", "NVIDIA H100", "9.0"),
    )


def test_same_capability_other_gpu_warns() -> None:
    with pytest.warns(UserWarning, match="built on Orin, running on Jetson AGX Orin"):
        check_engine_target(Path("m.engine"), engine_sidecar(ORIN), EngineTarget("10.3.0", "Jetson AGX Orin", "8.7"))


def test_sidecar_without_target_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"no options\.target"):
        check_engine_target(Path("m.engine"), record_of({"options": {}}), ORIN)
    with pytest.raises(UserInputError, match=r"m\.engine\.json: options\.target lacks gpu_name"):
        record_of({"options": {"target": {"tensorrt_version": "10.3.0"}}})


# --- network flags and the timing cache, against stand-ins for the TensorRT enums and config -----------


class Creation10(enum.IntEnum):  # TensorRT 10.x NetworkDefinitionCreationFlag values (typings/ stubs)
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class Creation8(enum.IntEnum):  # TensorRT 8.x: no STRONGLY_TYPED
    EXPLICIT_BATCH = 0


class Builder10(enum.IntEnum):  # TensorRT 10.x BuilderFlag values (typings/ stubs)
    FP16 = 0
    INT8 = 1


class Builder11(enum.IntEnum):  # TensorRT 11: FP16/INT8 removed
    GPU_FALLBACK = 3


def stand_in(creation: type[enum.IntEnum], builder: type[enum.IntEnum]) -> Any:
    return types.SimpleNamespace(NetworkDefinitionCreationFlag=creation, BuilderFlag=builder)


def test_without_strongly_typed_the_precision_flags_are_set_and_recorded() -> None:
    old_api = stand_in(Creation8, Builder10)
    assert network_flags(Precision.FP32, trt=old_api) == (1, [], False)  # weakly typed even with no flags
    assert network_flags(Precision.FP16, trt=old_api) == (1, [Builder10.FP16], False)
    assert network_flags(Precision.INT8, trt=old_api) == (1, [Builder10.INT8, Builder10.FP16], False)


def test_strongly_typed_where_the_api_has_it_except_dla_on_10x() -> None:
    for precision in Precision:
        assert network_flags(precision, trt=stand_in(Creation10, Builder10)) == (2, [], True)
        # TensorRT 11 keeps STRONGLY_TYPED (ignored) and has no precision flags: DLA is strongly typed too
        assert network_flags(precision, dla=True, trt=stand_in(Creation10, Builder11)) == (2, [], True)
    # TensorRT 10.x DLA: the documented precision flags on a weakly typed network
    assert network_flags(Precision.INT8, dla=True, trt=stand_in(Creation10, Builder10)) == (
        1,
        [Builder10.INT8, Builder10.FP16],
        False,
    )


class StandInConfig:
    """Records what the builder config was given; `accepts` is what set_timing_cache returns."""

    def __init__(self, accepts: bool) -> None:
        self.accepts = accepts
        self.loaded: bytes | None = None

    def create_timing_cache(self, data: bytes) -> bytes:
        self.loaded = data
        return data

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> bool:
        assert ignore_mismatch is False
        return self.accepts


def test_rejected_timing_cache_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"cache from another GPU")
    with pytest.raises(UserInputError, match=r"timing\.cache: TensorRT rejected this timing cache"):
        _attach_timing_cache(StandInConfig(accepts=False), cache)  # type: ignore[arg-type]
    assert cache.read_bytes() == b"cache from another GPU"
    config = StandInConfig(accepts=True)
    _attach_timing_cache(config, tmp_path / "new.cache")  # type: ignore[arg-type]
    assert config.loaded == b""  # a missing cache starts empty
    assert not (tmp_path / "new.cache").exists()  # written only after a successful build


# --- the library calls ----------------------------------------------------------------------------------


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed: tests/gpu exercises the real build")
def test_build_without_tensorrt_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        build_engine(write_onnx(tmp_path / "m.onnx"), tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


def test_build_refuses_a_missing_onnx_before_touching_tensorrt(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="ONNX file not found"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "m.engine")


def test_fp16_scales_are_refused_before_tensorrt_10(tmp_path: Path) -> None:
    """TensorRT 8.6 takes float32 Q/DQ scales only: an FP16-remainder model is refused by name, before the build."""
    from edgeres.engine.builder import check_scale_types
    from edgeres.quantize.qdq import plan_qdq
    from edgeres.quantize.tensorrt_qdq import HighPrecision, tensorrt_qdq_model
    from tests.fixtures.tiny_classifier import tiny_classifier_proto

    model = tiny_classifier_proto(5)
    plan = plan_qdq(model)
    ranges = {t: 2.0 for t in plan.activations + plan.cpu_extra}
    for name, remainder in (("fp16.onnx", HighPrecision.FP16), ("fp32.onnx", HighPrecision.FP32)):
        onnx.save(tensorrt_qdq_model(model, plan, ranges, remainder), tmp_path / name)
    refusal = r"float16 .*TensorRT 8\.6\.1 takes float32 scales only.*--high-precision fp32"
    with pytest.raises(UserInputError, match=refusal):
        check_scale_types(tmp_path / "fp16.onnx", "8.6.1")
    check_scale_types(tmp_path / "fp16.onnx", "10.3.0")
    check_scale_types(tmp_path / "fp32.onnx", "8.6.1")
