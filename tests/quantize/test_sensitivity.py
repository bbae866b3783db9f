"""Per-layer INT8 sensitivity and the automatic fallback search, on tiny models and the trained EfficientNet-Lite0."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeres.errors import UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.frames.images import default_calibration_dir, imagenet_batch, list_images, read_rgb
from edgeres.quantize.bias_correction import corrected_biases, weighted_inputs
from edgeres.quantize.calibrate import collect_statistics, ranges_from_statistics
from edgeres.quantize.cpu_twin import exact_weight_type
from edgeres.quantize.fallback import fallback_metrics, search_fallback
from edgeres.quantize.fidelity import Accuracy, FidelityReport, HeldOutEvaluation
from edgeres.quantize.gate import FidelityGate
from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.quantize.qdq import plan_qdq
from edgeres.quantize.sensitivity import (
    QuantizedVariants,
    analyse_sensitivity,
    layer_macs,
    module_path,
    network_layers,
)
from edgeres.samples.reader import derive_variant
from tests.conftest import real_image
from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0


def conv_chain(seed: int = 0) -> onnx.ModelProto:
    """input [N,3,8,8] -> conv 3x3 (4 ch) -> relu -> conv 1x1 (4 ch) -> global pool -> flatten -> gemm (5)."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 4, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.5, (5, 4)).astype(np.float32), "w3"),
        numpy_helper.from_array(np.zeros(5, np.float32), "b3"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="/stem/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/stem/Relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="/body/body.0/conv/Conv"),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="/pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def chain_parts() -> tuple[onnx.ModelProto, QuantizedVariants, HeldOutEvaluation]:
    model = conv_chain()
    plan = plan_qdq(model)
    x = np.random.default_rng(1).normal(0, 1, (6, 3, 8, 8)).astype(np.float32)
    ranges = {t: 3.0 for t in plan.activations + plan.cpu_extra}
    variants = QuantizedVariants(model, plan, ranges, None, exact_weight_type())
    return model, variants, HeldOutEvaluation(model, [(x[:3], np.array([0, 1, 2])), (x[3:], np.array([3, 4, 0]))])


def ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize(
    ("node", "path"),
    [
        ("/conv1/Conv", "conv1"),
        ("/layer1/layer1.0/conv1/Conv", "layer1.0.conv1"),
        ("/layer1/layer1.0/downsample/downsample.0/Conv", "layer1.0.downsample.0"),
        ("/_blocks.0/_depthwise_conv/Conv", "_blocks.0._depthwise_conv"),
        ("Conv_7", ""),
    ],
)
def test_module_path_of_exported_node_names(node: str, path: str) -> None:
    assert module_path(node) == path


def test_macs_counted_from_shapes() -> None:
    macs = layer_macs(conv_chain())
    assert macs == {"/stem/conv/Conv": 8 * 8 * 4 * 3 * 9, "/body/body.0/conv/Conv": 8 * 8 * 4 * 4, "/fc/Gemm": 20}


def test_layers_in_order_with_their_costs() -> None:
    model = conv_chain()
    layers = network_layers(model, plan_qdq(model))
    assert [layer.node for layer in layers] == ["/stem/conv/Conv", "/body/body.0/conv/Conv", "/fc/Gemm"]
    assert [layer.position for layer in layers] == [0, 1, 2]
    assert [layer.macs for layer in layers] == [8 * 8 * 4 * 27, 8 * 8 * 16, 20]


def test_the_float_model_measures_exact_and_its_own_labels() -> None:
    model, _, logits = chain_parts()
    measure = logits.measure(model)
    assert measure.sqnr_db == math.inf and measure.top1_agreement == 1.0
    reference = np.concatenate([np.argmax(r, axis=1) for r in logits.reference])
    assert measure.top1_accuracy == pytest.approx(np.mean(reference == np.array([0, 1, 2, 3, 4, 0])))


def test_variants_quantize_what_they_say() -> None:
    _, variants, logits = chain_parts()
    everything = variants.keeping()
    # 3 activations and the stem's weights; the fc and the conv before the pool hold float values of INT8 codes
    assert ops(everything).count("DequantizeLinear") >= 4
    assert logits.measure(variants.keeping(variants.layers)).sqnr_db == math.inf  # all float: FP32 exactly
    only_fc = variants.only("/fc/Gemm")
    inits = {i.name: numpy_helper.to_array(i) for i in only_fc.graph.initializer}
    assert not any(name.startswith(("w1", "w2")) and name.endswith("_quantized") for name in inits)
    fc = next(n for n in only_fc.graph.node if n.op_type == "Gemm")
    # The logits are not quantized, so the twin stores the fc weights as the float values of their INT8 codes.
    original = numpy_helper.to_array(next(i for i in conv_chain().graph.initializer if i.name == "w3"))
    rounded = inits[fc.input[1]]
    assert not np.array_equal(rounded, original) and np.allclose(rounded, original, atol=np.abs(original).max() / 254)
    assert "QuantizeLinear" not in ops(variants.weights_only())  # weights are stored quantized, no activation Q
    activations_only = variants.activations_only().graph.node
    assert not any(n.input[0].startswith("w") for n in activations_only if n.op_type == "DequantizeLinear")
    whole = logits.measure(everything)
    assert math.isfinite(whole.sqnr_db) and whole.sqnr_db < logits.measure(only_fc).sqnr_db


def Measure(sqnr_db: float, agreement: float, accuracy: float | None) -> FidelityReport:
    """A report with just the measures a gate reads."""
    labelled = None if accuracy is None else Accuracy(1.0, 1.0, accuracy, 1.0)
    return FidelityReport("int8", 6, "w", False, agreement, 1.0, 1.0, 1.0, sqnr_db, accuracy=labelled)


def test_score_puts_the_gate_first() -> None:
    gate = FidelityGate(min_sqnr_db=20.0, min_agreement=0.9)
    passing, close, far = Measure(21.0, 0.95, None), Measure(25.0, 0.5, None), Measure(10.0, 0.95, None)
    assert gate.failures(passing) == [] and len(gate.failures(close)) == 1
    assert sorted([far, close, passing], key=gate.score, reverse=True) == [passing, close, far]
    accuracy_gate = FidelityGate(min_accuracy=0.8)
    assert accuracy_gate.score(Measure(10.0, 0.5, 0.9)) > accuracy_gate.score(Measure(30.0, 0.9, 0.7))
    assert accuracy_gate.failures(Measure(30.0, 1.0, None)) == [
        "top-1 accuracy cannot be measured: the held-out samples have no labels"
    ]


def test_search_refuses_no_target_and_no_budget() -> None:
    model, variants, logits = chain_parts()
    layers = network_layers(model, variants.plan)
    with pytest.raises(UserInputError, match="needs a fidelity target"):
        search_fallback(fallback_metrics(variants, logits), layers, FidelityGate())
    with pytest.raises(UserInputError, match="at least 1"):
        search_fallback(fallback_metrics(variants, logits), layers, FidelityGate(min_sqnr_db=10), max_fallback=0)


def test_search_stops_at_once_when_int8_already_passes() -> None:
    model, variants, logits = chain_parts()
    layers = network_layers(model, variants.plan)
    search = search_fallback(fallback_metrics(variants, logits), layers, FidelityGate(min_sqnr_db=-50))
    assert search.met and search.keep_float == () and len(search.steps) == 1 and search.evaluations == 1


# --- the trained network --------------------------------------------------------------------------------

HELD_OUT = ("chelsea", "coffee", "rocket", "astronaut")
CALIBRATION_SAMPLES = 24
RANDOM_DRAWS = 5


@pytest.fixture(scope="module")
def lite0() -> tuple[list, QuantizedVariants, HeldOutEvaluation]:
    """Lite0 calibrated (MSE, bias correction) on the shipped photographs but the held-out four; held out:
    those four and three crops/flips of each."""
    model = torch_to_onnx(load_efficientnet_lite0())
    plan = plan_qdq(model)
    photos = [read_rgb(p) for p in list_images(default_calibration_dir()) if p.stem not in HELD_OUT]
    rng = np.random.default_rng(0)
    pictures = (photos + [derive_variant(p, v, rng) for v in (1, 2, 3) for p in photos])[:CALIBRATION_SAMPLES]
    batches = [imagenet_batch(pictures[i : i + 8]) for i in range(0, len(pictures), 8)]
    tensors = list(dict.fromkeys(plan.activations + plan.cpu_extra))
    options = CalibOptions()
    stats = collect_statistics(model, batches, tensors, options, means_for=weighted_inputs(model, plan))
    ranges = ranges_from_statistics(stats, CalibAlgo.MSE, options)
    biases = corrected_biases(model, plan, ranges, {name: s.mean for name, s in stats.means.items()})
    held = [real_image(name) for name in HELD_OUT]
    held_batch = imagenet_batch(held + [derive_variant(p, v, rng) for v in (1, 2, 3) for p in held])
    logits = HeldOutEvaluation(model, [(held_batch[:8], None), (held_batch[8:], None)])
    variants = QuantizedVariants(model, plan, ranges, biases, exact_weight_type())
    return network_layers(model, plan), variants, logits


@pytest.mark.slow
def test_fallback_meets_a_gate_above_int8_with_the_best_layers(lite0: tuple) -> None:
    layers, variants, logits = lite0
    report = analyse_sensitivity(variants, logits, layers)
    plain = report.int8.sqnr_db
    gate = FidelityGate(min_sqnr_db=plain + 3.0)  # measured here: 4 layers meet it (3 fall 0.1-1 dB short)
    assert gate.failures(report.int8)
    search = search_fallback(fallback_metrics(variants, logits), layers, gate, max_fallback=6)
    assert search.met and 1 <= len(search.keep_float) <= 6, search.as_dict()["curve"]
    # The first pick is the exhaustive leave-one-out's best (measured independently by the sensitivity pass).
    assert search.steps[1].kept[0] == report.ranked()[0].layer.name
    by_name = {layer.name: layer.node for layer in layers}
    # The printed --keep-float names reproduce the set.
    assert set(plan_qdq(variants.model, search.keep_float).kept_float) == {by_name[n] for n in search.keep_float}
    chosen = search.steps[search.chosen].measure.sqnr_db
    count = len(search.keep_float)
    nodes = [layer.node for layer in layers]
    rivals = {"first": nodes[:count], "last": nodes[-count:]}
    draw = random.Random(0)
    rivals |= {f"random {i}": draw.sample(nodes, count) for i in range(RANDOM_DRAWS)}
    for name, rival in rivals.items():
        assert set(rival) != {by_name[n] for n in search.keep_float}
        rival_sqnr = logits.measure(variants.keeping(rival)).sqnr_db
        assert chosen > rival_sqnr, f"{name} {count} layers: {rival_sqnr:.2f} dB >= chosen {chosen:.2f} dB"
    # The curve records cost: MAC share grows with the layers kept, latency was measured.
    shares = [step.mac_share for step in search.steps]
    assert shares[0] == 0.0 and all(b > a for a, b in itertools.pairwise(shares))
    assert all(step.latency_ms > 0 for step in search.steps)


@pytest.mark.slow
def test_sensitivity_splits_the_error_and_ranks_every_layer(lite0: tuple) -> None:
    layers, variants, logits = lite0
    report = analyse_sensitivity(variants, logits, layers[:4])  # a few layers: the whole-model split is the point
    assert math.isfinite(report.weights_only.sqnr_db) and report.weights_only.sqnr_db > report.int8.sqnr_db
    assert math.isfinite(report.activations_only.sqnr_db)
    for item in report.layers:
        # One layer's INT8 error alone is smaller than every layer's together.
        assert item.int8_alone.sqnr_db > report.int8.sqnr_db
    data = report.as_dict()
    assert [entry["name"] for entry in data["layers"]] == [layer.name for layer in layers[:4]]
    assert sorted(data["ranking"]) == sorted(layer.name for layer in layers[:4])
