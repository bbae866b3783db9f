"""`edgeres finetune` on the command line: one-line errors with exit 2, the run's lines, SIGTERM, --then-build."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeres.cli.app import app
from edgeres.train.checkpoints import RESUME_NAME, ResumeState

QUICK = ["--arch", "resnet18", "--size", "32", "--epochs", "1", "--warmup-epochs", "0", "--workers", "0"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["finetune", *args])
    return result.exit_code, result.output


def error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_a_small_run_prints_epochs_and_the_build_command(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), "--weights", str(random_checkpoint), *QUICK)
    assert code == 0, output
    assert "epoch 1: train loss" in output and "best epoch 1: validation accuracy" in output
    # Not a terminal here (a log): the epoch line stays one line, so `grep 'epoch .*img/s'` finds it.
    assert re.search(r"^epoch 1: train loss .* img/s .*$", output, re.MULTILINE), output
    assert f"--weights {tmp_path / 'model.pth'} --num-classes 4 --calib {tmp_path / 'train.csv'}" in output
    assert f"--eval {tmp_path / 'val.csv'}" in output


def test_no_checkpoint_is_one_line_naming_from_scratch(photo_task: tuple[Path, Path], empty_hub: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), *QUICK)
    assert code == 2
    assert "no starting checkpoint for resnet18" in error_line(output) and "(--from-scratch)" in output


def test_too_few_images_is_one_line_naming_the_class(photo_task: tuple[Path, Path], tmp_path: Path,
                                                     random_checkpoint: Path) -> None:  # fmt: skip
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), "--weights", str(random_checkpoint),
                       "--min-per-class", "9", *QUICK)  # fmt: skip
    assert code == 2 and "class 'astronaut' has 8 readable image(s); at least 9" in error_line(output)


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--then-build"], "build exports at 224x224"), (["--fp16"], "add --then-build"),
     (["--unfreeze", "layer2"], "unknown --unfreeze 'layer2'"), (["--device", "tpu"], "unknown --device")],
)  # fmt: skip
def test_refused_options(extra: list[str], message: str, photo_task: tuple[Path, Path], tmp_path: Path) -> None:
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), "--from-scratch", *QUICK, *extra)
    assert code == 2 and message in error_line(output)


def test_sigterm_keeps_the_last_good_checkpoint(photo_task: tuple[Path, Path], random_checkpoint: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    args = [sys.executable, "-m", "edgeres", "finetune", str(photo_task[0]), "-o", str(tmp_path), "--weights",
            str(random_checkpoint), *QUICK[:4], "--epochs", "50", "--batch", "8"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / RESUME_NAME).exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "--resume to continue" in output and "interrupted" in output
    assert ResumeState.load(tmp_path / RESUME_NAME).epochs_done >= 1
    assert not list(tmp_path.glob(".edgeres-*"))


def test_then_build_chains_into_build(photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path) -> None:
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), "--weights", str(random_checkpoint), "--arch",
                       "resnet18", "--epochs", "1", "--batch", "8", "--then-build", "--fp16")  # fmt: skip
    assert code == 0, output
    summary = json.loads((tmp_path / "build" / "build_summary.json").read_text())
    assert summary["weights"] == str(tmp_path / "model.pth") and summary["fidelity"]["fp16"]["accuracy"]
    # Build evaluates every validation image once (--eval val.csv) and its FP32 model agrees with finetune.
    report = json.loads((tmp_path / "finetune.json").read_text())
    assert summary["holdout"]["samples"] == report["split"]["val"] and summary["holdout"]["derived"] == 0
    assert summary["fidelity"]["fp16"]["accuracy"]["reference_top1"] == pytest.approx(report["val_accuracy"])


def test_imbalanced_classes_are_sampled_balanced_and_unreadable_images_counted(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(photo_task[1], data)
    for extra in sorted((data / "brick").glob("*.jpg"))[5:]:
        extra.unlink()  # 8, 5, 8, 8 images: imbalanced
    (data / "coffee" / "broken.jpg").write_bytes((data / "coffee" / "000.jpg").read_bytes()[:300])
    code, output = run(str(data), "-o", str(tmp_path / "out"), "--weights", str(random_checkpoint), *QUICK)
    assert code == 0, output
    assert "1 unreadable image(s) skipped" in output
    report = json.loads((tmp_path / "out" / "finetune.json").read_text())
    assert report["class_balanced_sampling"] is True
    assert report["data"]["per_class"] == {"astronaut": 8, "brick": 5, "coffee": 8, "grass": 8}
    assert report["data"]["skipped"][0]["reason"].startswith("truncated JPEG")


def test_the_printed_build_command_is_quoted_for_the_shell(
    photo_task: tuple[Path, Path], random_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "my run"
    code, output = run(str(photo_task[1]), "-o", str(out), "--weights", str(random_checkpoint), *QUICK)
    assert code == 0, output
    line = next(line for line in output.splitlines() if line.startswith("next: "))
    words = shlex.split(line.removeprefix("next: "))
    assert words[words.index("--weights") + 1] == str(out / "model.pth")
    assert words[words.index("-o") + 1] == str(out / "build")


def test_from_scratch_trains_the_whole_network_from_the_first_epoch(
    photo_task: tuple[Path, Path], tmp_path: Path
) -> None:
    """No head-only warm-up on random features unless asked for; a pretrained start keeps it."""
    at = QUICK.index("--warmup-epochs")
    code, output = run(str(photo_task[1]), "-o", str(tmp_path), "--from-scratch", *QUICK[:at], *QUICK[at + 2 :])
    assert code == 0, output
    assert json.loads((tmp_path / "finetune.json").read_text())["options"]["warmup_epochs"] == 0
    epoch = next(line for line in output.splitlines() if line.startswith("epoch 1:"))
    assert "trains head only" not in epoch and "layer4" in epoch
