"""Label-free quantization-aware training on the exported graph (edgeres.qat), at 32x32 to stay fast.

What is checked: the evaluator computes the FP32 ONNX; with fake quantization it computes the Q/DQ model node by
node; the export keeps the trained-against scales and the parity gate refuses one that recomputes them, naming
the first node; a build with --qat-epochs writes the PTQ placement exactly, records the run and its parity.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from typer.testing import CliRunner

from edgeres.artifacts.onnx import with_outputs
from edgeres.cli.app import app
from edgeres.errors import UserInputError
from edgeres.export.onnx_export import torch_to_onnx
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model
from edgeres.qat.distill import PARITY_MIN_SQNR_DB, QatParityError, check_parity, node_parity
from edgeres.qat.network import QatNetwork, with_values
from edgeres.quantize.fidelity import model_logits, sqnr_db
from edgeres.quantize.qdq import QdqPlan, ScaleGrid, insert_qdq, plan_qdq
from tests.fixtures.tiny_classifier import tiny_classifier_proto
from tests.train.conftest import export_at, write_random_checkpoint

SIZE = 32
Network = tuple[onnx.ModelProto, np.ndarray, dict[str, float]]  # a model, inputs, and ranges measured on them


@pytest.fixture(scope="module")
def network() -> Network:
    """A ResNet18 export at 32x32, inputs, and ranges measured on them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = torch_to_onnx(build_model(Arch.RESNET18, 10, seed=0).eval(), size=SIZE)
    x = np.random.default_rng(0).standard_normal((8, 3, SIZE, SIZE)).astype(np.float32)
    plan = plan_qdq(proto)
    inner = [t for t in plan.activations if t != "input"]
    import onnxruntime as ort

    session = ort.InferenceSession(with_outputs(proto, inner).SerializeToString(), providers=["CPUExecutionProvider"])
    ranges = {t: float(np.abs(v).max()) for t, v in zip(inner, session.run(inner, {"input": x}), strict=True)}
    return proto, x, ranges | {"input": float(np.abs(x).max())}


def _quantized(network: Network) -> tuple[onnx.ModelProto, np.ndarray, dict[str, float], QdqPlan, QatNetwork]:
    """The module fixture's model, inputs and ranges, its plan and a fresh fake-quantized network of it."""
    proto, x, ranges = network
    plan = plan_qdq(proto)
    return proto, x, ranges, plan, QatNetwork(proto, plan, ranges)


def _sqnr(reference: np.ndarray, other: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    return sqnr_db(float(np.sum(ref**2)), float(np.sum((ref - other) ** 2)))


def test_the_evaluator_computes_the_fp32_onnx(network: Network) -> None:
    proto, x, ranges = network
    net = QatNetwork(proto, plan_qdq(proto), ranges)
    net.quantize = False
    with torch.no_grad():
        ours = net(torch.from_numpy(x)).numpy()
    assert _sqnr(model_logits(proto, [x])[0], ours) > 100


def test_fake_quantization_is_the_qdq_models_arithmetic_node_by_node(network: Network) -> None:
    proto, x, ranges, plan, net = _quantized(network)
    exported = insert_qdq(proto, plan, ranges, weight_scales=net.weight_scales)
    ptq = {i.name: numpy_helper.to_array(i) for i in insert_qdq(proto, plan, ranges).graph.initializer}
    for init in exported.graph.initializer:  # PTQ's scales; a code may differ by one where PTQ rounded against
        value = numpy_helper.to_array(init)  # the float64 scale it then writes as float32
        if init.name.endswith("_scale"):
            assert np.array_equal(value, ptq[init.name]), init.name
        elif init.name.endswith("_quantized"):
            assert np.abs(value.astype(int) - ptq[init.name].astype(int)).max() <= 1, init.name
    assert len(node_parity(net, exported, x)) == len(net.nodes)  # every node compared
    assert check_parity(net, exported, x) >= PARITY_MIN_SQNR_DB  # the worst of them


@pytest.mark.parametrize("grid", [ScaleGrid.FP32, ScaleGrid.FP16])
def test_an_export_that_recomputes_the_scales_is_refused_naming_the_first_node(network: Network,
                                                                               grid: ScaleGrid) -> None:  # fmt: skip
    proto, x, ranges = network
    plan = plan_qdq(proto)
    net = QatNetwork(proto, plan, ranges, grid)
    rng = np.random.default_rng(1)
    for key in net.params:  # what training does to the weights, in one go
        net.params[key].data *= torch.from_numpy((1 + 0.02 * rng.standard_normal(net.params[key].shape)).astype("f"))
    trained = with_values(proto, net.trained_values())
    kept = insert_qdq(trained, plan, ranges, grid=grid, weight_scales=net.weight_scales)
    assert check_parity(net, kept, x) >= PARITY_MIN_SQNR_DB
    drifted = insert_qdq(trained, plan, ranges, grid=grid)  # scales recomputed from the trained weights
    with pytest.raises(QatParityError, match=r"/conv1/Conv_output_0 differs at \d+\.\d dB"):
        check_parity(net, drifted, x)


def test_an_operator_it_cannot_train_is_named() -> None:
    model = tiny_classifier_proto(4, size=SIZE)
    model.graph.node[1].op_type = "Sigmoid"  # the Relu
    with pytest.raises(UserInputError, match="the model also has Sigmoid"):
        QatNetwork(model, plan_qdq(model), {})


@pytest.fixture(scope="module")
def qat_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("qat")
    weights = write_random_checkpoint(root / "random.pth", classes=6)
    onnx_path = export_at(weights, 6, SIZE, root / "fp32.onnx")
    common = ["build", "--int8", "--onnx", str(onnx_path), "--calib-size", "16", "--no-profile"]
    out = {}
    for name, extra in (("ptq", []), ("qat", ["--qat-epochs", "2", "--qat-lr", "1e-5"])):
        result = CliRunner().invoke(app, [*common, *extra, "-o", str(root / name)])
        assert result.exit_code == 0, result.output
        out[name] = root / name
    return out


def _quantized_tensors(path: Path) -> set[str]:
    model = onnx.load(str(path))
    return {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}


def test_a_qat_build_writes_the_ptq_placement_and_records_the_run(qat_builds: dict[str, Path]) -> None:
    for model in ("model_int8_qdq.onnx", "model_int8_u8s8.onnx"):
        assert _quantized_tensors(qat_builds["qat"] / model) == _quantized_tensors(qat_builds["ptq"] / model)
    summary = json.loads((qat_builds["qat"] / "build_summary.json").read_text())
    ptq = json.loads((qat_builds["ptq"] / "build_summary.json").read_text())
    assert summary["placement_audit"] == ptq["placement_audit"]
    assert summary["placement_audit"]["multi_scale_tensors"] == []
    qat = summary["qat"]
    assert qat["epochs"] == 2 and len(qat["relative_logit_mse"]) == 2 and qat["parity"]["sqnr_db"] >= PARITY_MIN_SQNR_DB
    assert summary["bias_correction"] is True and summary["options"]["qat_epochs"] == 2  # QAT started from it
    sidecar = json.loads((qat_builds["qat"] / "model_int8_qdq.onnx.json").read_text())
    assert sidecar["results"]["quantization_aware_training"]["epochs"] == 2
    trained = onnx.load(str(qat_builds["qat"] / "model_int8_qdq.onnx"))
    untrained = onnx.load(str(qat_builds["ptq"] / "model_int8_qdq.onnx"))
    codes = {i.name: i for i in untrained.graph.initializer if i.name.endswith("_quantized")}
    assert any(i.name in codes and i.raw_data != codes[i.name].raw_data for i in trained.graph.initializer)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fp16", "--qat-epochs", "1"], "an FP16 build has nothing to train"),
        (["--qat-epochs", "1", "--qat-lr", "0"], "--qat-lr 0.0: must be a positive number"),
        (["--qat-epochs", "-1"], "'--qat-epochs': Input should be greater than or equal to 0"),
    ],
)
def test_qat_options_that_cannot_apply_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["build", *extra, "--no-profile", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_camera_model_trains_behind_its_float_front_end(tmp_path: Path) -> None:
    """The fused YUYV front-end stays float and untrained: the network starts at its output, the parity gate
    feeds both sides raw frames."""
    result = CliRunner().invoke(app, ["build", "--int8", "--arch", "resnet18", "--num-classes", "6", "--input",
                                      "yuyv:64x48", "--calib-size", "8", "--qat-epochs", "1", "--qat-lr", "1e-5",
                                      "--no-profile", "-o", str(tmp_path / "cam")])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "cam" / "build_summary.json").read_text())
    assert summary["qat"]["parity"]["sqnr_db"] >= PARITY_MIN_SQNR_DB and summary["input"]["kind"] == "yuv422"
    assert "quantization-aware training: 1 epochs on 8 calibration samples" in result.output


def test_efficientnet_lite0_is_evaluated_and_fake_quantized_node_by_node() -> None:
    """Depthwise convolutions, ReLU6 (Clip) and Constant nodes: the trained fixture where PTQ loses most."""
    from tests.fixtures.efficientnet_lite0 import load_efficientnet_lite0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = torch_to_onnx(load_efficientnet_lite0())
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    plan = plan_qdq(proto)
    net = QatNetwork(proto, plan, dict.fromkeys(plan.activations, 6.0))
    net.quantize = False
    with torch.no_grad():
        assert _sqnr(model_logits(proto, [x])[0], net(torch.from_numpy(x)).numpy()) > 100
    net.quantize = True
    exported = insert_qdq(proto, plan, dict.fromkeys(plan.activations, 6.0), weight_scales=net.weight_scales)
    assert check_parity(net, exported, x) >= PARITY_MIN_SQNR_DB


@pytest.mark.parametrize(("min_sqnr", "met"), [(0.0, True), (99.0, False)])
def test_with_automatic_fallback_qat_is_the_first_step(tmp_path: Path, min_sqnr: float, met: bool) -> None:
    """QAT first; layers of the QAT model are kept in float only when it misses the gate, and the summary says
    which; every model written, fallback candidates included, keeps the trained scales."""
    from edgeres.flow.orchestrator import GateNotMet, build
    from edgeres.quantize.gate import FidelityGate
    from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto
    from tests.flow.test_build import tiny_build_options

    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "tiny_fp32.onnx", "fp32")
    options = tiny_build_options(source, qat_epochs=1, qat_lr=1e-5, auto_fallback=True, max_fallback=1,
                                 gate=FidelityGate(min_sqnr_db=min_sqnr), build_engine=False)  # fmt: skip
    try:
        result = build(options, tmp_path / "build")
    except GateNotMet as failed:
        result = failed.result
    summary = json.loads((tmp_path / "build" / "build_summary.json").read_text())
    assert summary["qat"]["met_gate"] is met and bool(summary["qat"]["gate_failures"]) is not met
    assert ("fallback" in summary) is not met  # the layer search ran only when QAT fell short
    sidecar = json.loads((tmp_path / "build" / "model_int8_qdq.onnx.json").read_text())
    assert sidecar["results"]["quantization_aware_training"]["epochs"] == 1  # the QAT model is what was written
    note = next(note for note in result.notes if note.startswith("quantization-aware training"))
    assert ("layers of it are kept in float" in note) is not met


def test_a_qat_build_with_sensitivity_ranks_the_qat_models_layers(tmp_path: Path) -> None:
    from edgeres.flow.orchestrator import build
    from tests.fixtures.tiny_classifier import save_with_sidecar, tiny_classifier_proto
    from tests.flow.test_build import tiny_build_options

    source = save_with_sidecar(tiny_classifier_proto(10), tmp_path / "tiny_fp32.onnx", "fp32")
    result = build(tiny_build_options(source, qat_epochs=1, qat_lr=1e-5, sensitivity=True, build_engine=False),
                   tmp_path / "build")  # fmt: skip
    summary = json.loads((tmp_path / "build" / "build_summary.json").read_text())
    assert summary["sensitivity"]["ranking"] and summary["qat"]["epochs"] == 1
    assert (tmp_path / "build" / "sensitivity.json").is_file() and result.analysis.sensitivity is not None


def test_the_weight_scales_trained_against_are_the_bn_folded_ones_hand_computed() -> None:
    """BatchNorm is folded by the export before training (w' = w * gamma / sigma per output channel), so the
    per-channel scale QAT fixes and the export writes is max|w'| / 127 = |gamma / sigma| * max|w| / 127: the
    folding factor is in the scale from the start, nothing is folded or rescaled after training."""
    conv = torch.nn.Conv2d(3, 2, 1, bias=False)
    bn = torch.nn.BatchNorm2d(2, eps=1e-5)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -4.0, 2.0], [0.5, 0.25, -0.125]]).reshape(2, 3, 1, 1))
        bn.weight.copy_(torch.tensor([2.0, -3.0]))  # gamma; a negative one flips the sign, not the scale
        bn.bias.copy_(torch.tensor([0.1, 0.2]))
        bn.running_mean.copy_(torch.tensor([0.0, 1.0]))
        bn.running_var.copy_(torch.tensor([4.0 - 1e-5, 0.25 - 1e-5]))  # sigma = 2 and 0.5 exactly
    head = torch.nn.Sequential(conv, bn, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = torch_to_onnx(head.eval(), size=4)
    assert not [n for n in proto.graph.node if n.op_type == "BatchNormalization"]  # folded by the export
    plan = plan_qdq(proto)
    net = QatNetwork(proto, plan, {t: 1.0 for t in plan.activations})
    (scales,) = net.weight_scales.values()
    by_hand = np.array([abs(2.0 / 2.0) * 4.0, abs(-3.0 / 0.5) * 0.5]) / 127  # |gamma / sigma| * max|w| / 127
    np.testing.assert_allclose(scales, by_hand, rtol=1e-6)


def test_every_variant_of_a_qat_model_keeps_its_trained_scales(network: Network) -> None:
    """Sensitivity and fallback candidates of a QAT model (layers kept in float) write the trained scales of the
    layers still INT8, never scales recomputed from the weights."""
    from edgeres.quantize.cpu_twin import exact_weight_type
    from edgeres.quantize.sensitivity import QuantizedVariants

    proto, x, ranges, plan, net = _quantized(network)
    import onnxruntime as ort

    extra = list(plan.cpu_extra)  # the twin also quantizes these conv outputs
    session = ort.InferenceSession(with_outputs(proto, extra).SerializeToString(), providers=["CPUExecutionProvider"])
    ranges = dict(ranges) | {t: float(np.abs(v).max()) for t, v in zip(extra, session.run(extra, {"input": x}),
                                                                      strict=True)}  # fmt: skip
    trained = {name: scales * np.float32(1.5) for name, scales in net.weight_scales.items()}  # unlike computed ones
    variants = QuantizedVariants(proto, plan, ranges, None, exact_weight_type(), weight_scales=trained)
    first = plan.weights[0].node
    for model in (variants.tensorrt([first]), variants.keeping([first])):
        written = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        convs = [w for w in plan.weights[1:] if w.initializer.startswith("onnx::Conv")]  # the twin's classifier
        assert len(convs) > 10  # holds dequantized values, not a scale
        for weight in convs:
            np.testing.assert_allclose(written[f"{weight.initializer}_scale"], trained[weight.initializer], rtol=1e-3)

