"""Calibration statistics: streaming histograms, the four amax algorithms, and the onnxruntime pass."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.quantize.calibrate import activation_tensors, collect_ranges, collect_statistics, ranges_from_statistics
from edgeres.quantize.grid import MIN_AMAX
from edgeres.quantize.histogram import (
    ALGORITHMS,
    CalibAlgo,
    CalibOptions,
    StreamingHistogram,
    amax_entropy,
    amax_max,
    amax_mse,
    amax_percentile,
    entropy_divergences,
)

OPTIONS = CalibOptions()


def histogram_of(*chunks: np.ndarray, bins: int = 4096) -> StreamingHistogram:
    hist = StreamingHistogram(bins)
    for chunk in chunks:
        hist.add(chunk)
    return hist


def gaussian_with_outliers(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    body = rng.standard_normal(2_000_000).astype(np.float32)
    # 1e-6 of the mass, far out: rare enough that even MSE (which weighs squared outlier error) clips them
    outliers = rng.uniform(40.0, 50.0, size=2).astype(np.float32)
    return np.concatenate([body, outliers])


# --- histogram ---------------------------------------------------------------------------------------


def test_streaming_histogram_equals_one_shot_histogram_after_regrowth() -> None:
    rng = np.random.default_rng(1)
    small = rng.uniform(-0.3, 0.3, 50_000).astype(np.float32)
    large = rng.standard_normal(50_000).astype(np.float32) * 20  # forces several doublings
    streamed = histogram_of(small, large)
    assert streamed.exponent is not None and streamed.range > np.abs(large).max()
    everything = np.abs(np.concatenate([small, large])).astype(np.float64)
    expected, _ = np.histogram(everything[everything > 0], bins=streamed.num_bins, range=(0.0, streamed.range))
    np.testing.assert_array_equal(streamed.counts, expected)
    assert streamed.total == everything.size
    assert streamed.amax == pytest.approx(everything.max())


def test_merge_of_two_workers_is_exact_and_order_free() -> None:
    rng = np.random.default_rng(2)
    a = rng.laplace(0, 0.5, 30_000).astype(np.float32)
    b = rng.laplace(0, 9.0, 30_000).astype(np.float32)
    whole = histogram_of(a, b)
    for first, second in ((a, b), (b, a)):
        left, right = histogram_of(first), histogram_of(second)
        left.merge(right)
        np.testing.assert_array_equal(left.counts, whole.counts)
        assert (left.exponent, left.zeros, left.amax) == (whole.exponent, whole.zeros, whole.amax)


def test_exact_zeros_are_counted_apart() -> None:
    relu = np.maximum(np.random.default_rng(3).standard_normal(10_000).astype(np.float32), 0)
    hist = histogram_of(relu, np.zeros(500, np.float32))
    assert hist.zeros == int(np.sum(relu == 0)) + 500
    assert int(hist.counts.sum()) == int(np.sum(relu > 0))


def test_all_zero_tensor_has_zero_range() -> None:
    hist = histogram_of(np.zeros((4, 8), np.float32))
    for algo in CalibAlgo:
        assert ALGORITHMS[algo](hist, OPTIONS) == 0.0


def test_state_size_does_not_grow_with_samples() -> None:
    rng = np.random.default_rng(4)
    hist = StreamingHistogram()
    sizes = []
    for step in range(30):
        hist.add(rng.standard_normal(10_000).astype(np.float32) * (1 + step))
        sizes.append(hist.nbytes)
    assert len(set(sizes)) == 1 and sizes[0] == 4096 * 8


def test_nan_activation_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        histogram_of(np.array([1.0, np.nan], np.float32))


# --- algorithms --------------------------------------------------------------------------------------


def test_max_keeps_outliers_that_percentile_entropy_and_mse_clip() -> None:
    data = gaussian_with_outliers()
    hist = histogram_of(data)
    assert amax_max(hist, OPTIONS) == pytest.approx(float(np.abs(data).max())) and hist.amax > 40
    for clipped in (amax_percentile(hist, OPTIONS), amax_entropy(hist, OPTIONS), amax_mse(hist, OPTIONS)):
        assert 2.5 < clipped < 10.0, clipped  # the body is N(0, 1); the outliers sit at 40..50


def test_percentile_matches_the_empirical_quantile() -> None:
    data = np.random.default_rng(5).exponential(2.0, 1_000_000).astype(np.float32)
    hist = histogram_of(data)
    for pct in (50.0, 99.0, 99.99):
        expected = float(np.percentile(np.abs(data), pct))
        assert amax_percentile(hist, CalibOptions(percentile=pct)) == pytest.approx(
            expected, rel=2e-3, abs=hist.bin_width
        )


def test_percentile_counts_zeros_as_values() -> None:
    half_zero = np.concatenate([np.zeros(50_000, np.float32), np.linspace(0.01, 1.0, 50_000, dtype=np.float32)])
    assert amax_percentile(histogram_of(half_zero), CalibOptions(percentile=75.0)) == pytest.approx(0.505, abs=0.01)


def test_mse_finds_the_known_gaussian_optimum() -> None:
    """For N(0,1) and a 255-level symmetric grid, E[err^2](a) = clip error + (a/127)^2/12; minimise it."""

    def expected_error(a: float) -> float:
        pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        tail = 0.5 * math.erfc(a / math.sqrt(2))
        return 2 * ((1 + a * a) * tail - a * pdf) + (a / 127) ** 2 / 12

    grid = np.linspace(2.0, 8.0, 6001)
    optimum = float(grid[np.argmin([expected_error(a) for a in grid])])
    rng = np.random.default_rng(6)
    hist = histogram_of(*(rng.standard_normal(1_000_000).astype(np.float32) for _ in range(4)))
    assert amax_mse(hist, OPTIONS) == pytest.approx(optimum, rel=0.03)
    assert amax_mse(hist, OPTIONS) < amax_max(hist, OPTIONS)


def test_entropy_keeps_the_full_range_of_a_uniform_distribution() -> None:
    data = np.random.default_rng(7).uniform(0, 3.0, 1_000_000).astype(np.float32)
    hist = histogram_of(data)
    assert amax_entropy(hist, OPTIONS) == pytest.approx(3.0, rel=0.01)


def naive_divergence(counts: np.ndarray, stop: int, levels: int = 128) -> float:
    """KL(P||Q) for one threshold, written out bin by bin as NVIDIA's entropy calibration describes it."""
    p = counts[:stop].astype(np.float64).copy()
    p[-1] += counts[stop:].sum()
    q = np.zeros(stop)
    group_of = np.floor(np.arange(stop) * levels / stop).astype(int)
    for group in range(levels):
        members = np.flatnonzero((group_of == group) & (counts[:stop] > 0))
        if members.size:
            q[members] = counts[:stop][group_of == group].sum() / members.size
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def test_vectorised_divergence_matches_the_bin_by_bin_definition() -> None:
    rng = np.random.default_rng(8)
    counts = rng.poisson(np.linspace(400, 1, 700)).astype(np.float64)
    counts[rng.integers(0, 700, 40)] = 0  # empty bins inside the range exercise the "non-empty only" spread
    stops, divergence = entropy_divergences(counts)
    for index in (0, 1, 57, 300, len(stops) - 1):
        expected = naive_divergence(counts, int(stops[index]))
        if math.isinf(expected):
            assert math.isinf(divergence[index])
        else:
            assert divergence[index] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def reference_entropy_amax(counts: np.ndarray, width: float, levels: int = 128, start: int = 128) -> float:
    """NVIDIA's entropy calibration written out directly (pytorch-quantization's rules, see amax_entropy)."""
    bins = counts.astype(np.float64).copy()
    bins[0] = bins[1]
    divergences = [naive_divergence(bins, stop, levels) for stop in range(start, len(bins) + 1)]
    best = len(divergences) - 1 - int(np.argmin(divergences[::-1]))  # last of tied minima
    return (start + best) * width


def test_entropy_amax_matches_the_reference_and_ignores_the_zero_spike() -> None:
    """A ReLU-like histogram: half the values exactly zero, some tiny, a half-normal body, a few outliers."""
    rng = np.random.default_rng(11)
    data = np.abs(rng.standard_normal(200_000)).astype(np.float32)
    draw = rng.random(data.size)
    data[draw < 0.5] = 0.0
    data[(draw >= 0.5) & (draw < 0.6)] = 1e-4  # tiny but not zero: bin 0 holds them, bin 1 does not
    data[:20] *= 2.0
    hist = histogram_of(data, bins=1024)
    counts = hist.counts[: int(np.flatnonzero(hist.counts)[-1]) + 1]
    expected = reference_entropy_amax(counts, hist.bin_width)
    assert amax_entropy(hist, CalibOptions(num_bins=1024)) == pytest.approx(expected, rel=1e-12)
    assert hist.zeros > 90_000 and expected < 0.9 * hist.amax  # the outliers are clipped
    # Counted in bin 0 instead, the zero spike drags the threshold to the first candidate.
    with_zeros = counts.astype(np.float64).copy()
    with_zeros[0] += hist.zeros
    stops, divergence = entropy_divergences(with_zeros)
    assert stops[np.flatnonzero(divergence == divergence.min())[-1]] * hist.bin_width < 0.5 * expected


def test_registry_covers_every_algorithm() -> None:
    assert set(ALGORITHMS) == set(CalibAlgo)


# --- onnxruntime pass --------------------------------------------------------------------------------


def tiny_residual_model(path: Path) -> Path:
    """input -> Conv -> Relu -> (Conv + skip) Add -> Relu -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(9)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3, "w2"),
        numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(5, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def batches(count: int, size: int = 2, seed: int = 10) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((size, 3, 8, 8)).astype(np.float32) for _ in range(count)]


def test_default_tensors_are_activations_not_weights(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_residual_model(tmp_path / "tiny.onnx")))
    assert activation_tensors(model) == ["input", "r1", "c2", "r2", "flat"]


def test_collect_ranges_max_equals_numpy_reference(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = tiny_residual_model(tmp_path / "tiny.onnx")
    data = batches(3)
    ranges = collect_ranges(path, data, CalibAlgo.MAX)
    session = ort.InferenceSession(_with_all_outputs(path, ["r1", "c2"]), providers=["CPUExecutionProvider"])
    r1 = max(float(np.abs(session.run(["r1"], {"input": b})[0]).max()) for b in data)
    c2 = max(float(np.abs(session.run(["c2"], {"input": b})[0]).max()) for b in data)
    assert ranges["input"] == pytest.approx(max(float(np.abs(b).max()) for b in data))
    assert ranges["r1"] == pytest.approx(r1, rel=1e-6)
    assert ranges["c2"] == pytest.approx(c2, rel=1e-6)


def _with_all_outputs(path: Path, names: list[str]) -> bytes:
    model = onnx.load(str(path))
    for name in names:
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return model.SerializeToString()


def test_one_pass_serves_every_algorithm_and_progress_counts_samples(tmp_path: Path) -> None:
    path = tiny_residual_model(tmp_path / "tiny.onnx")
    seen: list[int] = []
    stats = collect_statistics(path, batches(4, size=3), progress=seen.append)
    assert seen == [3, 3, 3, 3] and stats.samples == 12
    by_algo = {algo: ranges_from_statistics(stats, algo) for algo in CalibAlgo}
    for name, amax in by_algo[CalibAlgo.MAX].items():
        assert amax > 0
        for algo in (CalibAlgo.PERCENTILE, CalibAlgo.ENTROPY, CalibAlgo.MSE):
            assert 0 < by_algo[algo][name] <= amax
    assert collect_ranges(path, batches(4, size=3), CalibAlgo.ENTROPY) == by_algo[CalibAlgo.ENTROPY]


def test_named_tensors_only_and_unknown_names_refused(tmp_path: Path) -> None:
    path = tiny_residual_model(tmp_path / "tiny.onnx")
    assert set(collect_ranges(path, batches(1), CalibAlgo.MAX, tensors=["sum"])) == {"sum"}
    with pytest.raises(UserInputError, match="no_such"):
        collect_ranges(path, batches(1), CalibAlgo.MAX, tensors=["no_such"])


def test_empty_batches_and_missing_model_are_user_errors(tmp_path: Path) -> None:
    path = tiny_residual_model(tmp_path / "tiny.onnx")
    with pytest.raises(UserInputError, match="no samples"):
        collect_ranges(path, [], CalibAlgo.MAX)
    with pytest.raises(UserInputError, match="not found"):
        collect_ranges(tmp_path / "absent.onnx", batches(1), CalibAlgo.MAX)


def test_invalid_options_rejected() -> None:
    with pytest.raises(ValueError, match="percentile"):
        CalibOptions(percentile=0.0)
    with pytest.raises(ValueError, match="num_bins"):
        CalibOptions(num_bins=1000)


def test_all_zero_activation_gets_a_positive_range(tmp_path: Path) -> None:
    path = tiny_residual_model(tmp_path / "tiny.onnx")
    ranges = collect_ranges(path, [np.zeros((2, 3, 8, 8), np.float32)], CalibAlgo.ENTROPY)
    assert ranges["input"] == MIN_AMAX and all(amax > 0 for amax in ranges.values())


def test_tensors_without_batch_axis_are_still_collected(tmp_path: Path) -> None:
    """A Reshape to [-1] has no batch axis: output buffers cannot be pre-bound, plain runs take over."""
    shape = numpy_helper.from_array(np.array([-1], np.int64), "flat_shape")
    nodes = [
        helper.make_node("Reshape", ["input", "flat_shape"], ["flat"]),
        helper.make_node("Add", ["flat", "flat"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "flat",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None])],
        [shape],
    )
    path = tmp_path / "flat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    data = batches(3)
    data[2] = data[2] * 5  # the largest value arrives in the last batch
    ranges = collect_ranges(path, data, CalibAlgo.MAX)
    assert ranges["flat"] == pytest.approx(max(float(np.abs(b).max()) for b in data))
