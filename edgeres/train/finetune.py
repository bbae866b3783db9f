"""`finetune`: a folder of class folders (or a labelled CSV) -> model.pth + classes.txt + val.csv + finetune.json,
in one output folder that `edgeres build --weights OUT/model.pth --num-classes N --calib OUT/val.csv` takes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edgeres.artifacts.folder_lock import owned_folder
from edgeres.artifacts.sidecar import package_versions
from edgeres.errors import UserInputError
from edgeres.train.checkpoints import MODEL_NAME, RESUME_NAME, ResumeState
from edgeres.train.dataset import CLASSES_NAME, Dataset, Sample, Split, given_split, load_dataset, stratified_split
from edgeres.train.distributed import Distributed, join, launched_by_torchrun, leave, main_holds
from edgeres.train.memory import check_training_fits
from edgeres.train.options import DeviceKind, FinetuneOptions
from edgeres.train.outputs import restored_on_failure
from edgeres.train.policy import initial_model
from edgeres.train.report import (
    CURVES_NAME,
    REPORT_NAME,
    TRAIN_CSV_NAME,
    VAL_CSV_NAME,
    csv_path_of,
    plot_curves,
    write_classes,
    write_report,
    write_split_csv,
)
from edgeres.train.sampling import uses_balance
from edgeres.train.trainer import Trainer, TrainHooks, TrainOutcome, default_workers, pick_device


@dataclass(frozen=True)
class FinetuneData:
    """Where the images come from: DATA, its class-name file (CSV), and an optional separate validation set."""

    source: Path
    class_file: Path | None = None
    val: Path | None = None


@dataclass(frozen=True)
class FinetuneResult:
    outdir: Path
    model: Path  # the best epoch's state_dict
    classes: tuple[str, ...]
    classes_path: Path
    val_csv: Path
    train_csv: Path
    report: Path
    curves: Path
    best_epoch: int | None
    val_accuracy: float
    val_samples: int
    stopped_early: bool
    skipped: int
    report_data: dict[str, Any]
    distributed: str | None = None  # world size, backend and batches of a torchrun job
    writer: bool = True  # False on every torchrun process but rank 0, which alone writes and prints


def split_hash(split: Split) -> str:
    digest = hashlib.sha256()
    for part, samples in (("train", split.train), ("val", split.val)):
        for sample in samples:
            digest.update(f"{part}|{sample.path}|{sample.label}\n".encode())
    return digest.hexdigest()


def _datasets(data: FinetuneData, options: FinetuneOptions) -> tuple[Dataset, Dataset | None, Split]:
    train = load_dataset(data.source, data.class_file, options.min_per_class)
    if data.val is None:
        return train, None, stratified_split(train.samples, options.val_fraction, options.seed)
    val = load_dataset(data.val, data.class_file, 1)
    return train, val, given_split(train, val)


def _class_count(options: FinetuneOptions, classes: tuple[str, ...], source: Path) -> int:
    if options.num_classes is not None and options.num_classes != len(classes):
        raise UserInputError(
            f"{source}: holds {len(classes)} classes, but {options.num_classes} classes were asked for"
        )
    return len(classes)


def _predictions(val: tuple[Sample, ...], predicted: list[int], outdir: Path) -> list[dict[str, Any]]:
    return [{"path": csv_path_of(s, outdir), "label": s.label, "predicted": p}
            for s, p in zip(val, predicted, strict=True)]  # fmt: skip


OUTPUT_NAMES = (MODEL_NAME, RESUME_NAME, CLASSES_NAME, TRAIN_CSV_NAME, VAL_CSV_NAME, REPORT_NAME, CURVES_NAME)


def check_outputs_apart(outdir: Path, data: FinetuneData, weights: Path | None) -> None:
    """Refuse an output folder that mixes with the inputs: inside (or equal to) an image folder, whose next
    listing would read curves.png as a training image and `build/` as a class, or a file of the run that
    would overwrite an input (a CSV named train.csv, a class-name file named classes.txt, --weights model.pth)."""
    out = Path(outdir).resolve()
    for what, folder in (("training data", data.source), ("validation data", data.val)):
        if folder is None or not folder.is_dir():
            continue
        root = folder.resolve()
        if out != root and root not in out.parents:
            continue
        inside = out.relative_to(root).parts
        place = f"inside class folder {inside[0]!r} of the {what} {folder}" if inside else f"the {what} folder"
        raise UserInputError(
            f"{outdir}: the output folder is {place}; what the run writes there ({CURVES_NAME}, build/) would be read "
            "back as training data: choose a folder outside it"
        )
    for given in (data.source, data.class_file, data.val, weights):
        if given is None or not given.is_file():
            continue
        for name in OUTPUT_NAMES:
            if (out / name).exists() and (out / name).samefile(given):
                raise UserInputError(f"{given}: is the run's own output {Path(outdir) / name}, which the run "
                                     "rewrites; copy it elsewhere or choose another output folder")  # fmt: skip


def finetune(
    data: FinetuneData,
    outdir: Path,
    options: FinetuneOptions,
    resume: bool = False,
    device: DeviceKind = DeviceKind.AUTO,
    workers: int | None = None,
    hooks: TrainHooks | None = None,
    sync_bn: bool = False,
) -> FinetuneResult:
    """Train, validating every epoch; the best epoch's weights land in `outdir/model.pth`.

    finetune.json is rewritten after every epoch ("finished": false until the run ends), so an interrupted run
    keeps its metrics as well as its checkpoints. Every refusal comes before the first write, and a failure
    after it leaves `outdir` as it was (edgeres.train.outputs).
    """
    outdir = Path(outdir)
    check_outputs_apart(outdir, data, options.weights)
    chosen = pick_device(device)
    group = None
    if launched_by_torchrun():  # one process of `torchrun ... -m edgeres finetune` (edgeres.train.distributed)
        group, chosen = join(chosen)
        hooks = hooks if group.is_main else TrainHooks()
    if sync_bn and (group is None or chosen.type != "cuda"):
        leave()
        raise UserInputError("--sync-bn: SyncBatchNorm needs several processes on CUDA devices (NCCL); the CPU's gloo "
                             "has no implementation of it")  # fmt: skip
    try:
        workers = default_workers(chosen) if workers is None else workers
        # One image at a time must fit before the data is read (the head's size barely counts: at least 2 classes).
        check_training_fits(options, options.num_classes or 2, 1, chosen, workers)
        with main_holds(owned_folder(outdir), group):  # everything below reads or writes `outdir`: one run at a time
            return _train_into(outdir, data, options, resume, chosen, workers, hooks, group, sync_bn)
    finally:
        leave()


def _train_into(outdir: Path, data: FinetuneData, options: FinetuneOptions, resume: bool, chosen: torch.device,
                workers: int, hooks: TrainHooks | None, group: Distributed | None,
                sync_bn: bool = False) -> FinetuneResult:  # fmt: skip
    resume_path = outdir / RESUME_NAME
    if resume_path.exists() and not resume:
        raise UserInputError(
            f"{outdir}: already holds a fine-tuning run ({RESUME_NAME}); resume it or use another folder"
        )
    start = ResumeState.load(resume_path) if resume else None  # before any work: a bad checkpoint is the message
    train_set, val_set, split = _datasets(data, options)
    num_classes = _class_count(options, train_set.classes, data.source)
    check_training_fits(options, num_classes, min(options.batch_size, len(split.train)), chosen, workers)
    key = {"data": train_set.fingerprint(), "validation": val_set.fingerprint() if val_set else None,
           "split": split_hash(split), **options.training_key()}  # fmt: skip
    model, checkpoint = initial_model(options, num_classes)
    trainer = Trainer(model, split.train, split.val, options, outdir, key, chosen, workers, hooks, group, sync_bn)
    if start is not None:  # on every rank, before DDP wraps the model
        trainer.restore(start, resume_path)
    balanced = uses_balance(options.balance, [sum(1 for s in split.train if s.label == k) for k in range(num_classes)])

    described = None if group is None else group.describe(options.batch_size)
    shared = {} if group is None else {"distributed": {"world_size": group.world_size, "backend": group.backend,
                                                      "global_batch": options.batch_size * group.world_size}}

    def report_of(outcome: TrainOutcome, finished: bool) -> dict[str, Any]:
        return _report(train_set, val_set, split, options, checkpoint, balanced, outcome, outdir) | shared | {
            "finished": finished
        }

    writer = group is None or group.is_main
    outputs = (outdir / CLASSES_NAME, outdir / TRAIN_CSV_NAME, outdir / VAL_CSV_NAME, outdir / REPORT_NAME,
               outdir / CURVES_NAME)  # fmt: skip
    if not writer:  # rank 0 writes every file of the run; the others train their share and return
        outcome = trainer.run(balanced, start)
        return FinetuneResult(outdir, outdir / MODEL_NAME, train_set.classes, *outputs, outcome.best_epoch,
                              outcome.best_accuracy, len(split.val), outcome.stopped_early, 0, {}, described,
                              writer=False)  # fmt: skip
    with restored_on_failure(outdir, RESUME_NAME):
        classes_path = write_classes(outdir, train_set.classes)
        train_csv = write_split_csv(outdir / TRAIN_CSV_NAME, split.train)
        val_csv = write_split_csv(outdir / VAL_CSV_NAME, split.val)
        outcome = trainer.run(balanced, start, saved=lambda so_far: write_report(outdir, report_of(so_far, False)))
        report = report_of(outcome, True)
        report_path = write_report(outdir, report)
        curves = plot_curves(outdir / CURVES_NAME, outcome.history)
    return FinetuneResult(
        outdir, outdir / MODEL_NAME, train_set.classes, classes_path, val_csv, train_csv, report_path, curves,
        outcome.best_epoch, outcome.best_accuracy, len(split.val), outcome.stopped_early,
        len(train_set.skipped) + (len(val_set.skipped) if val_set else 0), report, described,
    )  # fmt: skip


def _report(train: Dataset, val: Dataset | None, split: Split, options: FinetuneOptions, checkpoint: str | None,
            balanced: bool, outcome: TrainOutcome, outdir: Path) -> dict[str, Any]:  # fmt: skip
    return {
        "classes": list(train.classes),
        "data": train.as_dict(),
        "validation_data": val.as_dict() if val is not None else None,
        "split": {
            "train": len(split.train),
            "val": len(split.val),
            "given": val is not None,
            "fraction": None if val is not None else options.val_fraction,
            "seed": options.seed,
            "sha256": split_hash(split),
        },
        "options": options.as_dict(),
        "start_checkpoint": checkpoint,
        "class_balanced_sampling": balanced,
        "device": outcome.device,
        "resumed_after_epoch": outcome.resumed_from or None,
        "epochs": outcome.history,
        "best_epoch": outcome.best_epoch,
        "val_accuracy": outcome.best_accuracy,
        "stopped_early": outcome.stopped_early,
        "validation_predictions": _predictions(split.val, outcome.best_predictions, outdir),
        "versions": package_versions("torch", "numpy"),
    }
