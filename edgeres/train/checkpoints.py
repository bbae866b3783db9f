"""The two checkpoints of a run, both written atomically (an interrupt leaves the previous one whole):

- `model.pth`: the best epoch's weights, a plain state_dict with torchvision's names that `edgeres build
  --weights` (and `torch.load(..., weights_only=True)`) reads;
- `last.pt`: the last finished epoch (model, optimiser, metrics so far and the run's key), what `--resume`
  continues from; also only plain tensors and containers, read with weights_only=True.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edgeres.artifacts.atomic import write_with
from edgeres.errors import CheckpointError, UserInputError
from edgeres.model.resnet import ResNet

MODEL_NAME = "model.pth"
RESUME_NAME = "last.pt"
RESUME_SCHEMA = 1


def save_model(path: Path, model: ResNet) -> None:
    """The weights as a plain state_dict on the CPU (torchvision names), written atomically."""
    state = {name: tensor.detach().to("cpu").clone() for name, tensor in model.state_dict().items()}
    write_with(path, lambda tmp: torch.save(state, tmp))


@dataclass
class ResumeState:
    """Where a run stands after its last finished epoch."""

    key: dict[str, Any]  # data fingerprints and options: a resumed run must have the same
    epochs_done: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_accuracy: float
    best_predictions: list[int]
    stopped_early: bool

    def save(self, path: Path) -> None:
        payload = {
            "schema": RESUME_SCHEMA, "key": json.dumps(self.key, sort_keys=True), "epochs_done": self.epochs_done,
            "model": self.model, "optimizer": self.optimizer, "history": json.dumps(self.history),
            "best_epoch": -1 if self.best_epoch is None else self.best_epoch, "best_accuracy": self.best_accuracy,
            "best_predictions": self.best_predictions, "stopped_early": self.stopped_early,
        }  # fmt: skip
        write_with(path, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, path: Path) -> ResumeState:
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: no checkpoint to resume from (the run never finished an epoch)")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            best = int(data["best_epoch"])
            return cls(
                key=json.loads(data["key"]), epochs_done=int(data["epochs_done"]), model=dict(data["model"]),
                optimizer=dict(data["optimizer"]), history=list(json.loads(data["history"])),
                best_epoch=None if best < 0 else best, best_accuracy=float(data["best_accuracy"]),
                best_predictions=[int(p) for p in data["best_predictions"]], stopped_early=bool(data["stopped_early"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not a fine-tuning checkpoint of this edgeres ({exc!r})") from exc
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise CheckpointError(f"{path}: cannot be read as a fine-tuning checkpoint ({type(exc).__name__})") from exc


def check_resumable(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to continue a run on other data or options, naming the first difference."""
    for name in sorted(set(saved) | set(current)):
        if saved.get(name) != current.get(name):
            raise UserInputError(
                f"{path}: the run being resumed had {name} = {saved.get(name)!r}, this one has "
                f"{current.get(name)!r}; resume with the same data and options, or start in another folder"
            )
