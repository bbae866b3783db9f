"""`report.html` of a fine-tune run: training curves, the confusion matrix, per-class accuracy with its
uncertainty, and the validation pictures the best epoch got wrong.

Read from the run's folder alone: finetune.json (classes, per-epoch metrics, every validation prediction of the
best epoch) and curves.png; the validation pictures from the paths finetune.json records. One self-contained
file, like the build's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeres import __version__
from edgeres.artifacts.atomic import read_json_object, write_bytes_atomic
from edgeres.artifacts.fields import Fields
from edgeres.artifacts.kinds import FINETUNE_CURVES_NAME, FINETUNE_RECORD_NAME
from edgeres.errors import UserInputError
from edgeres.frames.images import read_rgb
from edgeres.plotting import data_uri, literal, png_data_uri, pyplot
from edgeres.report.gallery import jpeg_data_uri
from edgeres.report.render import REPORT_NAME, render
from edgeres.report.stats import Proportion, wilson

MISTAKES_SHOWN = 24


@dataclass(frozen=True)
class ClassRow:
    name: str
    accuracy: Proportion
    most_confused_with: str | None


@dataclass(frozen=True)
class Mistake:
    path: str
    truth: str
    predicted: str
    picture: str | None  # None when the file cannot be read any more


@dataclass
class FinetuneReportPage:
    folder: str
    classes: list[str]
    best_epoch: int | None
    accuracy: Proportion
    epochs: list[dict[str, object]]
    device: str
    curves: str | None
    confusion: str | None
    rows: list[ClassRow]
    mistakes: list[Mistake] = field(default_factory=list)
    mistakes_total: int = 0
    options: list[tuple[str, str]] = field(default_factory=list)
    versions: list[tuple[str, str]] = field(default_factory=list)
    edgeres_version: str = __version__


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def confusion_figure(counts: np.ndarray, names: list[str]) -> str:
    """Counts and row-normalised rates side by side (labels only where they can be read)."""
    plt = pyplot()
    size = min(14.0, 3.5 + 0.22 * len(names))
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size * 0.85))
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape, np.float64), where=totals > 0)
    for axis, values, title in ((axes[0], counts, "counts"), (axes[1], rates, "share of each true class")):
        axis.imshow(values, cmap="Blues")
        axis.set_title(title)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        if len(names) <= 40:
            ticks = np.arange(len(names))
            axis.set_xticks(ticks, [literal(n) for n in names], rotation=90, fontsize=7)
            axis.set_yticks(ticks, [literal(n) for n in names], fontsize=7)
        if len(names) <= 15:
            for (row, col), value in np.ndenumerate(values):
                text = f"{value:d}" if values is counts else f"{value:.2f}"
                axis.text(col, row, text, ha="center", va="center", fontsize=7,
                          color="white" if value > values.max() / 2 else "black")  # fmt: skip
    return png_data_uri(fig)


def _picture(folder: Path, path: str) -> str | None:
    try:
        return jpeg_data_uri(read_rgb((folder / path).resolve()))
    except UserInputError:
        return None


def finetune_report_page(folder: Path) -> FinetuneReportPage:
    """What the report shows, from the run's finetune.json (refused in one line when it is not one)."""
    folder = Path(folder)
    where = folder / FINETUNE_RECORD_NAME
    record = Fields.of(read_json_object(where, "fine-tune record"), str(where))
    classes = list(record.items("classes", str) or ())
    if not classes:
        raise UserInputError(f"{where}: records no classes; not a finished fine-tune run")
    recorded = record.items("validation_predictions", dict) or ()
    predictions = [Fields.of(p, f"{where}: validation_predictions") for p in recorded]
    labels = np.array([p.require("label", int) for p in predictions], np.int64)
    predicted = np.array([p.require("predicted", int) for p in predictions], np.int64)
    both = np.concatenate([labels, predicted])
    if both.size and (both.max() >= len(classes) or both.min() < 0):
        raise UserInputError(f"{where}: a validation prediction names a class outside the {len(classes)} classes")
    counts = confusion_matrix(labels, predicted, len(classes))
    rows = []
    for k, name in enumerate(classes):
        off = counts[k].copy()
        off[k] = 0
        confused = classes[int(off.argmax())] if off.any() else None
        rows.append(ClassRow(name, wilson(int(counts[k, k]), int(counts[k].sum())), confused))
    wrong = [p for p, y, q in zip(predictions, labels, predicted, strict=True) if y != q]
    mistakes = [
        Mistake(p.require("path", str), classes[p.require("label", int)], classes[p.require("predicted", int)],
                _picture(folder, p.require("path", str)))
        for p in wrong[:MISTAKES_SHOWN]
    ]  # fmt: skip
    curves = folder / FINETUNE_CURVES_NAME
    epochs = [dict(Fields.of(e, f"{where}: epochs").data) for e in record.items("epochs", dict) or ()]
    versions = Fields.of(record.data.get("versions"), "versions").data
    options = Fields.of(record.data.get("options"), "options").data
    return FinetuneReportPage(
        folder=str(folder),
        classes=classes,
        best_epoch=record.get("best_epoch", int),
        accuracy=wilson(int(np.sum(labels == predicted)), int(labels.size)),
        epochs=epochs,
        device=str(record.data.get("device", "")),
        curves=data_uri(curves.read_bytes(), "image/png") if curves.is_file() else None,
        confusion=confusion_figure(counts, classes) if labels.size else None,
        rows=rows,
        mistakes=mistakes,
        mistakes_total=len(wrong),
        options=[(key, str(value)) for key, value in options.items()],
        versions=[(key, str(value)) for key, value in versions.items()],
    )


def write_finetune_report(folder: Path) -> Path:
    page = finetune_report_page(folder)
    path = Path(folder) / REPORT_NAME
    write_bytes_atomic(path, render("finetune_report.html.j2", page=page).encode("utf-8"))
    return path
