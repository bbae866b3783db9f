"""Fine-tuning really learns, and `edgeres build` sees exactly what finetune validated on.

The task (tests/train/conftest.py): 4 classes = 4 shipped photographs, samples = crops of them, validation
crops from a part of each photograph no training crop touches. ResNet18 at 64x64 from a random checkpoint,
seeded; chance is 25%.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.precision import Precision
from edgeres.cli.app import app
from edgeres.flow.options import BuildOptions
from edgeres.flow.orchestrator import build
from edgeres.frames.contract import InputContract, ResizeMode
from edgeres.frames.images import read_rgb
from edgeres.frames.yuv import ColorRange, ColorSpace, YuvLayout
from edgeres.model.arch import Arch
from edgeres.samples.encoding import encoder_for
from edgeres.samples.sources import csv_items
from edgeres.train.finetune import FinetuneData, FinetuneResult, finetune
from edgeres.train.options import FinetuneOptions, Unfreeze
from tests.train.conftest import export_at

SIZE = 64
CHANCE = 0.25
MIN_ACCURACY = 0.6  # measured 0.78 (RGB) on this task; chance is 0.25
CAMERA = InputContract(YuvLayout.YUYV, 128, 96, ColorSpace.BT709, ColorRange.LIMITED, ResizeMode.CENTER_CROP, SIZE)


def learning_options(checkpoint: Path, contract: InputContract | None = None) -> FinetuneOptions:
    return FinetuneOptions(
        arch=Arch.RESNET18, weights=checkpoint, size=SIZE, contract=contract, epochs=6, warmup_epochs=1,
        unfreeze=Unfreeze.ALL, lr=2e-3, backbone_lr_scale=1.0, batch_size=16,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained_rgb(photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> FinetuneResult:  # fmt: skip
    train, val = photo_task
    outdir = tmp_path_factory.mktemp("ft_rgb")
    return finetune(FinetuneData(train, val=val), outdir, learning_options(random_checkpoint))


@pytest.fixture(scope="module")
def trained_camera(photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> FinetuneResult:  # fmt: skip
    train, val = photo_task
    outdir = tmp_path_factory.mktemp("ft_yuyv")
    return finetune(FinetuneData(train, val=val), outdir, learning_options(random_checkpoint, CAMERA))


def key(path: str | Path) -> str:
    """An image's identity across folders: class folder + file name (validation paths are relative to OUT)."""
    return f"{Path(path).parent.name}/{Path(path).name}"


def onnx_predictions(onnx_path: Path, val_csv: Path, contract: InputContract | None) -> dict[str, int]:
    """Build's encoder on every validation image (as build's held-out set reads it), the ONNX's top-1."""
    encoder = encoder_for(onnx_path, contract)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    items = csv_items(val_csv, [])
    batch = np.stack([encoder.from_rgb(read_rgb(item.path)) for item in items])
    top1 = session.run(None, {name: batch})[0].argmax(1)
    return {key(item.path): int(p) for item, p in zip(items, top1, strict=True)}


def finetune_predictions(result: FinetuneResult) -> dict[str, int]:
    return {key(r["path"]): r["predicted"] for r in result.report_data["validation_predictions"]}


def accuracy_on(result: FinetuneResult, paths: list[str]) -> float:
    """finetune's validation accuracy on a subset of its validation images."""
    rows = {key(r["path"]): r for r in result.report_data["validation_predictions"]}
    return float(np.mean([rows[key(p)]["predicted"] == rows[key(p)]["label"] for p in paths]))


def test_learns_far_above_chance(trained_rgb: FinetuneResult) -> None:
    assert trained_rgb.val_samples == 32
    assert trained_rgb.val_accuracy >= MIN_ACCURACY > 2 * CHANCE
    report = json.loads(trained_rgb.report.read_text())
    assert report["best_epoch"] == trained_rgb.best_epoch and len(report["epochs"]) == 6
    assert report["epochs"][-1]["train_accuracy"] > CHANCE + 0.4


def test_fp32_onnx_predicts_what_finetune_validated(trained_rgb: FinetuneResult, tmp_path: Path) -> None:
    """Same preprocessing to the sample: build's encoder + the exported model give finetune's predictions."""
    onnx_path = export_at(trained_rgb.model, 4, SIZE, tmp_path / "model_fp32.onnx")
    assert onnx_predictions(onnx_path, trained_rgb.val_csv, None) == finetune_predictions(trained_rgb)


def test_build_accuracy_on_its_held_out_share_of_val_csv(trained_rgb: FinetuneResult, tmp_path: Path) -> None:
    """Today build evaluates the held-out share of --calib val.csv: on exactly those images it agrees."""
    onnx_path = export_at(trained_rgb.model, 4, SIZE, tmp_path / "model_fp32.onnx")
    options = BuildOptions(precision=Precision.FP16, onnx=onnx_path, calib=trained_rgb.val_csv, calib_size=24,
                           profile_iterations=0, min_holdout_samples=0)  # fmt: skip
    sections = build(options, tmp_path / "build").summary.sections
    expected = accuracy_on(trained_rgb, sections["holdout"]["paths"])
    assert sections["fidelity"]["fp16"]["accuracy"]["reference_top1"] == pytest.approx(expected)


def test_build_eval_csv_reports_finetune_accuracy(trained_rgb: FinetuneResult, tmp_path: Path) -> None:
    onnx_path = export_at(trained_rgb.model, 4, SIZE, tmp_path / "model_fp32.onnx")
    args = ["build", "--fp16", "--onnx", str(onnx_path), "--calib", str(trained_rgb.train_csv),
            "--eval", str(trained_rgb.val_csv), "--no-profile", "-o", str(tmp_path / "build")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "build" / "build_summary.json").read_text())
    assert summary["holdout"]["samples"] == trained_rgb.val_samples and summary["holdout"]["derived"] == 0
    assert summary["fidelity"]["fp16"]["accuracy"]["reference_top1"] == pytest.approx(trained_rgb.val_accuracy)


def test_camera_path_learns_and_fused_model_reproduces_it(trained_camera: FinetuneResult, tmp_path: Path) -> None:
    """Trained through YUYV encoding + host front-end; the fused ONNX on frames gives the same predictions."""
    assert trained_camera.val_accuracy >= MIN_ACCURACY
    onnx_path = export_at(trained_camera.model, 4, SIZE, tmp_path / "model_yuyv.onnx", CAMERA)
    predicted = onnx_predictions(onnx_path, trained_camera.val_csv, CAMERA)
    assert predicted == finetune_predictions(trained_camera)


def test_build_input_fused_model_reproduces_finetune_on_frames(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    """At build's own size (224): the fused ONNX that `build --input` exports, fed build's frames of every
    validation image, predicts what finetune validated; build's accuracy on its held-out share agrees."""
    camera = InputContract(YuvLayout.YUYV, 320, 240, ColorSpace.BT601, ColorRange.LIMITED, ResizeMode.CENTER_CROP)
    options = FinetuneOptions(arch=Arch.RESNET18, weights=random_checkpoint, contract=camera, epochs=1,
                              warmup_epochs=0, batch_size=8)  # fmt: skip
    trained = finetune(FinetuneData(photo_task[1]), tmp_path / "ft", options)
    build_options = BuildOptions(precision=Precision.FP16, arch=Arch.RESNET18, weights=trained.model, num_classes=4,
                                 contract=camera, calib=trained.val_csv, profile_iterations=0,
                                 min_holdout_samples=0)  # fmt: skip
    built = build(build_options, tmp_path / "build")
    fused = built.artifacts[ArtifactRole.FP32]
    assert onnx_predictions(fused, trained.val_csv, camera) == finetune_predictions(trained)
    expected = accuracy_on(trained, built.summary.sections["holdout"]["paths"])
    assert built.summary.sections["fidelity"]["fp16"]["accuracy"]["reference_top1"] == pytest.approx(expected)
