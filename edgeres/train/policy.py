"""The fine-tuning policy: the starting weights, the new head, what is frozen when, the optimiser and its schedule.

The model starts from a checkpoint (given, or torchvision's cached one) and only from random weights when
that is asked for; a head of another class count is replaced by a fresh one for the product's classes.
Epochs before `warmup_epochs` train the head alone; then the stages chosen by `Unfreeze` join it, at the
backbone's lower rate. Frozen stages stay in eval mode, so their BatchNorm statistics stay the checkpoint's.
The rate follows one cosine curve over all epochs, evaluated per epoch (so a resumed run recomputes it).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from edgeres.errors import UserInputError
from edgeres.model.arch import DEFAULT_NUM_CLASSES, Arch
from edgeres.model.resnet import (
    ResNet,
    build_model,
    checkpoint_num_classes,
    feature_width,
    load_weights,
    read_state_dict,
    torchvision_cache_checkpoint,
)
from edgeres.train.options import DEFAULT_MOMENTUM, FinetuneOptions, OptimizerKind, Unfreeze

STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
TRAINED_AFTER_WARMUP: dict[Unfreeze, tuple[str, ...]] = {
    Unfreeze.HEAD: (),
    Unfreeze.LAYER4: ("layer4",),
    Unfreeze.LAYER3: ("layer3", "layer4"),
    Unfreeze.ALL: STAGES,
}
HEAD = "fc"
_HEAD_SEED_STREAM = 3


class RandomStartError(UserInputError):
    """No starting checkpoint, and training from random weights was not asked for."""


def starting_checkpoint(arch: Arch, weights: Path | None, from_scratch: bool) -> Path | None:
    """The checkpoint to start from (None: random weights, only with `from_scratch`)."""
    if weights is not None or from_scratch:
        return weights
    cached = torchvision_cache_checkpoint(arch)
    if cached is None:
        raise RandomStartError(
            f"no starting checkpoint for {Arch(arch).value}: none given and none in torchvision's cache "
            f"({Path(torch.hub.get_dir()) / 'checkpoints'}); fine-tuning random weights learns little from a few "
            "thousand images, so it must be asked for"
        )
    return cached


def replace_head(model: ResNet, num_classes: int, seed: int) -> None:
    """A fresh fc layer for `num_classes` (seeded), as torchvision initialises nn.Linear."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 7919 + _HEAD_SEED_STREAM)
        model.fc = nn.Linear(feature_width(model.arch), num_classes)
    model.num_classes = num_classes


def initial_model(options: FinetuneOptions, num_classes: int) -> tuple[ResNet, str | None]:
    """The model training starts from, with a head for `num_classes`, and the checkpoint it came from."""
    checkpoint = starting_checkpoint(options.arch, options.weights, options.from_scratch)
    if checkpoint is None:
        return build_model(options.arch, num_classes, options.seed), None
    state = read_state_dict(checkpoint)
    found = checkpoint_num_classes(state) or DEFAULT_NUM_CLASSES
    model = build_model(options.arch, found, options.seed)
    load_weights(model, state, checkpoint)
    if found != num_classes:
        replace_head(model, num_classes, options.seed)
    return model, str(checkpoint)


def trainable_stages(options: FinetuneOptions, epoch: int) -> tuple[str, ...]:
    """Top-level modules that learn during `epoch` (0-based): the head, plus the unfrozen stages after warm-up."""
    later = TRAINED_AFTER_WARMUP[options.unfreeze] if epoch >= options.warmup_epochs else ()
    return (*later, HEAD)


def apply_freezing(model: ResNet, stages: tuple[str, ...]) -> None:
    """requires_grad and train/eval mode per top-level module: only `stages` learn and update BatchNorm."""
    for name, module in model.named_children():
        trains = name in stages
        module.train(trains)
        for parameter in module.parameters():
            parameter.requires_grad_(trains)


def make_optimizer(model: ResNet, options: FinetuneOptions) -> torch.optim.Optimizer:
    """Two parameter groups (head; backbone at `backbone_lr_scale`); frozen parameters simply get no gradient."""
    head = list(model.fc.parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [
        {"params": head, "lr": options.lr, "base_lr": options.lr},
        {"params": backbone, "lr": options.lr * options.backbone_lr_scale,
         "base_lr": options.lr * options.backbone_lr_scale},
    ]  # fmt: skip
    if options.optimizer is OptimizerKind.SGD:
        return torch.optim.SGD(
            groups, lr=options.lr, momentum=DEFAULT_MOMENTUM, weight_decay=options.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(groups, lr=options.lr, weight_decay=options.weight_decay)


def cosine_factor(epoch: int, epochs: int) -> float:
    """The share of the base rate during `epoch` (0-based): 1 at the start, falling along a cosine towards 0."""
    return 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))


def set_epoch_rate(optimizer: torch.optim.Optimizer, epoch: int, epochs: int) -> float:
    """Set each group's rate for `epoch`; the head's rate is returned."""
    factor = cosine_factor(epoch, epochs)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return float(optimizer.param_groups[0]["lr"])
