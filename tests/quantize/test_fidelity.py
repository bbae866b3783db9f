"""Fidelity measures and the gate, on small models whose differences are known by construction."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeres.errors import FidelityError, UserInputError
from edgeres.quantize.cpu_twin import insert_qdq_cpu
from edgeres.quantize.fidelity import LAYER_SAMPLES, FidelityReport, HeldOutEvaluation, sqnr_db
from edgeres.quantize.gate import FidelityGate, check_gate
from edgeres.quantize.qdq import plan_qdq
from tests.quantize.test_qdq import chain_model


def perturbed(model: onnx.ModelProto, initializer: str, noise: float) -> onnx.ModelProto:
    """A copy with seeded Gaussian noise of std `noise` added to one weight."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    init = next(i for i in copy.graph.initializer if i.name == initializer)
    values = numpy_helper.to_array(init)
    values = values + np.random.default_rng(9).standard_normal(values.shape).astype(np.float32) * noise
    init.CopyFrom(numpy_helper.from_array(values.astype(np.float32), initializer))
    return copy


def compare(
    reference: onnx.ModelProto,
    candidate: onnx.ModelProto,
    data: list,
    precision: str,
    weights: str,
    random_weights: bool | None,
    layer_samples: int = LAYER_SAMPLES,
) -> FidelityReport:
    """One evaluation of `candidate` against `reference` on `data` (arrays, or (inputs, labels) pairs)."""
    held_out = [item if isinstance(item, tuple) else (item, None) for item in data]
    evaluation = HeldOutEvaluation(reference, held_out, weights, random_weights)
    return evaluation.measure(candidate, precision, layer_samples=layer_samples)


def batches(count: int = 3, size: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.standard_normal((size, 3, 16, 16)).astype(np.float32) for _ in range(count)]


def test_sqnr_definition() -> None:
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
    assert sqnr_db(1.0, 0.0) == math.inf


def test_identical_models_agree_exactly() -> None:
    model = chain_model()
    report = compare(model, model, batches(), "int8", "random (seed 0)", random_weights=True)
    assert report.samples == 12
    assert report.top1_agreement == 1.0 and report.top5_overlap == 1.0
    assert report.sqnr_db == math.inf and report.cosine_min == pytest.approx(1.0)
    assert report.as_dict()["sqnr_db"] == "inf"
    assert "ill-conditioned" in report.note


def test_logit_measures_match_a_direct_computation() -> None:
    """Streaming over batches gives the same numbers as computing on everything at once."""
    import onnxruntime as ort

    model, other = chain_model(), perturbed(chain_model(), "fc_w", 0.3)
    data = batches()
    report = compare(model, other, data, "int8", "w", random_weights=False)
    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]) for m in (model, other)]
    ref, cand = (np.concatenate([r.run(None, {"input": b})[0] for b in data]).astype(np.float64) for r in run)
    expected = 10 * np.log10(np.sum(ref**2) / np.sum((ref - cand) ** 2))
    assert report.sqnr_db == pytest.approx(expected, rel=1e-6)
    assert report.top1_agreement == pytest.approx(np.mean(ref.argmax(1) == cand.argmax(1)))
    cosine = np.sum(ref * cand, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1))
    assert report.cosine_min == pytest.approx(cosine.min()) and report.cosine_mean == pytest.approx(cosine.mean())
    assert report.top5_overlap == 1.0  # five classes: the top five are always all of them


def test_worst_layer_is_the_perturbed_one() -> None:
    model = chain_model()
    report = compare(model, perturbed(model, "w2", 0.2), batches(), "int8", "w", random_weights=False)
    worst = report.worst_layers
    assert worst[0].tensor == "c2" and math.isfinite(worst[0].sqnr_db)
    assert {layer.tensor: layer.sqnr_db for layer in worst}["c1"] == math.inf  # upstream of the change


def test_accuracy_against_labels() -> None:
    model = chain_model()
    data = batches()
    import onnxruntime as ort

    run = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    labelled = [(b, run.run(None, {"input": b})[0].argmax(1)) for b in data]
    labelled[0] = (labelled[0][0], (labelled[0][1] + 1) % 5)  # first batch labelled wrong on purpose
    report = compare(model, model, labelled, "fp16", "w", random_weights=False)
    assert report.accuracy is not None
    assert report.accuracy.reference_top1 == pytest.approx(8 / 12) == report.accuracy.candidate_top1
    assert report.accuracy.reference_top5 == 1.0


def test_gate_names_measure_value_and_limit() -> None:
    model = chain_model()
    report = compare(model, perturbed(model, "fc_b", 50.0), batches(), "int8", "w", random_weights=False)
    check_gate(report, FidelityGate(min_sqnr_db=report.sqnr_db - 1))
    with pytest.raises(FidelityError, match=r"int8 logits SQNR .* dB is below the required"):
        check_gate(report, FidelityGate(min_sqnr_db=report.sqnr_db + 1))
    assert report.top1_agreement < 1.0  # a bias far larger than the logits overrides the decisions
    with pytest.raises(FidelityError, match=r"agreement .* is below the required"):
        check_gate(report, FidelityGate(min_agreement=1.0))
    with pytest.raises(UserInputError, match="agreement 95"):
        FidelityGate(min_agreement=95)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(UserInputError, match="no held-out samples"):
        compare(chain_model(), chain_model(), [], "int8", "w", random_weights=True)


def logits_sqnr(
    reference: onnx.ModelProto, candidate: onnx.ModelProto, data: list[np.ndarray], fetch: list[str]
) -> float:
    """Logits SQNR computed directly; `fetch` tensors are added as graph outputs of the candidate first."""
    import onnxruntime as ort

    shipped = onnx.ModelProto()
    shipped.CopyFrom(candidate)
    shipped.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in fetch)
    runs = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]) for m in (reference, shipped)
    ]
    ref, cand = (np.concatenate([r.run(["logits"], {"input": b})[0] for b in data]).astype(np.float64) for r in runs)
    return sqnr_db(float(np.sum(ref**2)), float(np.sum((ref - cand) ** 2)))


def overflowing_twin() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """chain_model and a U8S8 twin whose conv1 channel 0 has a near-zero weight scale and a large bias.

    Fused into QLinearConv, that bias (int32 codes of input scale x weight scale) overflows; run as
    DequantizeLinear -> float Conv it does not. So the twin's logits depend on whether conv1 is fused.
    """
    model = chain_model()
    twin = insert_qdq_cpu(model, plan_qdq(model), {"input": 3.0, "p1": 2.5, "f": 1.7})
    inits = {i.name: i for i in twin.graph.initializer}
    scale, bias = numpy_helper.to_array(inits["w1_scale"]).copy(), numpy_helper.to_array(inits["b1"]).copy()
    scale[0], bias[0] = 1e-9, 2.0
    inits["w1_scale"].CopyFrom(numpy_helper.from_array(scale, "w1_scale"))
    inits["b1"].CopyFrom(numpy_helper.from_array(bias, "b1"))
    return model, twin


def test_logits_are_measured_on_the_shipped_graph() -> None:
    """Fetching conv outputs stops onnxruntime fusing the twin's QLinearConv; the logits must not see that."""
    model, twin = overflowing_twin()
    data = batches()
    shipped, unfused = logits_sqnr(model, twin, data, []), logits_sqnr(model, twin, data, ["c1", "c2"])
    assert abs(shipped - unfused) > 0.1  # the premise: fetching layer outputs changes the numbers
    report = compare(model, twin, data, "int8", "w", random_weights=False, layer_samples=6)
    assert report.sqnr_db == pytest.approx(shipped, rel=1e-9)
    assert report.layer_samples == 6 and {layer.tensor for layer in report.worst_layers} == {"c1", "c2"}
