"""One epoch of quantization-aware training: shuffled mini-batches of the network's inputs, a loss, a step.

Label-free distillation (edgeres.qat.distill) and training with labels (edgeres.qat.labelled) differ only in
their loss; both train the same fake-quantized network with its ranges and weight scales fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from edgeres.qat.network import QatNetwork

BATCH = 16

# The loss of a batch: the network's outputs for it and the indices of its samples in the epoch's inputs.
BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_epoch(
    network: QatNetwork, optimizer: torch.optim.Optimizer, inputs: torch.Tensor, loss_of: BatchLoss,
    generator: torch.Generator, batch: int = BATCH,
) -> float:  # fmt: skip
    """One pass over `inputs` in a shuffled order; the mean loss per sample."""
    network.train()
    order = torch.randperm(len(inputs), generator=generator)
    total = 0.0
    for start in range(0, len(inputs), batch):
        index = order[start : start + batch]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(network(inputs[index]), index)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(index)
    return total / len(inputs)


def predictions(network: QatNetwork, inputs: torch.Tensor, batch: int = BATCH * 4) -> torch.Tensor:
    """The network's logits for `inputs`, without gradients."""
    network.eval()
    with torch.no_grad():
        return torch.cat([network(inputs[start : start + batch]) for start in range(0, len(inputs), batch)])


def relative_error(outputs: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error of `outputs` against `reference`, relative to the reference's mean power: the logit
    error both label-free QAT and distillation minimise."""
    return torch.mean((outputs - reference) ** 2) / torch.mean(reference**2)

