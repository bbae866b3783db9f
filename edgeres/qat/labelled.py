"""Quantization-aware training with labels: the last epochs of a fine-tune, on its own training split.

The fake-quantized network (edgeres.qat.network, ranges and weight scales fixed) learns the labels by
cross-entropy, optionally mixed with distillation toward the logits of the fine-tuned float model itself (their
relative squared error). Each epoch is validated as INT8 on the validation split; the best epoch is kept
(accuracy, ties, frequent on small validation sets, to the logits closest to the float model's: what the
fidelity gate measures), and epoch 0 is post-training quantization itself, so the record says whether training
helped. Each epoch is seeded on its own:
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
from edgeres.qat.training import predictions, relative_error, run_epoch

# With a teacher: half cross-entropy, half the squared error of the logits against the float model's, relative to
# the error post-training INT8 starts with on the training split (so both halves start near 1 whatever the
# logits' scale). Matching the logits themselves, not softened probabilities, keeps them where the float
# model's are: a KL term is blind to a shift of all the logits, and the fidelity gate measures logits SQNR.
DISTILL_WEIGHT = 0.5


@dataclass(frozen=True)
class LabelledSplit:
    """Network inputs (after the camera front-end, where there is one), their integer labels, and the float
    model's logits on them."""

    inputs: torch.Tensor
    labels: torch.Tensor
    reference: torch.Tensor

    def score(self, network: QatNetwork) -> tuple[float, float]:
        """Top-1 accuracy of `network` on this split, and its logits SQNR (dB) against the float model's."""
        logits = predictions(network, self.inputs)
        accuracy = float((logits.argmax(1) == self.labels).float().mean())
        error = float(relative_error(logits.double(), self.reference.double()))
        return accuracy, math.inf if error == 0 else -10 * math.log10(error)


EPOCH_KEYS = frozenset({"epoch", "train_loss", "val_accuracy", "val_sqnr_db", "seconds"})  # each epoch's record


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


def _loss(train: LabelledSplit, distill_from: float | None, smoothing: float) -> Callable[..., torch.Tensor]:
    """Cross-entropy; with `distill_from` (PTQ's relative logit error on the training split) the mix above."""

    def loss(outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        hard = functional.cross_entropy(outputs, train.labels[index], label_smoothing=smoothing)
        if distill_from is None:
            return hard
        soft = relative_error(outputs, train.reference[index].to(outputs.dtype)) / distill_from
        return (1 - DISTILL_WEIGHT) * hard + DISTILL_WEIGHT * soft

    return loss


def train_labelled(
    network: QatNetwork, train: LabelledSplit, val: LabelledSplit, epochs: int, lr: float, seed: int,
    smoothing: float = 0.0, distill: bool = False, state: LabelledQatState | None = None,
    saved: Callable[[LabelledQatState], None] | None = None, on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> LabelledQatState:  # fmt: skip
    """Train `network` for the epochs `state` has not done yet; the network ends on the best epoch's weights
    (the best validation accuracy, ties to the logits closest to the float model's). `saved` receives the state
    after every epoch (and after epoch 0, the untrained INT8 network's score)."""
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    if state is None or not state.history:
        accuracy, val_sqnr = val.score(network)
        start_error = float(relative_error(predictions(network, train.inputs), train.reference.float()))
        params = copy.deepcopy(network.params.state_dict())
        first = {"epoch": 0, "train_loss": None, "val_accuracy": accuracy, "val_sqnr_db": val_sqnr,
                 "train_logit_error": start_error, "seconds": 0.0}  # fmt: skip
        state = LabelledQatState(0, params, copy.deepcopy(optimizer.state_dict()), [first], 0, accuracy, params)
        if saved is not None:
            saved(state)
    else:
        network.params.load_state_dict(state.params)
        optimizer.load_state_dict(state.optimizer)
    start = state.history[0]["train_logit_error"]
    loss = _loss(train, max(start, 1e-12) if distill and start is not None else None, smoothing)
    for epoch in range(state.epochs_done + 1, epochs + 1):
        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        train_loss = run_epoch(network, optimizer, train.inputs, loss, generator)
        accuracy, val_sqnr = val.score(network)
        entry: dict[str, float | None] = {"epoch": epoch, "train_loss": train_loss, "val_accuracy": accuracy,
                                          "val_sqnr_db": val_sqnr, "seconds": time.perf_counter() - tick}  # fmt: skip
        best_sqnr = state.history[state.best_epoch]["val_sqnr_db"]
        state.history.append(entry)
        if (accuracy, val_sqnr) > (state.best_accuracy, best_sqnr if best_sqnr is not None else -math.inf):
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
