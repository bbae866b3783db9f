"""What a run leaves beside its checkpoints: classes.txt, the split as `path,label` CSVs that `edgeres build`
reads (val.csv: exactly the validation images), finetune.json (data, split, options, per-epoch metrics, best
epoch, every validation prediction) and a PNG of the training curves. All written atomically."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeres.artifacts.atomic import write_bytes_atomic, write_json_atomic
from edgeres.artifacts.kinds import FINETUNE_CURVES_NAME, FINETUNE_RECORD_NAME
from edgeres.plotting import pyplot, save_png
from edgeres.train.dataset import CLASSES_NAME, Sample

TRAIN_CSV_NAME = "train.csv"
VAL_CSV_NAME = "val.csv"
REPORT_NAME = FINETUNE_RECORD_NAME
CURVES_NAME = FINETUNE_CURVES_NAME
REPORT_SCHEMA = 1


def write_classes(outdir: Path, classes: Sequence[str]) -> Path:
    path = outdir / CLASSES_NAME
    write_bytes_atomic(path, ("\n".join(classes) + "\n").encode())
    return path


def csv_path_of(sample: Sample, outdir: Path) -> str:
    """The image's path as the CSV records it: relative to the CSV's folder (build resolves it from there)."""
    return os.path.relpath(Path(sample.path).resolve(), Path(outdir).resolve())


def write_split_csv(path: Path, samples: Sequence[Sample]) -> Path:
    """`path,label` rows with class numbers, the form `edgeres build --calib` takes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label"])
    for sample in samples:
        writer.writerow([csv_path_of(sample, path.parent), sample.label])
    write_bytes_atomic(path, text.getvalue().encode())
    return path


def write_report(outdir: Path, payload: dict[str, Any]) -> Path:
    path = outdir / REPORT_NAME
    write_json_atomic(path, {"schema": REPORT_SCHEMA, "stage": "finetune", **payload})
    return path


def plot_curves(path: Path, history: Sequence[dict[str, Any]]) -> Path:
    """Loss and accuracy per epoch, training and validation, the best epoch marked."""
    plt = pyplot()
    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    loss_axis.set(title="loss", xlabel="epoch", ylabel="cross-entropy")
    acc_axis.plot(epochs, [r["train_accuracy"] for r in history], "o-", label="train")
    acc_axis.plot(epochs, [r["val_accuracy"] for r in history], "o-", label="validation")
    best_rows = [row for row in history if row["best"]]
    if best_rows:
        best = best_rows[-1]
        acc_axis.axvline(best["epoch"], color="grey", linestyle=":", label=f"best (epoch {best['epoch']})")
    acc_axis.set(title="top-1 accuracy", xlabel="epoch", ylim=(0, 1.02))
    for axis in (loss_axis, acc_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    return save_png(figure, path)
