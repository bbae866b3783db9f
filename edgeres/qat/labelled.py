"""Quantization-aware training with labels: the last epochs of a fine-tune, on its own training split.

The fake-quantized network (edgeres.qat.network, ranges and weight scales fixed) learns the labels by
cross-entropy, optionally mixed with distillation toward the logits of the fine-tuned float model itself (their
relative squared error). Each epoch is validated as INT8 on the validation split; the best epoch is kept
(accuracy, ties broken by the lower validation loss: small validation sets tie often), and epoch 0 is
post-training quantization itself, so the record says whether training helped. Each epoch is seeded on its own:
a run resumed after any epoch repeats what an uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional

from edgeres.qat.network import QatNetwork
from edgeres.qat.training import predictions, run_epoch

# With a teacher: half cross-entropy, half the logits' error relative to their power. Matching the logits
# themselves, not softened probabilities, keeps them where the float model's are: a KL term is blind to a shift
# of all the logits, and the fidelity gate measures logits SQNR.
DISTILL_WEIGHT = 0.5


@dataclass(frozen=True)
class LabelledSplit:
    """Network inputs (after the camera front-end, where there is one) with their integer labels."""

    inputs: torch.Tensor
    labels: torch.Tensor

    def score(self, network: QatNetwork) -> tuple[float, float]:
        """Top-1 accuracy and mean cross-entropy of `network` on this split."""
        logits = predictions(network, self.inputs)
        accuracy = float((logits.argmax(1) == self.labels).float().mean())
        return accuracy, float(functional.cross_entropy(logits, self.labels))


@dataclass
class LabelledQatState:
    """Where a labelled QAT run stands after its last finished epoch (what a resumed run continues from)."""

    epochs_done: int = 0
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float | None]] = field(default_factory=list)  # per epoch; epoch 0: PTQ, no loss
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_params: dict[str, torch.Tensor] = field(default_factory=dict)


def _loss(train: LabelledSplit, teacher: torch.Tensor | None, smoothing: float) -> Callable[..., torch.Tensor]:
    power = None if teacher is None else float((teacher**2).mean())

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        hard = functional.cross_entropy(outputs, train.labels[index], label_smoothing=smoothing)
        if teacher is None or power is None:
            return hard
        soft = torch.mean((outputs - teacher[index]) ** 2) / power  # label-free QAT's loss (edgeres.qat.distill)
        return (1 - DISTILL_WEIGHT) * hard + DISTILL_WEIGHT * soft

    return loss


def train_labelled(
    network: QatNetwork, train: LabelledSplit, val: LabelledSplit, epochs: int, lr: float, seed: int,
    smoothing: float = 0.0, teacher: torch.Tensor | None = None, state: LabelledQatState | None = None,
    saved: Callable[[LabelledQatState], None] | None = None, on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> LabelledQatState:  # fmt: skip
    """Train `network` for the epochs `state` has not done yet; the network ends on the best epoch's weights.
    `saved` receives the state after every epoch (and after epoch 0, the untrained INT8 network's score)."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    if state is None or not state.history:
        accuracy, val_loss = val.score(network)
        params = copy.deepcopy(network.params.state_dict())
        first = {"epoch": 0, "train_loss": None, "val_accuracy": accuracy, "val_loss": val_loss, "seconds": 0.0}
        state = LabelledQatState(0, params, copy.deepcopy(optimizer.state_dict()), [first], 0, accuracy, params)
        if saved is not None:
            saved(state)
    else:
        network.params.load_state_dict(state.params)
        optimizer.load_state_dict(state.optimizer)
    loss = _loss(train, teacher, smoothing)
    for epoch in range(state.epochs_done + 1, epochs + 1):
        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        train_loss = run_epoch(network, optimizer, train.inputs, loss, generator)
        accuracy, val_loss = val.score(network)
        entry: dict[str, float | None] = {"epoch": epoch, "train_loss": train_loss, "val_accuracy": accuracy,
                                          "val_loss": val_loss, "seconds": time.perf_counter() - tick}  # fmt: skip
        best_loss = state.history[state.best_epoch]["val_loss"]
        state.history.append(entry)
        if (accuracy, -val_loss) > (state.best_accuracy, -(best_loss if best_loss is not None else math.inf)):
            state.best_epoch, state.best_accuracy = epoch, accuracy
            state.best_params = copy.deepcopy(network.params.state_dict())
        state.epochs_done = epoch
        state.params = copy.deepcopy(network.params.state_dict())
        state.optimizer = copy.deepcopy(optimizer.state_dict())
        if saved is not None:
            saved(state)
        if on_epoch is not None:
            on_epoch(entry)
    network.params.load_state_dict(state.best_params)
    return state
