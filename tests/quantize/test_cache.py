"""Calibration cache: reuse on an identical key, refusal naming what changed, TensorRT table format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from skimage import data as skdata

from edgeres.errors import UserInputError
from edgeres.quantize.cache import (
    CACHE_SCHEMA,
    CalibCache,
    StaleCacheError,
    cache_key,
    load_matching,
    read_cache,
    read_trt_table,
    scale_hex,
    trt_version_number,
    write_cache,
    write_trt_table,
)
from edgeres.quantize.calibrate import collect_ranges
from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from tests.quantize.test_calibrate import tiny_residual_model


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny residual model and a folder of two real photographs."""
    model = tiny_residual_model(tmp_path / "tiny.onnx")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, load in (("chelsea", skdata.chelsea), ("coffee", skdata.coffee)):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(cv2.resize(load(), (48, 32)), cv2.COLOR_RGB2BGR))
    return model, folder


def calibrate(model: Path, folder: Path, algo: CalibAlgo, calib_size: int = 4) -> tuple[CalibCache, CalibrationSet]:
    calib = CalibrationSet(folder, encoder_for(model), calib_size=calib_size)
    key = cache_key(model, calib.fingerprint(), algo)
    ranges = collect_ranges(model, calib.batches(2), algo)
    return CalibCache(key, ranges, calib.summary.samples), calib


def test_cache_round_trip_and_reuse(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, folder = setup
    cache, _ = calibrate(model, folder, CalibAlgo.ENTROPY)
    path = tmp_path / "calib.json"
    write_cache(path, cache)
    again, _ = calibrate(model, folder, CalibAlgo.ENTROPY)
    reused = load_matching(path, again.key)
    assert reused is not None and reused.ranges == cache.ranges and reused.samples == 4
    stored = json.loads(path.read_text())["tensors"]
    for name, amax in cache.ranges.items():
        assert stored[name]["scale"] == pytest.approx(amax / 127)


def test_missing_cache_is_not_an_error(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, folder = setup
    cache, _ = calibrate(model, folder, CalibAlgo.MAX)
    assert load_matching(tmp_path / "none.json", cache.key) is None


def changed_model(model: Path) -> None:
    proto = onnx.load(str(model))
    weight = proto.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(proto, str(model))


def test_stale_cache_refusal_names_each_changed_field(setup: tuple[Path, Path], tmp_path: Path) -> None:
    model, folder = setup
    cache, calib = calibrate(model, folder, CalibAlgo.PERCENTILE)
    path = tmp_path / "calib.json"
    write_cache(path, cache)
    fingerprint = calib.fingerprint()
    variants = {
        "algorithm": cache_key(model, fingerprint, CalibAlgo.MSE),
        "algorithm options": cache_key(model, fingerprint, CalibAlgo.PERCENTILE, CalibOptions(percentile=99.9)),
        "tensor selection": cache_key(model, fingerprint, CalibAlgo.PERCENTILE, tensors=["r1"]),
        "edgeres version": replace(cache.key, tool_version="0.0.0"),
    }
    cv2.imwrite(str(folder / "coffee.png"), cv2.cvtColor(cv2.resize(skdata.rocket(), (48, 32)), cv2.COLOR_RGB2BGR))
    variants["calibration data"] = cache_key(
        model, CalibrationSet(folder, encoder_for(model), 4).fingerprint(), CalibAlgo.PERCENTILE
    )
    changed_model(model)
    variants["model"] = cache_key(model, fingerprint, CalibAlgo.PERCENTILE)
    for field, key in variants.items():
        with pytest.raises(StaleCacheError, match=rf"changed: {field} \(") as info:
            load_matching(path, key)
        assert str(info.value).count(" -> ") == 1  # only that one field
    with pytest.raises(UserInputError, match=r"changed: model \(.*\), calibration data \("):
        load_matching(path, replace(variants["model"], data_sha256=variants["calibration data"].data_sha256))


def test_malformed_cache_files_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "calib.json"
    path.write_text("{not json")
    with pytest.raises(UserInputError, match="not a valid edgeres calibration cache"):
        read_cache(path)
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(UserInputError, match="schema 99"):
        read_cache(path)
    path.write_text(json.dumps({"schema": CACHE_SCHEMA, "key": {"model_sha256": "x"}, "tensors": {}, "samples": 1}))
    with pytest.raises(UserInputError, match="not a valid"):
        read_cache(path)


def test_trt_table_format(tmp_path: Path) -> None:
    ranges = {"input": 2.64, "/layer1/relu/Relu_output_0": 127.0, "tiny": 1e-3}
    path = tmp_path / "calib.table"
    write_trt_table(path, ranges, trt_version="8.6.1")
    lines = path.read_text().splitlines()
    assert lines[0] == "TRT-8601-EntropyCalibration2"
    assert lines[2] == "/layer1/relu/Relu_output_0: 3f800000"  # amax 127 -> scale 1.0
    expected = np.array([2.64 / 127], dtype=np.float32).view(np.uint32)[0]
    assert lines[1] == f"input: {expected:08x}"
    header, scales = read_trt_table(path)
    assert header == lines[0]
    for name, amax in ranges.items():
        assert scales[name] == pytest.approx(amax / 127, rel=1e-7)


def test_trt_table_reads_a_table_written_by_tensorrt() -> None:
    """Lines as TensorRT 7.2 wrote them for MNIST (input scale ~ 1/127 for data in [0, 1])."""
    assert scale_hex(1.0) == "3c010204"
    assert trt_version_number("7.2.2") == 7202 and trt_version_number("8.6.2") == 8602
    # TensorRT 10 changed the rule (NV_TENSORRT_VERSION_INT: major*10000 + minor*100 + patch)
    assert trt_version_number("10.3") == 100300 and trt_version_number("10.16.1") == 101601


def test_trt_table_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="cannot be written"):
        write_trt_table(tmp_path / "t.table", {"a: b": 1.0})
    with pytest.raises(UserInputError, match="MAJOR"):
        trt_version_number("eight")
    (tmp_path / "bad.table").write_text("hello\n")
    with pytest.raises(UserInputError, match="no TRT"):
        read_trt_table(tmp_path / "bad.table")
