"""The doctor's own model: a tiny seeded classifier built with onnx.helper (Conv -> Relu -> GlobalAveragePool
-> Flatten -> Gemm), its FP16 and INT8 Q/DQ variants made by edgeres's own quantizers, and seeded inputs.

Small enough to build as a TensorRT engine in seconds on a Jetson, shaped like an edgeres export (input
"input" float [batch, 3, S, S], output "logits" [batch, N]), so the engine checks exercise the parser, the
strongly typed builder, Q/DQ and the runner as a ResNet50 would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeres.artifacts.atomic import write_bytes_atomic
from edgeres.artifacts.onnx import load_onnx
from edgeres.export.opsets import DEFAULT_OPSET

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
SIZE = 16  # input height and width
CHANNELS = 8  # Conv output channels
CLASSES = 10
BATCH = 4  # samples per comparison; the engines' profile covers 1..BATCH
SEED = 0
IR_VERSION = 8  # what TensorRT 8.6's and 10.x's ONNX parsers read (onnx >= 1.16 would write a newer one)


def tiny_classifier(seed: int = SEED) -> onnx.ModelProto:
    """[batch, 3, SIZE, SIZE] -> [batch, CLASSES] float32 with seeded weights; checked by onnx's checker."""
    rng = np.random.default_rng(seed)
    weights = {
        "conv_w": rng.normal(0, 0.5, (CHANNELS, 3, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, CHANNELS).astype(np.float32),
        "fc_w": rng.normal(0, 1.0, (CLASSES, CHANNELS)).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, CLASSES).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "conv_w", "conv_b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], [OUTPUT_NAME], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "edgeres-doctor",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", CLASSES])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)], producer_name="edgeres")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def sample_batch(seed: int = SEED, batch: int = BATCH) -> np.ndarray:
    """Seeded standard-normal inputs (what an ImageNet-normalised picture roughly is), float32."""
    return np.random.default_rng(seed + 1).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)


def fp16_variant(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and compute in FP16, float32 input and output: what `edgeres build --fp16` writes."""
    from edgeres.quantize.fp16 import to_fp16  # edgeres.quantize pulls OpenCV: see engine_checks

    return to_fp16(model)


def int8_variant(fp32_path: Path, batch: np.ndarray) -> onnx.ModelProto:
    """TensorRT's S8S8 Q/DQ placement with float32 scales, ranges calibrated (max) on `batch`: what
    `edgeres build` writes for TensorRT, minus the choices a real build makes."""
    from edgeres.quantize.calibrate import collect_ranges  # imports onnxruntime, which a check may find broken
    from edgeres.quantize.histogram import CalibAlgo
    from edgeres.quantize.qdq import insert_qdq, plan_qdq

    model = load_onnx(fp32_path)
    plan = plan_qdq(model)
    ranges = collect_ranges(fp32_path, [batch], CalibAlgo.MAX, list(plan.activations))
    return insert_qdq(model, plan, ranges)


def save(model: onnx.ModelProto, path: Path) -> Path:
    write_bytes_atomic(path, model.SerializeToString())
    return path
