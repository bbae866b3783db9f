"""A small real task: each class is one shipped photograph, samples are crops of it (flipped at random).

Training crops come from the top 60% of each photograph, validation crops from the bottom 40%, so no
validation pixel was ever seen in training. A random ResNet18 state_dict stands in for a pretrained checkpoint
(no download); tests that need "no checkpoint at all" point torch's hub cache at an empty folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from edgeres.export.onnx_export import INPUT_NAME, torch_to_onnx, write_export
from edgeres.export.opsets import DEFAULT_OPSET
from edgeres.export.parity import ParityTolerance, check_parity, parity_batch
from edgeres.frames.contract import InputContract, InputSpec
from edgeres.frames.images import default_calibration_dir, read_rgb
from edgeres.frontend.graph import attach_frontend
from edgeres.model.arch import Arch
from edgeres.model.resnet import build_model, load_model

PHOTOS = ("astronaut", "brick", "coffee", "grass")  # 4 classes: chance is 25%
TRAIN_SHARE = 0.6
CROP_SIDE = 96


def crops(rgb: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = rgb.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.integers(min(h, w) // 3, min(h, w) // 2 + 1))
        side = min(side, h, w)
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        window = rgb[top : top + side, left : left + side]
        crop = cv2.resize(window, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
        out.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return out


def write_task(root: Path, train_per_class: int = 32, val_per_class: int = 8, seed: int = 0) -> tuple[Path, Path]:
    """root/train/<photo>/*.jpg and root/val/<photo>/*.jpg; returns (train folder, val folder)."""
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        rgb = read_rgb(default_calibration_dir() / f"{name}.jpg")
        cut = round(rgb.shape[0] * TRAIN_SHARE)
        for part, region, count in (("train", rgb[:cut], train_per_class), ("val", rgb[cut:], val_per_class)):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for index, crop in enumerate(crops(region, count, rng)):
                cv2.imwrite(str(folder / f"{index:03d}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return root / "train", root / "val"


def write_random_checkpoint(path: Path, arch: Arch = Arch.RESNET18, classes: int = 1000) -> Path:
    torch.save(build_model(arch, classes, seed=1).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def photo_task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_task(tmp_path_factory.mktemp("photo_task"))


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("ckpt") / "resnet18_random.pth")


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch's hub cache pointed at an empty folder: no torchvision checkpoint can be found."""
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    return hub


def export_at(weights: Path, classes: int, size: int, output: Path, contract: InputContract | None = None) -> Path:
    """The trained model as an FP32 ONNX at the training size (build's own export is fixed at 224), with the
    camera front-end fused in front for a contract, and the sidecar build reads (weights, input)."""
    model, used = load_model(Arch.RESNET18, weights, classes)
    proto = torch_to_onnx(model, size=size)
    parity = check_parity(model, proto.SerializeToString(), parity_batch(None, size=size), ParityTolerance())
    spec = InputSpec.rgb(INPUT_NAME, size)
    if contract is not None:
        proto, spec = attach_frontend(proto, contract), InputSpec.frames(contract)
    write_export(output, proto.SerializeToString(), model, used, DEFAULT_OPSET, parity, ParityTolerance(), spec)
    return output


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Training tests on a shared 2-core machine: one thread never spins against the other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
