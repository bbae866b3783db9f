"""Label-free quantization-aware training: the fake-quantized network learns the FP32 model's logits.

On the calibration samples (no labels needed), the INT8 network of edgeres.qat.network is trained to give the
logits the FP32 model gives, with the calibrated ranges and the weight scales fixed, BatchNorm folded (so its
statistics cannot drift). Then the export: the trained weights into the FP32 graph, the Q/DQ models written with
the same scales, and a parity gate that runs the written Q/DQ model (FP32 remainder, onnxruntime's reference
arithmetic) against the PyTorch network on held-out samples and refuses a mismatch, naming the first tensor
where the two part.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch

from edgeres.artifacts.fields import json_number
from edgeres.errors import EdgeresError
from edgeres.qat.network import QatNetwork, with_values
from edgeres.qat.training import run_epoch
from edgeres.quantize.fidelity import Kernels, exposing_session, model_logits, sqnr_db
from edgeres.quantize.qdq import QdqPlan, ScaleGrid, insert_qdq

# Each node of the trained network against the exported Q/DQ model's, fed the exported model's own tensors: the
# two differ by float summation order and the rare code that order tips over (measured worst node 73-85 dB on a
# ResNet18), while the same weights exported with scales recomputed from them differ by 38-41 dB at the first
# conv. The logits alone would not tell these apart: there a single tipped code is carried on and grows (the
# Q/DQ model against itself on inputs moved by 1e-6: 34 dB on a random-weight ResNet18).
PARITY_MIN_SQNR_DB = 55.0
PARITY_SAMPLES = 64  # held-out samples the parity gate runs node by node


class QatParityError(EdgeresError):
    """The exported Q/DQ model does not compute what was trained."""


@dataclass(frozen=True)
class QatResult:
    """The trained float model, the weight scales it was trained against, and how training and parity went."""

    model: onnx.ModelProto
    weight_scales: Mapping[str, np.ndarray]
    epochs: int
    samples: int
    losses: tuple[float, ...]  # per epoch: mean squared logit error against FP32, relative to the logits' power
    seconds: float
    parity_sqnr_db: float
    parity_agreement: float

    def describe(self) -> str:
        return (
            f"quantization-aware training: {self.epochs} epochs on {self.samples} calibration samples "
            f"({self.seconds:.1f} s), relative logit error {self.losses[0]:.3g} -> {self.losses[-1]:.3g}; the "
            f"export computes what was trained (worst node {self.parity_sqnr_db:.0f} dB)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "samples": self.samples,
            "relative_logit_mse": list(self.losses),
            "seconds": round(self.seconds, 2),
            "parity": {
                "sqnr_db": json_number(self.parity_sqnr_db),
                "top1_agreement": self.parity_agreement,
                "against": "the Q/DQ model with an FP32 remainder, onnxruntime reference arithmetic",
                "min_sqnr_db": PARITY_MIN_SQNR_DB,
            },
            "method": "distillation toward the FP32 logits on the calibration samples; ranges and weight scales "
            "fixed at calibration, BatchNorm folded",
        }


def _train(
    network: QatNetwork, inputs: np.ndarray, targets: np.ndarray, epochs: int, lr: float, seed: int
) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    x, y = torch.from_numpy(inputs), torch.from_numpy(targets.astype(np.float32))
    power = float((y**2).mean())

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # relative to the whole set's power
        return torch.mean((outputs - y[index]) ** 2) / power

    return [run_epoch(network, optimizer, x, loss, generator) for _ in range(epochs)]


def network_inputs(model: onnx.ModelProto, network: QatNetwork, inputs: np.ndarray) -> np.ndarray:
    """What `network` takes for the model inputs `inputs`: themselves, or the camera front-end's output (float,
    computed by onnxruntime once: the front-end does not train)."""
    if network.input_name == network.model_input:
        return np.asarray(inputs, np.float32)
    session = exposing_session(model, [network.input_name], 1)
    return np.asarray(session.run([network.input_name], {network.model_input: inputs})[0], np.float32)


def node_parity(network: QatNetwork, exported: onnx.ModelProto, inputs: np.ndarray) -> list[tuple[str, float]]:
    """SQNR of every node output of the trained network against the exported model's on the model inputs
    `inputs`, each node fed the exported model's own tensors (so a difference is that node's arithmetic, not one
    carried from an earlier flip)."""
    names = list(dict.fromkeys([n.output[0] for n in network.nodes]))
    exposed = names + ([network.input_name] if network.input_name != network.model_input else [])
    session = exposing_session(exported, exposed, 1, Kernels.REFERENCE)
    theirs = dict(zip(exposed, session.run(exposed, {network.model_input: inputs}), strict=True))
    values = {name: torch.from_numpy(np.asarray(value)) for name, value in theirs.items()}
    values.setdefault(network.input_name, torch.from_numpy(np.asarray(inputs)))
    measured = []
    with torch.no_grad():
        for node in network.nodes:
            ours = network.node_output(node, values).numpy().astype(np.float64)
            reference = np.asarray(theirs[node.output[0]], np.float64)
            noise = float(np.sum((ours - reference) ** 2))
            measured.append((node.output[0], sqnr_db(float(np.sum(reference**2)), noise)))
    return measured


def check_parity(network: QatNetwork, exported: onnx.ModelProto, inputs: np.ndarray) -> float:
    """The worst node SQNR of `node_parity`; QatParityError naming the first node below the limit."""
    measured = node_parity(network, exported, inputs)
    failing = [(name, value) for name, value in measured if value < PARITY_MIN_SQNR_DB]
    if failing:
        name, value = failing[0]
        raise QatParityError(
            f"the exported Q/DQ model does not compute what was trained: {name} differs at {value:.1f} dB "
            f"(at least {PARITY_MIN_SQNR_DB:g} dB needed, each node fed the same inputs)"
        )
    return min(value for _, value in measured)


@dataclass(frozen=True)
class TrainedExport:
    """The trained float model and how its Q/DQ export compares with the trained network."""

    model: onnx.ModelProto
    parity_sqnr_db: float  # the worst node (edgeres.qat.distill.check_parity)
    parity_agreement: float  # top-1 of the trained network vs the exported Q/DQ model


def export_trained(
    model: onnx.ModelProto, network: QatNetwork, plan: QdqPlan, ranges: Mapping[str, float], check: np.ndarray
) -> TrainedExport:
    """The trained weights written into `model`, its Q/DQ model written at the trained-against scales, and the
    parity gate on the model inputs `check` (QatParityError when the export computes something else)."""
    trained = with_values(model, network.trained_values())
    exported = insert_qdq(trained, plan, ranges, grid=network.grid, weight_scales=network.weight_scales)
    worst = check_parity(network, exported, check)
    with torch.no_grad():
        network.eval()
        ours = network(torch.from_numpy(network_inputs(model, network, check))).numpy()
    theirs = model_logits(exported, [check], Kernels.REFERENCE)[0]
    return TrainedExport(trained, worst, float(np.mean(ours.argmax(1) == theirs.argmax(1))))


def quantization_aware(
    model: onnx.ModelProto,
    plan: QdqPlan,
    ranges: Mapping[str, float],
    calibration: Sequence[np.ndarray],
    held_out: Sequence[np.ndarray],
    epochs: int,
    lr: float,
    seed: int = 0,
    grid: ScaleGrid = ScaleGrid.FP32,
) -> QatResult:
    """Train the INT8 network of `model` (as `plan` quantizes it at `ranges`) toward the FP32 logits on the
    `calibration` batches (model inputs: RGB floats or camera frames), export it, and check the export on the
    `held_out` batches."""
    tick = time.perf_counter()
    torch.manual_seed(seed)
    frames = np.concatenate([np.asarray(batch) for batch in calibration])
    targets = np.concatenate(model_logits(model, [frames]))
    network = QatNetwork(model, plan, ranges, grid)
    losses = _train(network, network_inputs(model, network, frames), targets, epochs, lr, seed)
    check = np.concatenate([np.asarray(batch) for batch in held_out])
    export = export_trained(model, network, plan, ranges, check)
    return QatResult(export.model, dict(network.weight_scales), epochs, len(frames), tuple(losses),
                     time.perf_counter() - tick, export.parity_sqnr_db, export.parity_agreement)  # fmt: skip
