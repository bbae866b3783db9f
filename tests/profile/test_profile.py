"""Profiling on ONNX Runtime CPU with tiny models built here: timing, layers, memory, end to end, CLI errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from edgeres.artifacts.kinds import ArtifactKind, ArtifactRole, artifact_kind
from edgeres.artifacts.tensors import TensorSpec
from edgeres.cli.app import app
from edgeres.errors import EdgeresError, UserInputError
from edgeres.frames.contract import FrameFormat, InputContract
from edgeres.frames.yuv import YuvLayout, rgb_to_yuv422, write_yuv
from edgeres.profile import artifact_profiler
from edgeres.profile.artifact_profiler import BackendReadings, artifact_precision
from edgeres.profile.dispatch import profile_artifacts
from edgeres.profile.layers import aggregate_onnxruntime_events, tensorrt_layer_profile
from edgeres.profile.memory import FrameBytes, onnx_weights_bytes
from edgeres.profile.onnx_profiler import OnnxRuntimeProfiler
from edgeres.profile.options import FrameClip, ProfileOptions, parse_batches
from edgeres.profile.quick import quick_profile, quick_profiles
from edgeres.profile.results import BatchResult, PipelineMode
from edgeres.profile.trt_profiler import ProfilingTensorRTRunner
from edgeres.runtime.ort_runner import OnnxRuntimeRunner
from edgeres.timing import RunLength
from tests.conftest import real_image

CLASSES = 10
SIZE = 32
CHANNELS = 8
FAST = ProfileOptions(batches=(1, 4), run_length=RunLength(iterations=6), warmup=1, layer_runs=3)


def write_tiny_classifier(
    path: Path, batch: int | str = "batch", seed: int = 0, weight_type: int = TensorProto.FLOAT
) -> int:
    """conv3x3 -> relu -> global pool -> flatten -> gemm on [batch, 3, 32, 32]; returns its weight bytes.

    With `weight_type` INT8 the convolution weight is stored as int8 behind a DequantizeLinear, as
    explicit-quantization (Q/DQ) models store it.
    """
    rng = np.random.default_rng(seed)
    conv_w = rng.standard_normal((CHANNELS, 3, 3, 3)).astype(np.float32)
    fc_w = rng.standard_normal((CLASSES, CHANNELS)).astype(np.float32)
    fc_b = rng.standard_normal(CLASSES).astype(np.float32)
    nodes = []
    inits = [numpy_helper.from_array(fc_w, "fc_w"), numpy_helper.from_array(fc_b, "fc_b")]
    if weight_type == TensorProto.INT8:
        q = np.clip(np.rint(conv_w / 0.02), -127, 127).astype(np.int8)
        inits += [numpy_helper.from_array(q, "conv_wq"), numpy_helper.from_array(np.float32(0.02), "conv_scale")]
        inits += [numpy_helper.from_array(np.int8(0), "conv_zero")]
        nodes.append(
            helper.make_node("DequantizeLinear", ["conv_wq", "conv_scale", "conv_zero"], ["conv_w"], name="dq")
        )
    else:
        inits.append(numpy_helper.from_array(conv_w, "conv_w"))
    nodes += [
        helper.make_node("Conv", ["input", "conv_w"], ["conv"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return sum(numpy_helper.to_array(t).nbytes for t in inits)


@pytest.fixture()
def tiny_onnx(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    write_tiny_classifier(path)
    return path


@pytest.mark.parametrize(
    ("text", "expected"), [("1", (1,)), ("1,8,32", (1, 8, 32)), (" 8, 1 ", (8, 1)), ("4096", (4096,))]
)
def test_parse_batches(text: str, expected: tuple[int, ...]) -> None:
    assert parse_batches(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "separated by commas"),
        ("1,,8", "separated by commas"),
        ("one", "'one' is not a whole number"),
        ("1.5", "'1.5' is not a whole number"),
        ("-1", "'-1' is not a whole number"),
        ("0", "0 is outside 1..4096"),
        ("8,8", "8 is listed twice"),
        ("1,99999", "99999 is outside"),
    ],
)
def test_nonsense_batch_lists_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        parse_batches(text)


def test_artifact_kind(tmp_path: Path, tiny_onnx: Path) -> None:
    assert artifact_kind(tiny_onnx) is ArtifactKind.ONNX
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"\0")
    assert artifact_kind(plan) is ArtifactKind.TENSORRT
    with pytest.raises(UserInputError, match=r"missing\.onnx: file not found"):
        artifact_kind(tmp_path / "missing.onnx")
    weights = tmp_path / "model.pth"
    weights.write_bytes(b"\0")
    with pytest.raises(
        UserInputError, match=r"model\.pth: a '\.pth' file is neither an ONNX model nor a TensorRT engine"
    ):
        artifact_kind(weights)


def test_run_length_needs_exactly_one_bound() -> None:
    with pytest.raises(UserInputError, match="not both"):
        RunLength(iterations=5, seconds=1.0)
    with pytest.raises(UserInputError, match="not both"):
        RunLength(iterations=None, seconds=None)
    with pytest.raises(UserInputError, match="at least 1"):
        RunLength(iterations=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: parse_batches("1,x"), "batch sizes '1,x': 'x' is not a whole number"),
        (lambda: RunLength(iterations=0), "iterations 0: must be at least 1"),
        (lambda: RunLength(iterations=None, seconds=0.0), "duration 0.0 s: must be more than 0"),
        (lambda: ProfileOptions(warmup=-1), "warm-up calls -1: must be 0 or more"),
        (lambda: ProfileOptions(threads=-2), "threads -2: must be 0"),
        (lambda: ProfileOptions(in_flight=0), "in-flight requests 0: must be at least 1"),
        (lambda: ProfileOptions(cv_warn=0.0), "CV warning threshold 0.0: must be more than 0"),
    ],
)
def test_option_errors_name_the_value_not_a_flag(make: Callable[[], object], message: str) -> None:
    with pytest.raises(UserInputError) as caught:
        make()
    assert str(caught.value).startswith(message) and "--" not in str(caught.value)


def test_profile_tiny_model_end_to_end_numbers(tiny_onnx: Path) -> None:
    (profile,) = profile_artifacts([tiny_onnx], FAST)
    assert profile.kind is ArtifactKind.ONNX and profile.backend == "onnxruntime CPU"
    assert [b.batch for b in profile.batches] == [1, 4]
    for result in profile.batches:
        assert result.sync.count == len(result.samples_ms) == 6
        assert result.sync.min_ms <= result.sync.median_ms <= result.sync.p99_ms <= result.sync.max_ms
        # frames/s of the synchronous loop is frames over the summed per-call time
        assert result.sync_fps == pytest.approx(result.batch * 6 / (sum(result.samples_ms) / 1e3))
        assert result.pipelined_fps > 0 and result.pipeline_mode is PipelineMode.THREADS
        assert result.stages is None and result.graph is None  # TensorRT only
    layers = profile.layers
    assert layers is not None and layers.runs == 3 and layers.batch == 1
    assert len(layers.top) == layers.layer_count  # fewer than 20 layers: all of them shown
    assert sum(t.share for t in layers.top) == pytest.approx(1.0)
    assert [t.mean_ms for t in layers.top] == sorted((t.mean_ms for t in layers.top), reverse=True)
    assert "Gemm" in {t.op_type for t in layers.top}
    memory = profile.memory
    assert memory.artifact_bytes == tiny_onnx.stat().st_size
    # the arena held at least the largest activation: the conv output [1, 8, 32, 32] float32
    assert memory.activation_bytes is not None and memory.activation_bytes >= CHANNELS * SIZE * SIZE * 4
    assert memory.host_peak_rss_bytes > 0
    assert memory.gpu_peak_bytes is None and "not measured" in memory.gpu_source
    assert memory.frame == FrameBytes(SIZE, SIZE, SIZE * SIZE * 2, SIZE * SIZE * 3, 3 * SIZE * SIZE * 4)


def test_profile_steps_keep_their_order(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime: host peak RSS is read after the timed runner closed, before the separate per-layer pass."""
    steps: list[str] = []

    class RecordingRunner(OnnxRuntimeRunner):
        def close(self) -> None:
            steps.append("close")
            super().close()

    class RecordingProfiler(OnnxRuntimeProfiler):
        def _open_runner(self) -> OnnxRuntimeRunner:
            steps.append("open")
            return RecordingRunner(self.path, threads=self.options.threads)

        def _measure_batch(self, runner: OnnxRuntimeRunner, batch_input: np.ndarray) -> BatchResult:
            steps.append(f"batch {len(batch_input)}")
            return super()._measure_batch(runner, batch_input)

        def _read_loaded(self, runner: OnnxRuntimeRunner) -> BackendReadings:
            steps.append("read loaded")
            return super()._read_loaded(runner)

        def _read_closed(self, readings: BackendReadings, spec: TensorSpec) -> BackendReadings:
            steps.append("read closed")
            return super()._read_closed(readings, spec)

    real_peak = artifact_profiler.peak_rss_bytes

    def recorded_peak() -> int:
        steps.append("peak RSS")
        return real_peak()

    monkeypatch.setattr(artifact_profiler, "peak_rss_bytes", recorded_peak)
    profile = RecordingProfiler(tiny_onnx, FAST).profile()
    assert steps == ["open", "batch 1", "batch 4", "read loaded", "close", "peak RSS", "read closed"]
    assert profile.layers is not None and profile.memory.activation_bytes is not None
    assert profile.memory.weights_source == "ONNX initializers and constants at their stored element type"


def test_peak_rss_that_could_not_be_reset_is_said(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifact_profiler, "reset_peak_rss", lambda: False)
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=2), warmup=0, layers=False)
    (profile,) = profile_artifacts([tiny_onnx], options)
    assert profile.memory.host_rss_source == "VmHWM of this process during load and timing (not reset)"
    assert any("peak RSS could not be reset" in w for w in profile.warnings)


def test_tensorrt_runner_view_needs_a_loaded_runner(tmp_path: Path) -> None:
    """The profiling runner reads the engine only through `bindings` and `enqueue()`, which refuse a new runner."""
    runner = ProfilingTensorRTRunner(tmp_path / "model.engine")
    with pytest.raises(EdgeresError, match=r"load\(\) the runner before asking for its bindings"):
        _ = runner.bindings
    with pytest.raises(EdgeresError, match=r"enqueue\(\) needs a loaded runner, this one is new"):
        runner.enqueue()
    with pytest.raises(EdgeresError, match="bindings"):
        _ = runner.device_memory_bytes


def test_weights_bytes_count_stored_element_types(tmp_path: Path) -> None:
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    fp32_bytes = write_tiny_classifier(fp32)
    int8_bytes = write_tiny_classifier(int8, weight_type=TensorProto.INT8)
    assert onnx_weights_bytes(fp32) == fp32_bytes == (CHANNELS * 27 + CLASSES * CHANNELS + CLASSES) * 4
    # int8 conv weight (1 byte each) + float32 scale + int8 zero point; the classifier stays float32
    assert onnx_weights_bytes(int8) == int8_bytes == CHANNELS * 27 + 4 + 1 + (CLASSES * CHANNELS + CLASSES) * 4


def test_duration_mode_runs_until_the_budget(tiny_onnx: Path) -> None:
    options = ProfileOptions(batches=(2,), run_length=RunLength(iterations=None, seconds=0.2), warmup=0, layers=False)
    (profile,) = profile_artifacts([tiny_onnx], options)
    result = profile.batches[0]
    assert result.sync.count >= 2
    assert sum(result.samples_ms) >= 150  # nearly all of the 0.2 s was spent in timed calls
    assert profile.layers is None and profile.memory.activation_bytes is None


def test_fixed_batch_model_refuses_other_batches(tmp_path: Path) -> None:
    path = tmp_path / "fixed.onnx"
    write_tiny_classifier(path, batch=1)
    with pytest.raises(UserInputError, match="takes batch 1 only, so batch size 8 cannot run"):
        profile_artifacts([path], ProfileOptions(batches=(8,), run_length=RunLength(iterations=2), layers=False))


def test_every_path_is_checked_before_any_run(tmp_path: Path, tiny_onnx: Path) -> None:
    with pytest.raises(UserInputError, match=r"nope\.onnx: file not found"):
        profile_artifacts([tiny_onnx, tmp_path / "nope.onnx"], FAST)


def test_end_to_end_from_a_real_yuv_clip(tmp_path: Path, tiny_onnx: Path) -> None:
    from edgeres.frames.images import center_crop_resize
    from edgeres.frames.normalization import IMAGENET_RGB
    from edgeres.frames.yuv import yuv422_to_rgb
    from edgeres.runtime.ort_runner import OnnxRuntimeRunner

    frames = [rgb_to_yuv422(real_image(name)[:300, :400].copy(), YuvLayout.UYVY) for name in ("chelsea", "coffee")]
    clip_path = tmp_path / "clip.yuv"
    write_yuv(clip_path, np.stack(frames), YuvLayout.UYVY)
    clip = FrameClip(clip_path, FrameFormat(YuvLayout.UYVY, 400, 300))
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=5), warmup=1, layers=False, clip=clip)
    (profile,) = profile_artifacts([tiny_onnx], options)
    e2e = profile.end_to_end
    assert e2e is not None and e2e.frames == 5
    assert e2e.total.median_ms >= e2e.infer.median_ms and e2e.preprocess.median_ms > 0
    assert profile.memory.frame == FrameBytes(400, 300, 400 * 300 * 2, 400 * 300 * 3, 3 * SIZE * SIZE * 4)
    with OnnxRuntimeRunner(tiny_onnx) as runner:
        rgb = yuv422_to_rgb(frames[0], YuvLayout.UYVY)
        expected = int(runner.infer(IMAGENET_RGB.apply(center_crop_resize(rgb, SIZE))[None]).argmax())
    assert e2e.top1_first_frame == expected


def test_clip_of_the_wrong_size_is_refused(tmp_path: Path, tiny_onnx: Path) -> None:
    clip_path = tmp_path / "clip.yuv"
    clip_path.write_bytes(b"\0" * 1000)
    clip = FrameClip(clip_path, FrameFormat.parse("yuyv:64x48"))
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=2), layers=False, clip=clip)
    with pytest.raises(UserInputError, match="not a whole number of yuyv 64x48 frames"):
        profile_artifacts([tiny_onnx], options)


def test_onnxruntime_event_aggregation_skips_warmup_and_averages() -> None:
    def node(name: str, op: str, us: int, peak: int) -> dict[str, object]:
        args = {"op_name": op, "mem_in_use_peak": str(peak), "mem_arena_held": "4096"}
        return {"cat": "Node", "name": f"{name}_kernel_time", "dur": us, "args": args}

    run_end = {"cat": "Session", "name": "model_run", "dur": 0}
    events = [node("conv", "Conv", 9000, 100), node("fc", "Gemm", 9000, 100), run_end]  # warm-up run
    events += [node("conv", "Conv", 3000, 200), node("fc", "Gemm", 1000, 300), run_end]
    events += [node("conv", "Conv", 5000, 200), node("fc", "Gemm", 1000, 300), run_end]
    profile = aggregate_onnxruntime_events(events, skip_runs=1, batch=2)
    assert profile.runs == 2 and profile.layer_count == 2
    assert [(t.name, t.op_type) for t in profile.top] == [("conv", "Conv"), ("fc", "Gemm")]
    assert profile.top[0].mean_ms == pytest.approx(4.0) and profile.top[1].mean_ms == pytest.approx(1.0)
    assert profile.total_ms == pytest.approx(5.0) and profile.top[0].share == pytest.approx(0.8)
    assert profile.arena_peak_bytes == 300 and profile.arena_held_bytes == 4096


def test_tensorrt_layer_sums_are_ranked_like_onnxruntime() -> None:
    totals = {f"layer{i}": float(i) for i in range(30)}  # 30 layers, summed over 2 runs
    profile = tensorrt_layer_profile(totals, runs=2, batch=8)
    assert len(profile.top) == 20 and profile.layer_count == 30
    assert profile.top[0].name == "layer29" and profile.top[0].mean_ms == pytest.approx(14.5)
    assert profile.total_ms == pytest.approx(sum(range(30)) / 2)


def test_quick_profile_for_build(tiny_onnx: Path) -> None:
    summary = quick_profile(tiny_onnx, iterations=3)
    text = summary.describe()
    assert text.startswith("tiny.onnx on onnxruntime CPU: batch 1 median ")
    assert summary.profile.layers is None and summary.profile.batches[0].sync.count == 3


def write_tiny_frame_model(path: Path, contract: InputContract) -> None:
    """Raw uint8 frames [batch, *frame_shape] -> the mean of each row as logits, as a fused camera model takes them."""
    rows, _ = contract.frame_shape
    nodes = [
        helper.make_node("Cast", ["frame"], ["pixels"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("ReduceMean", ["pixels"], ["logits"], axes=[2], keepdims=0, name="row_mean"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_frames",
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, ["batch", *contract.frame_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", rows])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_quick_profiles_of_a_frame_model(tmp_path: Path) -> None:
    """A frame-input model is given a one-frame clip (the profiler takes its size from there), then compared."""
    contract = InputContract(YuvLayout.UYVY, 16, 8)
    paths = {ArtifactRole.FP32: tmp_path / "fp32.onnx", ArtifactRole.INT8_ONNXRUNTIME: tmp_path / "twin.onnx"}
    for path in paths.values():
        write_tiny_frame_model(path, contract)
    summary = quick_profile(paths[ArtifactRole.FP32], iterations=3, contract=contract)
    assert summary.profile.end_to_end is not None and summary.profile.batches[0].sync.count == 3
    assert summary.profile.memory.frame.width == 16
    quick = quick_profiles(paths, [ArtifactRole.FP32, ArtifactRole.INT8_ONNXRUNTIME], 3, contract)
    lines = quick.lines
    assert [len(quick.samples_ms[role]) for role in (ArtifactRole.FP32, ArtifactRole.INT8_ONNXRUNTIME)] == [3, 3]
    assert lines[0].startswith("fp32: fp32.onnx on onnxruntime CPU: batch 1 median ")
    assert lines[1].startswith("int8_onnxruntime: twin.onnx on onnxruntime CPU: batch 1 median ")
    assert re.fullmatch(r"int8_onnxruntime vs fp32: [0-9.]+x the speed at batch 1 \(3 calls, CPU\)", lines[2])


def test_engine_without_tensorrt_is_a_clear_error(tmp_path: Path) -> None:
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: tests/gpu profiles real engines")
    except ImportError:
        pass
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    result = CliRunner().invoke(app, ["profile", str(engine)])
    assert result.exit_code == 2
    assert "error:" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.onnx"], "missing.onnx: file not found"),
        (["{tmp}/notes.txt"], "a '.txt' file is neither an ONNX model nor a TensorRT engine"),
        (["{model}", "--batch", "1,x"], "'x' is not a whole number"),
        (["{model}", "--iterations", "5", "--duration", "2"], "not both"),
        (["{model}", "--from-frames", "{tmp}/clip.yuv", "--format", "yuyv:7x5"], "--format: frame width 7 is odd"),
    ],
)
def test_cli_bad_inputs_give_one_line_and_exit_2(
    tmp_path: Path, tiny_onnx: Path, args: list[str], message: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    filled = [a.format(tmp=tmp_path, model=tiny_onnx) for a in args]
    result = CliRunner().invoke(app, ["profile", *filled])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_help_has_examples() -> None:
    result = CliRunner().invoke(app, ["profile", "--help"])
    assert result.exit_code == 0
    assert "edgeres profile fp32.onnx int8.onnx --batch 1,8 --plot out/" in result.output


def test_precision_of_artifacts_without_sidecar_comes_from_the_graph(tmp_path: Path) -> None:
    """Build outputs record no precision option; the graph tells (Q/DQ -> int8), as for deploy and engine."""
    from edgeres.artifacts.sidecar import write_sidecar

    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    write_tiny_classifier(fp32)
    write_tiny_classifier(int8, weight_type=TensorProto.INT8)
    assert [artifact_precision(p) for p in (fp32, int8)] == ["fp32", "int8"]
    write_sidecar(int8, "quantize", {}, {"calib_algo": "mse"}, {})  # a sidecar without a precision option
    assert artifact_precision(int8) == "int8"
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an onnx file")
    assert artifact_precision(engine) is None  # an engine is never read as ONNX
    write_sidecar(engine, "engine", {}, {"precision": "fp16"}, {})
    assert artifact_precision(engine) == "fp16"


def test_interleaved_pass_alternates_rounds_and_counts_calls() -> None:
    from edgeres.profile.compare import interleaved_seconds

    order: list[str] = []
    samples = interleaved_seconds([lambda: order.append("a"), lambda: order.append("b")], rounds=3, calls_per_round=2)
    # one untimed + two timed calls per artifact per round; the order reverses every round
    assert "".join(order) == "aaabbb" + "bbbaaa" + "aaabbb"
    assert [len(s) for s in samples] == [6, 6] and all((s >= 0).all() for s in samples)
    with pytest.raises(UserInputError, match="rounds 0"):
        interleaved_seconds([lambda: None], rounds=0, calls_per_round=1)


def test_two_onnx_artifacts_get_interleaved_medians(tmp_path: Path) -> None:
    from edgeres.profile.compare import DEFAULT_ROUNDS

    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    write_tiny_classifier(first, seed=1)
    write_tiny_classifier(second, seed=2, weight_type=TensorProto.INT8)
    options = ProfileOptions(batches=(1, 4), run_length=RunLength(iterations=14), warmup=1, layers=False)
    profiles = profile_artifacts([first, second], options)
    for profile in profiles:
        for result in profile.batches:
            interleaved = result.interleaved
            assert interleaved is not None
            assert interleaved.rounds == DEFAULT_ROUNDS and interleaved.calls_per_round == 14 // DEFAULT_ROUNDS
            assert interleaved.sync.count == DEFAULT_ROUNDS * interleaved.calls_per_round
            assert 0 < interleaved.sync.min_ms <= interleaved.sync.median_ms <= interleaved.sync.max_ms


def test_interleaved_median_of_a_model_against_itself_is_near_one(tmp_path: Path) -> None:
    model, same = tmp_path / "model.onnx", tmp_path / "same.onnx"
    write_tiny_classifier(model)
    same.write_bytes(model.read_bytes())
    options = ProfileOptions(batches=(2,), run_length=RunLength(iterations=42), warmup=2, layers=False)
    base, candidate = profile_artifacts([model, same], options)
    base_ms = base.batches[0].interleaved
    candidate_ms = candidate.batches[0].interleaved
    assert base_ms is not None and candidate_ms is not None
    # same bytes, same threads, alternating rounds: any gap is noise (loose bound for a shared machine)
    assert 0.5 < base_ms.sync.median_ms / candidate_ms.sync.median_ms < 2.0


def test_single_artifact_has_no_interleaved_pass(tiny_onnx: Path) -> None:
    options = ProfileOptions(batches=(1,), run_length=RunLength(iterations=3), warmup=0, layers=False)
    (profile,) = profile_artifacts([tiny_onnx], options)
    assert profile.batches[0].interleaved is None
