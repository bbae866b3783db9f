"""The ResNet depths edgeres builds, named as torchvision names them (no torch here: the CLI parses it)."""

from __future__ import annotations

import enum


class Arch(str, enum.Enum):
    RESNET18 = "resnet18"
    RESNET34 = "resnet34"
    RESNET50 = "resnet50"
    RESNET101 = "resnet101"
    RESNET152 = "resnet152"


DEFAULT_ARCH = Arch.RESNET50  # the product network
DEFAULT_NUM_CLASSES = 1000  # ImageNet-1k
