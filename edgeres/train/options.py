"""What `edgeres finetune` is asked to do: choices as Enums, defaults as constants, validated when made."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.fields import Fields
from edgeres.choices import parse_choice, require_fraction
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract
from edgeres.frames.images import NETWORK_SIZE
from edgeres.model.arch import DEFAULT_ARCH, Arch


class OptimizerKind(str, enum.Enum):
    ADAMW = "adamw"
    SGD = "sgd"


class Unfreeze(str, enum.Enum):
    """What trains after the head-only warm-up: the head alone, the last stage(s) too, or everything."""

    HEAD = "head"
    LAYER4 = "layer4"  # layer4 and the head
    LAYER3 = "layer3"  # layer3, layer4 and the head
    ALL = "all"


class Balance(str, enum.Enum):
    """Class-balanced sampling: on, off, or on when the classes are imbalanced (AUTO)."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class DeviceKind(str, enum.Enum):
    AUTO = "auto"  # CUDA when this torch has a usable device, else the CPU
    CPU = "cpu"
    CUDA = "cuda"


# Defaults for a few thousand images of a few dozen classes, starting from ImageNet weights.
DEFAULT_EPOCHS = 30
DEFAULT_WARMUP_EPOCHS = 2  # head only: a new random head would otherwise push large gradients into the backbone
DEFAULT_UNFREEZE = Unfreeze.LAYER4
DEFAULT_OPTIMIZER = OptimizerKind.ADAMW
DEFAULT_LR = 1e-3  # the head's; AdamW's usual fine-tuning rate
DEFAULT_BACKBONE_LR_SCALE = 0.1  # unfrozen backbone layers learn 10x slower than the new head
DEFAULT_WEIGHT_DECAY = 1e-4
DEFAULT_MOMENTUM = 0.9  # SGD only
DEFAULT_LABEL_SMOOTHING = 0.1
DEFAULT_BATCH = 32
DEFAULT_PATIENCE = 5  # epochs without a better validation accuracy before stopping
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_MIN_PER_CLASS = 5  # readable images a class needs: at least one for validation, the rest to learn from
DEFAULT_SEED = 0
DEFAULT_QAT_LR = 1e-6  # Adam, for `--qat-epochs`, as label-free QAT (docs/training.md, "Quantization-aware training")
IMBALANCE_RATIO = 1.5  # Balance.AUTO samples class-balanced when the largest class is this much the smallest
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds both take it; the head's seed stream multiplies it


def default_warmup(from_scratch: bool) -> int:
    """Head-only epochs when none are asked for: a warm-up protects pretrained features from a random head's
    first gradients; from scratch there are no features to protect."""
    return 0 if from_scratch else DEFAULT_WARMUP_EPOCHS


@dataclass(frozen=True)
class FinetuneOptions:
    """Everything that changes the trained model (recorded in finetune.json and checked on resume)."""

    arch: Arch = DEFAULT_ARCH
    weights: Path | None = None  # None: torchvision's cached checkpoint for `arch`
    from_scratch: bool = False  # random initial weights, only when asked for
    num_classes: int | None = None  # None: the number of classes found in the data
    size: int = NETWORK_SIZE  # the network's input height and width
    contract: InputContract | None = None  # camera frames: every sample takes the camera's encoding + front-end
    epochs: int = DEFAULT_EPOCHS
    warmup_epochs: int = DEFAULT_WARMUP_EPOCHS  # head only; more than `epochs`: the head alone throughout
    unfreeze: Unfreeze = DEFAULT_UNFREEZE
    optimizer: OptimizerKind = DEFAULT_OPTIMIZER
    lr: float = DEFAULT_LR
    backbone_lr_scale: float = DEFAULT_BACKBONE_LR_SCALE
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    batch_size: int = DEFAULT_BATCH
    patience: int = DEFAULT_PATIENCE
    val_fraction: float = DEFAULT_VAL_FRACTION
    min_per_class: int = DEFAULT_MIN_PER_CLASS
    balance: Balance = Balance.AUTO
    augment: bool = True
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        # inf or nan in any of these trains to NaN weights (or fails inside torch) instead of being refused
        numbers = {"learning rate": self.lr, "backbone rate scale": self.backbone_lr_scale,
                   "weight decay": self.weight_decay, "label smoothing": self.label_smoothing,
                   "validation fraction": self.val_fraction,
                   "backbone learning rate (rate x scale)": self.lr * self.backbone_lr_scale}  # fmt: skip
        for what, number in numbers.items():
            if not math.isfinite(number):
                raise UserInputError(f"{what} {number}: must be a finite number")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserInputError(f"seed {self.seed}: must be in 0..{MAX_SEED}")
        positive = {"epochs": self.epochs, "batch size": self.batch_size, "patience": self.patience,
                    "network size": self.size, "images per class": self.min_per_class}  # fmt: skip
        for what, value in positive.items():
            if value < 1:
                raise UserInputError(f"{what} {value}: must be at least 1")
        if self.min_per_class < 2:
            raise UserInputError(f"images per class {self.min_per_class}: at least 2 (one to learn, one to check)")
        if self.warmup_epochs < 0:
            raise UserInputError(f"warm-up epochs {self.warmup_epochs}: must be 0 or more")
        if self.lr <= 0 or self.weight_decay < 0 or self.backbone_lr_scale < 0:
            raise UserInputError(
                f"learning rate {self.lr}, weight decay {self.weight_decay}, backbone rate scale "
                f"{self.backbone_lr_scale}: the rate must be positive, the others at least 0"
            )
        require_fraction(self.label_smoothing, "label smoothing")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserInputError(f"validation fraction {self.val_fraction}: must be between 0 and 1")
        if self.num_classes is not None and self.num_classes < 2:
            raise UserInputError(f"{self.num_classes} classes: a classifier needs at least 2")
        if self.contract is not None and self.contract.size != self.size:
            raise UserInputError(
                f"the input contract's network size {self.contract.size} differs from the training size {self.size}"
            )
        if self.weights is not None and self.from_scratch:
            raise UserInputError(f"{self.weights}: a starting checkpoint and training from scratch exclude each other")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["contract"] = self.contract.to_dict() if self.contract is not None else None
        return {k: (v.value if isinstance(v, enum.Enum) else str(v) if isinstance(v, Path) else v)
                for k, v in data.items()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> FinetuneOptions:
        """The options `as_dict` wrote (a run's finetune.json), read typed; one line naming `where` otherwise."""
        fields = Fields.of(data, where)
        contract = fields.section("contract")
        weights = fields.get("weights", str)

        def choice(kind: type[enum.Enum], key: str) -> Any:
            return parse_choice(kind, fields.require(key, str), f"{where}: {key}")

        try:
            return cls(
                arch=choice(Arch, "arch"), weights=Path(weights) if weights else None,
                from_scratch=fields.require("from_scratch", bool), num_classes=fields.get("num_classes", int),
                size=fields.require("size", int),
                contract=None if contract is None else InputContract.from_dict(contract.data, f"{where}: contract"),
                epochs=fields.require("epochs", int), warmup_epochs=fields.require("warmup_epochs", int),
                unfreeze=choice(Unfreeze, "unfreeze"), optimizer=choice(OptimizerKind, "optimizer"),
                lr=fields.require("lr", float), backbone_lr_scale=fields.require("backbone_lr_scale", float),
                weight_decay=fields.require("weight_decay", float),
                label_smoothing=fields.require("label_smoothing", float), batch_size=fields.require("batch_size", int),
                patience=fields.require("patience", int), val_fraction=fields.require("val_fraction", float),
                min_per_class=fields.require("min_per_class", int), balance=choice(Balance, "balance"),
                augment=fields.require("augment", bool), seed=fields.require("seed", int),
            )  # fmt: skip
        except UserInputError as exc:
            raise UserInputError(f"{where}: {exc}") from None

    def training_key(self) -> dict[str, Any]:
        """The options a resumed run must share with the one it continues (epochs may grow, patience change)."""
        data = self.as_dict()
        for free in ("epochs", "patience"):
            data.pop(free)
        return data
