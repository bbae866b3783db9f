"""`edgeres finetune`: train a product's own classes through the deployed preprocessing. Parsing and bars only."""

from __future__ import annotations

import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text
from typer._click.core import ParameterSource  # typer's own click, as edgeres.cli.app uses

from edgeres.artifacts.atomic import read_json_object
from edgeres.artifacts.precision import Precision
from edgeres.choices import choice_values, parse_choice
from edgeres.cli.args.frame_input import FrameInputArgs
from edgeres.cli.args.group import takes_groups
from edgeres.cli.build import build_and_report, build_arguments
from edgeres.cli.options import ARCH_DEFAULT, ArchOption, parse_arch
from edgeres.cli.paths import check_output_dir
from edgeres.cli.reporting import StageBars, reports_errors, say, wrote
from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions
from edgeres.frames.images import NETWORK_SIZE
from edgeres.train import options as defaults
from edgeres.train.options import Balance, DeviceKind, FinetuneOptions, OptimizerKind, Unfreeze
from edgeres.train.report import REPORT_NAME

if TYPE_CHECKING:  # the trainer imports torch, which `edgeres --help` must not need
    from edgeres.flow.finetune_qat import QatRequest
    from edgeres.train.finetune import FinetuneResult
    from edgeres.train.trainer import EpochMetrics


def epoch_line(m: EpochMetrics) -> str:
    stages = ", ".join(s for s in m.trainable if s != "fc") or "head only"
    return (
        f"epoch {m.epoch}: train loss {m.train_loss:.3f} acc {m.train_accuracy:.1%} | "
        f"val loss {m.val_loss:.3f} acc {m.val_accuracy:.1%} | lr {m.lr:.2e} | "
        f"{m.images_per_s:.0f} img/s | trains {stages}{' | best' if m.best else ''}"
    )


# `edgeres finetune` parameters that set a FinetuneOptions field, and which one.
_OPTION_FIELDS = {
    "arch": "arch", "weights": "weights", "from_scratch": "from_scratch", "num_classes": "num_classes",
    "size": "size", "epochs": "epochs", "warmup_epochs": "warmup_epochs", "unfreeze": "unfreeze",
    "optimizer": "optimizer", "lr": "lr", "backbone_lr_scale": "backbone_lr_scale", "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing", "batch": "batch_size", "patience": "patience",
    "val_fraction": "val_fraction", "min_per_class": "min_per_class", "balance": "balance",
    "no_augment": "augment", "seed": "seed",
}  # fmt: skip
_CONTRACT_FLAGS = frozenset({"frame_input", "colorspace", "color_range", "resize"})  # the --input group


def relaunch_arguments(argv: list[str]) -> list[str]:
    """This command line for each process of the job: `--devices N` removed (each process is one device)."""
    if not argv or argv[0] != "finetune":
        raise UserInputError("--devices relaunches the `edgeres finetune` command line; run torchrun yourself here")
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--devices":
            skip = True
        elif not argument.startswith("--devices="):
            kept.append(argument)
    return kept


def typed_on_the_command_line(ctx: typer.Context) -> set[str]:
    """The parameters this invocation gave explicitly (not their defaults)."""
    return {name for name in ctx.params if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}


def resumed_options(folder: Path, typed: FinetuneOptions, given: set[str]) -> FinetuneOptions:
    """The options of the run in `folder` (its finetune.json), with those given explicitly now: a resumed run
    needs no option retyped, and one typed differently is compared (and refused when it changes the model)."""
    report = folder / REPORT_NAME
    if not report.is_file():
        return typed  # nothing to resume from: the run itself says so
    recorded_data = read_json_object(report, "fine-tuning report").get("options")
    recorded = FinetuneOptions.from_dict(recorded_data if isinstance(recorded_data, dict) else {}, f"{report}: options")
    changes = {field: getattr(typed, field) for flag, field in _OPTION_FIELDS.items() if flag in given}
    if given & _CONTRACT_FLAGS:
        changes["contract"] = typed.contract
    return replace(recorded, **changes)


@reports_errors
@takes_groups
def finetune(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Folder with one subfolder per class, or a path,label CSV.")],
    *,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (model.pth, val.csv, ...).")],
    class_file: Annotated[
        Path | None, typer.Option("--classes", help="With a CSV: the class names, one a line (label = name or 0..N-1).")
    ] = None,
    val: Annotated[
        Path | None, typer.Option("--val", help="Validation set (same form as DATA) instead of a split of DATA.")
    ] = None,
    arch: ArchOption = ARCH_DEFAULT,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Starting checkpoint (torchvision names). Default: torchvision's local cache."),
    ] = None,
    from_scratch: Annotated[
        bool, typer.Option("--from-scratch", help="Start from random weights (refused otherwise).")
    ] = False,
    num_classes: Annotated[
        int | None,
        typer.Option(
            "--num-classes", help="Classes of the final layer (default: counted from the class folders).", min=1
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Network input height and width.", min=32)] = NETWORK_SIZE,
    contract: FrameInputArgs,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs.", min=1)] = defaults.DEFAULT_EPOCHS,
    warmup_epochs: Annotated[
        int | None,
        typer.Option(
            "--warmup-epochs",
            help=f"First epochs train the new head only (default {defaults.DEFAULT_WARMUP_EPOCHS} on a pretrained "
            "backbone, 0 --from-scratch: random features are nothing to fit a head to).",
            min=0,
        ),
    ] = None,
    unfreeze: Annotated[
        str, typer.Option("--unfreeze", help=f"Trained after the warm-up besides the head: {choice_values(Unfreeze)}.")
    ] = defaults.DEFAULT_UNFREEZE.value,
    optimizer: Annotated[
        str, typer.Option("--optimizer", help=f"{choice_values(OptimizerKind)} (cosine schedule).")
    ] = defaults.DEFAULT_OPTIMIZER.value,
    lr: Annotated[float, typer.Option("--lr", help="The head's learning rate.")] = defaults.DEFAULT_LR,
    backbone_lr_scale: Annotated[
        float, typer.Option("--backbone-lr-scale", help="Unfrozen backbone stages learn at lr x this.")
    ] = defaults.DEFAULT_BACKBONE_LR_SCALE,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = defaults.DEFAULT_WEIGHT_DECAY,
    label_smoothing: Annotated[float, typer.Option("--label-smoothing")] = defaults.DEFAULT_LABEL_SMOOTHING,
    batch: Annotated[int, typer.Option("--batch", help="Images per step.", min=1)] = defaults.DEFAULT_BATCH,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop after this many epochs without a better validation accuracy.")
    ] = defaults.DEFAULT_PATIENCE,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of each class held out for validation (without --val).")
    ] = defaults.DEFAULT_VAL_FRACTION,
    min_per_class: Annotated[
        int, typer.Option("--min-per-class", help="Readable images a class needs.")
    ] = defaults.DEFAULT_MIN_PER_CLASS,
    balance: Annotated[
        str, typer.Option("--balance", help=f"Class-balanced sampling: {choice_values(Balance)} (auto: if imbalanced).")
    ] = Balance.AUTO.value,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train on the plain images.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the order and the augmentation.")] = 0,
    device: Annotated[str, typer.Option("--device", help=f"{choice_values(DeviceKind)}.")] = DeviceKind.AUTO.value,
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices",
            help="Train as this many processes on this machine, one per GPU (CPU processes with --device cpu), "
            "through torch.distributed.run; --batch is per process. Several machines: torchrun (docs/training.md).",
            min=1,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Data-loading processes. Default: 0 on the CPU, up to 8 with CUDA.", min=0),
    ] = None,
    sync_bn: Annotated[
        bool,
        typer.Option("--sync-bn", help="With several CUDA processes: BatchNorm statistics over the global batch."),
    ] = False,
    qat_epochs: Annotated[
        int,
        typer.Option(
            "--qat-epochs",
            help="Then this many quantization-aware training epochs of the INT8 model (labels; ranges from the "
            "build's calibration, fixed): writes OUT/model_qat.onnx, which build --int8 --onnx quantizes as trained.",
            min=0,
        ),
    ] = 0,
    qat_lr: Annotated[
        float, typer.Option("--qat-lr", help="Adam learning rate of the QAT epochs.")
    ] = defaults.DEFAULT_QAT_LR,
    qat_distill: Annotated[
        bool, typer.Option("--qat-distill", help="QAT learns the fine-tuned float model's logits besides the labels.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUT from its last epoch.")] = False,
    then_build: Annotated[
        bool, typer.Option("--then-build", help="Then run `edgeres build` on the best model into OUT/build.")
    ] = False,
    int8: Annotated[bool, typer.Option("--int8", help="With --then-build: INT8 (the default).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="With --then-build: FP16.")] = False,
) -> None:
    """Fine-tune a ResNet on your own classes, through the same preprocessing (camera frames included) that the
    built model applies; writes OUT/model.pth, classes.txt, val.csv, finetune.json and curves.png.

    Examples:\n
      edgeres finetune photos/ -o out/ft --num-classes 51\n
      edgeres finetune photos/ -o out/ft --input yuyv:1920x1080 --colorspace bt709 --then-build --int8\n
      edgeres finetune labels.csv --classes names.txt -o out/ft --weights r50.pth --unfreeze all\n
      edgeres finetune photos/ -o out/ft --resume\n
      edgeres finetune photos/ -o out/ft --devices 4\n
      torchrun --nproc-per-node 4 -m edgeres finetune photos/ -o out/ft
    """
    from edgeres.train.checkpoints import RESUME_NAME
    from edgeres.train.distributed import launched_by_torchrun, relaunch
    from edgeres.train.finetune import FinetuneData
    from edgeres.train.finetune import finetune as run_finetune
    from edgeres.train.policy import RandomStartError
    from edgeres.train.trainer import TrainHooks

    qat = None
    stray = sorted(f"--{name.replace('_', '-')}" for name in {"qat_lr", "qat_distill"} & typed_on_the_command_line(ctx))
    if stray and not qat_epochs:
        raise UserInputError(f"{' and '.join(stray)}: for QAT epochs only; add --qat-epochs N")
    if qat_epochs and fp16:
        raise UserInputError("--qat-epochs trains the INT8 model; --then-build --fp16 would build FP16 from it")
    if qat_epochs:
        from edgeres.flow.finetune_qat import QatRequest

        qat = QatRequest(qat_epochs, qat_lr, qat_distill)
        if (devices is not None and devices > 1) or launched_by_torchrun():
            raise UserInputError(
                "--qat-epochs runs in one process: finish the distributed fine-tune, then add --qat-epochs N to the "
                "same command with --resume and without --devices (or torchrun)"
            )
    if devices is not None and devices > 1 and not launched_by_torchrun():
        code = relaunch(devices, relaunch_arguments(sys.argv[1:]))
        if code != 0:
            raise UserInputError(f"the {devices}-process run stopped (exit code {code}); its own lines say why, above")
        return
    if int8 and fp16:
        raise UserInputError("--int8 and --fp16 exclude each other")
    if (int8 or fp16) and not then_build:
        raise UserInputError("--int8/--fp16 choose what --then-build makes; add --then-build")
    if then_build and size != NETWORK_SIZE:
        raise UserInputError(f"--then-build: build exports at {NETWORK_SIZE}x{NETWORK_SIZE}; train with --size "
                             f"{NETWORK_SIZE}, or export the {size}x{size} model and give build --onnx")  # fmt: skip
    check_output_dir(output)
    options = FinetuneOptions(
        arch=parse_arch(arch), weights=weights, from_scratch=from_scratch, num_classes=num_classes, size=size,
        contract=None if contract is None else replace(contract, size=size), epochs=epochs,
        warmup_epochs=defaults.default_warmup(from_scratch) if warmup_epochs is None else warmup_epochs,
        unfreeze=parse_choice(Unfreeze, unfreeze, "--unfreeze"),
        optimizer=parse_choice(OptimizerKind, optimizer, "--optimizer"), lr=lr, backbone_lr_scale=backbone_lr_scale,
        weight_decay=weight_decay, label_smoothing=label_smoothing, batch_size=batch, patience=patience,
        val_fraction=val_fraction, min_per_class=min_per_class, balance=parse_choice(Balance, balance, "--balance"),
        augment=not no_augment, seed=seed,
    )  # fmt: skip
    if resume:  # the run's own options, changed only where given on this command line
        options = resumed_options(output, options, typed_on_the_command_line(ctx))
    if resume and qat is not None:
        from edgeres.flow.finetune_qat import check_qat_resumable

        check_qat_resumable(output, qat)

    try:
        with StageBars() as bars:
            # soft_wrap: an epoch line stays one line in a log, whatever the width
            hooks = TrainHooks(
                progress=bars, on_epoch=lambda m: bars.progress.console.print(Text(epoch_line(m)), soft_wrap=True)
            )
            result = run_finetune(FinetuneData(data, class_file, val), output, options, resume,
                                  parse_choice(DeviceKind, device, "--device"), workers, hooks, sync_bn)  # fmt: skip
    except RandomStartError as exc:
        raise RandomStartError(f"{exc} (--from-scratch)") from None
    except KeyboardInterrupt:
        if (output / RESUME_NAME).exists():
            say(f"the last finished epoch is kept in {output / RESUME_NAME}: rerun with --resume to continue")
        raise
    if not result.writer:  # another rank of a torchrun job: rank 0 prints and writes
        return
    if result.distributed is not None:
        say(result.distributed)
    for path in (result.model, result.classes_path, result.val_csv, result.train_csv, result.report, result.curves):
        wrote(path)
    from edgeres.report.finetune_report import write_finetune_report

    wrote(write_finetune_report(output))
    if result.skipped:
        say(f"{result.skipped} unreadable image(s) skipped (listed in {result.report.name})")
    stop = "stopped early" if result.stopped_early else "all epochs run"
    say(f"best epoch {result.best_epoch}: validation accuracy {result.val_accuracy:.1%} on {result.val_samples} "
        f"images ({stop})")  # fmt: skip
    recipe = BuildOptions(precision=Precision.FP16 if fp16 else Precision.INT8, arch=options.arch,
                          weights=result.model, num_classes=len(result.classes), calib=result.train_csv,
                          eval_csv=result.val_csv, contract=contract)  # fmt: skip
    if qat is not None:
        recipe = replace(recipe, onnx=quantization_aware(result, options, qat, resume), weights=None,
                         num_classes=None, contract=None)  # fmt: skip
    if not then_build:
        say(f"next: edgeres build {shlex.join(build_arguments(recipe, output / 'build'))}")
        return
    check_output_dir(output / "build")
    build_and_report(recipe, output / "build")


def quantization_aware(result: FinetuneResult, options: FinetuneOptions, request: QatRequest, resume: bool) -> Path:
    """The QAT epochs after the fine-tune, with their lines; the trained model's path."""
    from edgeres.flow.finetune_qat import QAT_RESUME_NAME, finetune_qat

    def line(entry: dict[str, float]) -> None:
        say(f"QAT epoch {entry['epoch']}: train loss {entry['train_loss']:.3f} | INT8 val acc "
            f"{entry['val_accuracy']:.1%}, logits {entry['val_sqnr_db']:.1f} dB from FP32 | "
            f"{entry['seconds']:.0f} s")  # fmt: skip

    try:
        with StageBars() as bars:
            done = finetune_qat(result, options, request, resume, bars, line)
    except KeyboardInterrupt:
        if (result.outdir / QAT_RESUME_NAME).exists():
            say(f"the last finished QAT epoch is kept in {result.outdir / QAT_RESUME_NAME}: rerun with --resume")
        raise
    say(done.describe())
    wrote(done.model)
    return done.model
