"""The two checkpoints of a run, both written atomically (an interrupt leaves the previous one whole):

- `model.pth`: the best epoch's weights, a plain state_dict with torchvision's names that `edgeres build
  --weights` (and `torch.load(..., weights_only=True)`) reads;
- `last.pt`: the last finished epoch (model, optimiser, metrics so far and the run's key), what `--resume`
  continues from; also only plain tensors and containers, read with weights_only=True.

Both are serialised in memory and then written as bytes: torch.save writing a file itself reports a full disk
as "RuntimeError: unexpected pos", where a plain write reports the file and "No space left on device".
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeres.artifacts.atomic import write_with
from edgeres.artifacts.kinds import FINETUNE_MODEL_NAME
from edgeres.errors import CheckpointError, UserInputError
from edgeres.model.resnet import ResNet, check_state_dict, non_finite

MODEL_NAME = FINETUNE_MODEL_NAME
RESUME_NAME = "last.pt"
RESUME_SCHEMA = 1


def save_atomic(path: Path, payload: object) -> None:
    """`payload` as torch.save writes it, in memory first, then written atomically (see the module doc)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)

    def write(tmp: Path) -> None:
        tmp.write_bytes(buffer.getbuffer())

    write_with(path, write)


def save_model(path: Path, model: ResNet) -> None:
    """The weights as a plain state_dict on the CPU (torchvision names), written atomically."""
    save_atomic(path, {name: tensor.detach().to("cpu").clone() for name, tensor in model.state_dict().items()})


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
        save_atomic(path, payload)

    @classmethod
    def load(cls, path: Path) -> ResumeState:
        path = Path(path)
        if not path.is_file():
            raise UserInputError(f"{path}: no checkpoint to resume from (the run never finished an epoch)")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            best = int(data["best_epoch"])
            state = cls(
                key=json.loads(data["key"]), epochs_done=int(data["epochs_done"]), model=dict(data["model"]),
                optimizer=dict(data["optimizer"]), history=list(json.loads(data["history"])),
                best_epoch=None if best < 0 else best, best_accuracy=float(data["best_accuracy"]),
                best_predictions=[int(p) for p in data["best_predictions"]], stopped_early=bool(data["stopped_early"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: not a fine-tuning checkpoint of this edgeres ({exc!r})") from exc
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
            raise CheckpointError(f"{path}: cannot be read as a fine-tuning checkpoint ({type(exc).__name__})") from exc
        if state.epochs_done < 1 or not math.isfinite(state.best_accuracy):
            raise CheckpointError(
                f"{path}: not a fine-tuning checkpoint of this edgeres ({state.epochs_done} epochs done, best "
                f"accuracy {state.best_accuracy})"
            )
        return state

    def restore(self, model: ResNet, optimizer: torch.optim.Optimizer, path: Path) -> None:
        """Load the model and optimiser state into this run's, refusing any tensor of another shape or with a
        NaN or infinity by name (torch would fail with "size mismatch", or train on NaN silently)."""
        check_state_dict(model, self.model, path)
        check_optimizer_state(optimizer, self.optimizer, _parameter_names(model, optimizer), path)
        model.load_state_dict(self.model, strict=True)
        try:
            optimizer.load_state_dict(self.optimizer)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: the optimiser state does not fit this run ({exc})") from exc


def check_resumable(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to continue a run on other data or options, naming the first difference."""
    for name in sorted(set(saved) | set(current)):
        if saved.get(name) != current.get(name):
            raise UserInputError(
                f"{path}: the run being resumed had {name} = {saved.get(name)!r}, this one has "
                f"{current.get(name)!r}; resume with the same data and options, or start in another folder"
            )


def _parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The model's name of each parameter the optimiser holds, in the optimiser's order."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return [names.get(id(p), "?") for group in optimizer.param_groups for p in group["params"]]


def check_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict[str, Any], names: Sequence[str],
                          path: Path) -> None:  # fmt: skip
    """Refuse a saved optimiser state that does not fit `optimizer`: its groups, each state tensor's shape
    (checked by torch only at the first step, as a shape error naming no file) and finite numbers throughout."""
    groups, state = saved.get("param_groups"), saved.get("state")
    if not isinstance(groups, list) or not isinstance(state, dict):
        raise CheckpointError(f"{path}: the optimiser state has no parameter groups")
    have = [len(group["params"]) for group in optimizer.param_groups]
    found = [len(group.get("params", ())) if isinstance(group, dict) else -1 for group in groups]
    if found != have:
        raise CheckpointError(f"{path}: the optimiser state has parameter groups of {found} tensors, this run {have}")
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    saved_ids = [index for group in groups for index in group["params"]]
    for index, parameter, name in zip(saved_ids, parameters, names, strict=True):
        entries = state.get(index, {})
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if not isinstance(value, torch.Tensor):
                continue
            if value.ndim > 0 and tuple(value.shape) != tuple(parameter.shape):
                raise CheckpointError(f"{path}: optimiser state '{key}' of '{name}' has shape {tuple(value.shape)}, "
                                      f"expected {tuple(parameter.shape)}")  # fmt: skip
            problem = non_finite(value)
            if problem is not None:
                raise CheckpointError(f"{path}: optimiser state '{key}' of '{name}' {problem}")
    for number, group in enumerate(groups):
        for key, value in group.items():
            numbers = value if isinstance(value, tuple) else (value,)  # AdamW's betas are a pair
            if any(isinstance(n, float) and not math.isfinite(n) for n in numbers):
                raise CheckpointError(f"{path}: optimiser parameter group {number} has {key} = {value}")
