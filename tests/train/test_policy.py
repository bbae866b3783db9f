"""The fine-tuning policy: starting weights, the new head, freezing, the schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgeres.errors import CheckpointError
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model
from edgeres.train.options import FinetuneOptions, Unfreeze
from edgeres.train.policy import (
    RandomStartError,
    apply_freezing,
    cosine_factor,
    initial_model,
    make_optimizer,
    set_epoch_rate,
    trainable_stages,
)


def options(**changes: object) -> FinetuneOptions:
    return FinetuneOptions(arch=Arch.RESNET18, **changes)  # type: ignore[arg-type]


def test_head_is_replaced_for_n_classes_and_the_backbone_kept(random_checkpoint: Path) -> None:
    model, source = initial_model(options(weights=random_checkpoint), 51)
    state = torch.load(random_checkpoint, weights_only=True)
    assert source == str(random_checkpoint) and model.num_classes == 51
    assert model.fc.weight.shape == (51, 512) and model(torch.zeros(1, 3, 64, 64)).shape == (1, 51)
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert set(model.state_dict()) == set(state)  # torchvision names throughout


def test_a_checkpoint_with_the_same_class_count_keeps_its_head(tmp_path: Path) -> None:
    path = tmp_path / "mine.pth"
    torch.save(build_model(Arch.RESNET18, 7, seed=5).state_dict(), path)
    model, _ = initial_model(options(weights=path), 7)
    assert torch.equal(model.fc.weight, torch.load(path, weights_only=True)["fc.weight"])


def test_the_new_head_is_seeded(random_checkpoint: Path) -> None:
    first, _ = initial_model(options(weights=random_checkpoint), 5)
    second, _ = initial_model(options(weights=random_checkpoint), 5)
    assert torch.equal(first.fc.weight, second.fc.weight)


def test_random_weights_are_refused_unless_asked_for(empty_hub: Path) -> None:
    with pytest.raises(RandomStartError, match=r"no starting checkpoint for resnet18: none given and none in"):
        initial_model(options(), 3)
    model, source = initial_model(options(from_scratch=True), 3)
    assert source is None and model.num_classes == 3


def test_the_cached_torchvision_checkpoint_is_the_default(empty_hub: Path) -> None:
    (empty_hub / "checkpoints").mkdir()
    cached = empty_hub / "checkpoints" / "resnet18-f37072fd.pth"
    torch.save(build_model(Arch.RESNET18, 1000, seed=2).state_dict(), cached)
    _, source = initial_model(options(), 3)
    assert source == str(cached)


def test_a_checkpoint_that_is_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match=r"list\.pth: no state_dict found"):
        initial_model(options(weights=path), 3)
    path.write_bytes(b"garbage, not a zip")
    with pytest.raises(CheckpointError, match=r"list\.pth: refused to load"):
        initial_model(options(weights=path), 3)


@pytest.mark.parametrize(
    ("unfreeze", "later"),
    [(Unfreeze.HEAD, set()), (Unfreeze.LAYER4, {"layer4"}), (Unfreeze.LAYER3, {"layer3", "layer4"}),
     (Unfreeze.ALL, {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"})],
)  # fmt: skip
def test_head_only_warm_up_then_the_chosen_stages(unfreeze: Unfreeze, later: set[str]) -> None:
    chosen = options(unfreeze=unfreeze, warmup_epochs=2, from_scratch=True)
    assert trainable_stages(chosen, 0) == trainable_stages(chosen, 1) == ("fc",)
    assert set(trainable_stages(chosen, 2)) == later | {"fc"}


def test_frozen_stages_get_no_gradient_and_keep_their_batchnorm_statistics() -> None:
    model = build_model(Arch.RESNET18, 3).train()
    apply_freezing(model, ("layer4", "fc"))
    assert not model.layer3.training and not model.bn1.training and model.layer4.training
    assert all(not p.requires_grad for p in model.layer3.parameters())
    assert all(p.requires_grad for p in model.layer4.parameters())
    before = model.layer1[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert model.layer1[0].conv1.weight.grad is None and model.layer4[0].conv1.weight.grad is not None
    assert torch.equal(model.layer1[0].bn1.running_mean, before)


def test_cosine_schedule_and_backbone_rate() -> None:
    chosen = options(lr=1e-2, backbone_lr_scale=0.1, epochs=4, from_scratch=True)
    optimizer = make_optimizer(build_model(Arch.RESNET18, 3), chosen)
    assert cosine_factor(0, 4) == 1.0 and cosine_factor(2, 4) == pytest.approx(0.5)
    assert set_epoch_rate(optimizer, 2, 4) == pytest.approx(5e-3)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(5e-4)
