"""The run: outputs build takes, early stop, interrupts keep the last good checkpoint, resume and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgeres.errors import UserInputError
from edgeres.model.arch import Arch
from edgeres.model.resnet import load_model, read_state_dict
from edgeres.samples.sources import csv_items
from edgeres.train.checkpoints import RESUME_NAME, ResumeState
from edgeres.train.finetune import FinetuneData, finetune
from edgeres.train.options import FinetuneOptions, Unfreeze
from edgeres.train.trainer import TrainHooks

SIZE = 32


def quick(checkpoint: Path, **changes: object) -> FinetuneOptions:
    base: dict[str, object] = dict(arch=Arch.RESNET18, weights=checkpoint, size=SIZE, epochs=3, warmup_epochs=1,
                                   unfreeze=Unfreeze.LAYER4, batch_size=32, min_per_class=5)  # fmt: skip
    return FinetuneOptions(**(base | changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_task(photo_task: tuple[Path, Path]) -> FinetuneData:
    return FinetuneData(photo_task[1])  # the 8-per-class validation folder, split again: a fast data set


def interrupt_at(epoch: int, step: int) -> TrainHooks:
    def hook(at_epoch: int, at_step: int) -> None:
        if (at_epoch, at_step) == (epoch, step):
            raise KeyboardInterrupt("generated")

    return TrainHooks(on_step=hook)


def test_outputs_are_what_build_takes(small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path) -> None:
    result = finetune(small_task, tmp_path, quick(random_checkpoint, epochs=1))
    state = torch.load(result.model, weights_only=True)
    assert isinstance(state, dict) and "fc.weight" in state and state["fc.weight"].shape == (4, 512)
    model, _ = load_model(Arch.RESNET18, result.model, 4)  # what `edgeres build --weights ... --num-classes 4` does
    assert model.num_classes == 4
    assert (tmp_path / "classes.txt").read_text().split() == ["astronaut", "brick", "coffee", "grass"]
    items = csv_items(result.val_csv, [])  # build's own CSV reader
    assert len(items) == result.val_samples == 8 and all(item.path.is_file() for item in items)
    report = json.loads(result.report.read_text())
    assert report["split"]["val"] == 8 and report["data"]["sha256"] and report["options"]["arch"] == "resnet18"
    rows = report["validation_predictions"]
    assert [(tmp_path / r["path"]).resolve() for r in rows] == [i.path.resolve() for i in items]
    assert [r["label"] for r in rows] == [int(str(i.label)) for i in items]
    assert result.curves.read_bytes().startswith(b"\x89PNG")


def test_early_stop_on_validation_accuracy(small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path) -> None:
    # A rate too small to change any prediction: the accuracy never improves after epoch 1.
    result = finetune(small_task, tmp_path, quick(random_checkpoint, epochs=6, patience=2, lr=1e-12))
    assert result.stopped_early and result.best_epoch == 1
    assert len(json.loads(result.report.read_text())["epochs"]) == 3


def test_an_interrupt_keeps_the_last_good_checkpoint_and_resume_finishes(
    small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path
) -> None:
    options = quick(random_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        finetune(small_task, tmp_path, options, hooks=interrupt_at(epoch=1, step=0))
    saved = ResumeState.load(tmp_path / RESUME_NAME)
    assert saved.epochs_done == 1 and len(saved.history) == 1
    so_far = json.loads((tmp_path / "finetune.json").read_text())
    assert so_far["finished"] is False and len(so_far["epochs"]) == 1
    assert read_state_dict(tmp_path / "model.pth")  # the best so far, whole
    assert not list(tmp_path.glob(".edgeres-*"))  # no partial file left
    resumed = finetune(small_task, tmp_path, options, resume=True)
    report = json.loads(resumed.report.read_text())
    assert report["resumed_after_epoch"] == 1 and [e["epoch"] for e in report["epochs"]] == [1, 2, 3]
    assert report["finished"] is True

    uninterrupted = finetune(small_task, tmp_path / "again", options)
    again = json.loads(uninterrupted.report.read_text())["epochs"]
    assert [e["val_accuracy"] for e in again] == [e["val_accuracy"] for e in report["epochs"]]
    assert again[-1]["train_loss"] == pytest.approx(report["epochs"][-1]["train_loss"], rel=1e-4)


def test_a_finished_run_is_not_overwritten_without_resume(
    small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path
) -> None:
    finetune(small_task, tmp_path, quick(random_checkpoint, epochs=1))
    with pytest.raises(UserInputError, match="already holds a fine-tuning run"):
        finetune(small_task, tmp_path, quick(random_checkpoint, epochs=1))


def test_resume_refuses_other_options_or_data(
    small_task: FinetuneData, photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    finetune(small_task, tmp_path, quick(random_checkpoint, epochs=1))
    with pytest.raises(UserInputError, match=r"the run being resumed had lr = 0.001, this one has 0.01"):
        finetune(small_task, tmp_path, quick(random_checkpoint, epochs=2, lr=1e-2), resume=True)
    with pytest.raises(UserInputError, match=r"had data = '[0-9a-f]+', this one has '[0-9a-f]+'"):
        finetune(FinetuneData(photo_task[0]), tmp_path, quick(random_checkpoint, epochs=2), resume=True)
    more = finetune(small_task, tmp_path, quick(random_checkpoint, epochs=2), resume=True)  # more epochs: allowed
    assert json.loads(more.report.read_text())["resumed_after_epoch"] == 1


def test_resume_without_a_checkpoint(small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no checkpoint to resume from"):
        finetune(small_task, tmp_path, quick(random_checkpoint), resume=True)


def test_a_last_batch_of_one_sample_does_not_stop_training(
    small_task: FinetuneData, random_checkpoint: Path, tmp_path: Path
) -> None:
    """24 training images in batches of 23 leave one; at 32 px the last stage's BatchNorm sees 1x1 maps, and one
    value per channel cannot be trained on: that batch is dropped instead of stopping the run."""
    options = quick(random_checkpoint, batch_size=23, epochs=1, warmup_epochs=0)
    result = finetune(small_task, tmp_path, options)
    assert result.report_data["split"]["train"] % 23 == 1, result.report_data["split"]
    assert result.best_epoch is not None and len(result.report_data["epochs"]) == 1
