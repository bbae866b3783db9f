"""Real TensorRT: build FP16 and INT8 engines from the ONNX artifacts, run them, compare with onnxruntime.

Run on a machine with TensorRT and a GPU:  .venv/bin/python -m pytest tests/gpu -v
These engines are built with the builder alone (no held-out set), so they are opened as unverified ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.sidecar import write_sidecar
from edgeres.engine.builder import build_engine
from edgeres.engine.options import BatchProfile, EngineOptions
from edgeres.engine.target import EngineMismatchError
from edgeres.runtime.inputs import read_input
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.runtime.topk import top_k
from edgeres.runtime.trt_runner import TensorRTRunner
from tests.runtime.test_runtime import FRAME_H, FRAME_W, small_classifier

MIN_SQNR_DB = {"fp16": 40.0, "int8": 20.0}


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    noise = candidate.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / max(np.sum(noise**2), 1e-30)))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, real_images: dict[str, np.ndarray]) -> dict[str, Path]:
    """Fused FP32 model, FP16 model, TensorRT Q/DQ (S8S8) INT8 model, raw YUYV frames of real photographs."""
    from edgeres.frames.contract import InputContract
    from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
    from edgeres.frontend.graph import attach_frontend
    from edgeres.quantize.calibrate import collect_ranges
    from edgeres.quantize.fp16 import to_fp16
    from edgeres.quantize.histogram import CalibAlgo
    from edgeres.quantize.qdq import insert_qdq, plan_qdq

    folder = tmp_path_factory.mktemp("gpu")
    contract = InputContract(YuvLayout.YUYV, FRAME_W, FRAME_H)
    frames = rgb_to_yuv422(np.stack([im[:FRAME_H, :FRAME_W] for im in real_images.values()]), YuvLayout.YUYV)
    write_yuv(folder / "frames.yuyv", frames, YuvLayout.YUYV)
    fused = attach_frontend(small_classifier(), contract)
    paths = {"fp32": folder / "fused.onnx", "fp16": folder / "fused_fp16.onnx", "int8": folder / "fused_int8.onnx"}
    onnx.save(fused, str(paths["fp32"]))
    write_sidecar(paths["fp32"], "export", {}, {"precision": "fp32", "input": contract.to_dict()})
    plan = plan_qdq(fused)
    ranges = collect_ranges(paths["fp32"], [frames], CalibAlgo.MAX, list(plan.activations))
    source: dict[str, str | None] = {"onnx": str(paths["fp32"]), "onnx_sha256": sha256_file(paths["fp32"])}
    for name, model in (("fp16", to_fp16(fused)), ("int8", insert_qdq(fused, plan, ranges))):
        onnx.save(model, str(paths[name]))
        write_sidecar(paths[name], "quantize", source, {"precision": name})
    return {**paths, "frames": folder / "frames.yuyv"}


@pytest.mark.parametrize("precision", ["fp16", "int8"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_engine_matches_onnxruntime(
    artifacts: dict[str, Path], precision: str, cuda_graph: bool, tmp_path: Path
) -> None:
    engine = tmp_path / f"{precision}.engine"
    timing = tmp_path / "timing.cache"
    options = EngineOptions(batch=BatchProfile(1, 2, 4), timing_cache=timing)
    sidecar = build_engine(artifacts[precision], engine, options)
    assert timing.stat().st_size > 0
    assert sidecar.options["input"]["kind"] == "yuv422" and sidecar.precision == precision
    frames = read_input(engine, artifacts["frames"])
    with OnnxRuntimeRunner(artifacts["fp32"], providers=["CPUExecutionProvider"]) as reference:
        expected = reference.infer(frames)
    with TensorRTRunner(engine, cuda_graph=cuda_graph, allow_unverified=True) as runner:
        got = np.concatenate([runner.infer(frames[:1]), runner.infer(frames[1:])])  # batch 1 then 3
        again = runner.infer(frames[1:])  # replay (graph) / same shape
    np.testing.assert_array_equal(again, got[1:])
    score = sqnr_db(expected, got)
    agreement = float(np.mean(top_k(expected, 1).indices[:, 0] == top_k(got, 1).indices[:, 0]))
    print(f"{precision} graph={cuda_graph}: SQNR {score:.1f} dB, top-1 agreement {agreement:.0%}")
    assert score >= MIN_SQNR_DB[precision] and agreement == 1.0


def test_engine_from_another_tensorrt_is_refused(artifacts: dict[str, Path], tmp_path: Path) -> None:
    engine = tmp_path / "fp16.engine"
    build_engine(artifacts["fp16"], engine)
    sidecar_path = engine.with_name(engine.name + ".json")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["options"]["target"]["tensorrt_version"] = "0.0.1"
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(EngineMismatchError, match="this is TensorRT"):
        TensorRTRunner(engine, allow_unverified=True).load()


def test_batch_outside_the_profile_is_refused(artifacts: dict[str, Path], tmp_path: Path) -> None:
    from edgeres.errors import UserInputError

    engine = tmp_path / "fp16.engine"
    build_engine(artifacts["fp16"], engine, EngineOptions(batch=BatchProfile(1, 1, 2)))
    frames = read_input(engine, artifacts["frames"])
    with TensorRTRunner(engine, allow_unverified=True) as runner, pytest.raises(UserInputError, match=r"takes 1\.\.2"):
        runner.infer(frames[:3])


def test_cuda_graph_follows_shape_changes_a_b_a(artifacts: dict[str, Path], tmp_path: Path) -> None:
    """Batch 1 -> 3 -> 1 with graph replay: the second batch-1 call must not replay a stale capture."""
    engine = tmp_path / "fp16.engine"
    build_engine(artifacts["fp16"], engine, EngineOptions(batch=BatchProfile(1, 2, 4)))
    frames = read_input(engine, artifacts["frames"])
    with TensorRTRunner(engine, allow_unverified=True) as plain:
        expected = [plain.infer(frames[:1]), plain.infer(frames[1:]), plain.infer(frames[3:])]
    with TensorRTRunner(engine, cuda_graph=True, allow_unverified=True) as runner:
        got = [runner.infer(frames[:1]), runner.infer(frames[1:]), runner.infer(frames[3:])]
        replayed = runner.infer(frames[3:])  # same shape again: a replay of the fresh capture
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)
    np.testing.assert_array_equal(replayed, expected[2])


def test_failed_load_releases_the_runtime_and_event_timer_destroys_once(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    """An engine that passes the sidecar checks but cannot be deserialized: the runtime made for it is
    released by the failed load; EventTimer.destroy twice is harmless."""
    from edgeres.artifacts.sidecar import read_sidecar
    from edgeres.engine.cuda import EventTimer
    from edgeres.errors import UserInputError

    engine = tmp_path / "fp16.engine"
    sidecar = build_engine(artifacts["fp16"], engine)
    data = engine.read_bytes()
    engine.write_bytes(data[: len(data) // 2])  # truncated: TensorRT's size check refuses it
    write_sidecar(engine, "engine", sidecar.inputs, sidecar.options)  # a sidecar true to the broken file
    assert read_sidecar(engine) is not None
    runner = TensorRTRunner(engine, allow_unverified=True)
    with pytest.raises(UserInputError, match="could not deserialize"):
        runner.load()
    assert runner._runtime is None and runner._engine is None and runner._stream is None and runner._buffers == []
    timer = EventTimer()
    timer.destroy()
    timer.destroy()
