"""The training loop: epochs of class-balanced or plain draws, validation after each, the best kept, early stop.

After every epoch the best weights (`model.pth`) and the resume point (`last.pt`) are written atomically, so
Ctrl-C or SIGTERM (raised as KeyboardInterrupt by the CLI) at any moment leaves the last good checkpoint.

Training that diverges (a NaN or infinite loss, or weights) stops with DivergedError at once: a model of NaN
weights would otherwise be validated, kept as the "best" epoch and handed to build.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate
from torch.utils.data import Dataset as TorchDataset

from edgeres.errors import EdgeresError, ResourceLimitError, UserInputError
from edgeres.model.resnet import ResNet, first_non_finite
from edgeres.progress import SilentProgress, StageProgress
from edgeres.train.augment import SampleTransform
from edgeres.train.checkpoints import MODEL_NAME, RESUME_NAME, ResumeState, check_resumable, save_model
from edgeres.train.dataset import Sample
from edgeres.train.distributed import Distributed, from_main, gathered, shard, summed, unshard
from edgeres.train.options import DeviceKind, FinetuneOptions
from edgeres.train.policy import apply_freezing, make_optimizer, set_epoch_rate, trainable_stages
from edgeres.train.sampling import epoch_order

StepHook = Callable[[int, int], None]  # (epoch, step) after each training step: tests interrupt from here


class DivergedError(EdgeresError):
    """The loss or the weights became NaN or infinite: nothing of the run is worth keeping."""


def pick_device(kind: DeviceKind) -> torch.device:
    """CUDA when present (AUTO) or asked for; asking for CUDA without it is an error."""
    if kind is DeviceKind.CUDA and not torch.cuda.is_available():
        raise UserInputError("device cuda: no CUDA device is usable by this torch build")
    if kind is DeviceKind.CPU or (kind is DeviceKind.AUTO and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


MAX_WORKERS = 8


def default_workers(device: torch.device) -> int:
    """Data-loading processes: none on the CPU (training needs its cores), up to 8 feeding a GPU.

    Decoding, augmenting and encoding a 1920x1080 camera frame costs about 0.1 s a sample on one core.
    """
    return 0 if device.type == "cpu" else min(MAX_WORKERS, max(0, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class SampleFailure:
    """A sample that could not be read or encoded (changed since the data was checked), as one line.

    Carried back as data, not raised: a DataLoader worker's exception reaches the main process with the
    worker's traceback folded into its message, which the one-line `error:` would then print.
    """

    message: str


def _failure_line(sample: Sample, exc: Exception) -> str:
    if isinstance(exc, EdgeresError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.filename or sample.path}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return f"{sample.path}: out of memory while encoding it"
    return f"{sample.path}: OpenCV: {str(exc).strip().splitlines()[-1] if str(exc).strip() else 'error'}"


class EncodedSamples(TorchDataset[tuple[np.ndarray, int] | SampleFailure]):
    """Samples encoded for the network; indexed by (draw position, sample index) for per-draw augmentation."""

    def __init__(self, samples: Sequence[Sample], transform: SampleTransform) -> None:
        self.samples, self.transform, self.epoch = list(samples), transform, 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: tuple[int, int] | int) -> tuple[np.ndarray, int] | SampleFailure:
        position, index = item if isinstance(item, tuple) else (item, item)
        sample = self.samples[index]
        try:
            return self.transform(sample, self.epoch, position), sample.label
        except (EdgeresError, OSError, MemoryError, cv2.error) as exc:
            return SampleFailure(_failure_line(sample, exc))


def collate_samples(items: list[tuple[np.ndarray, int] | SampleFailure]) -> Any:
    """A batch of tensors, or the first sample's failure (raised by `batches` in the main process)."""
    return next((item for item in items if isinstance(item, SampleFailure)), None) or default_collate(items)


def batches(loader: DataLoader[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for batch in loader:
        if isinstance(batch, SampleFailure):
            raise UserInputError(batch.message)
        yield batch


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    lr: float
    trainable: tuple[str, ...]
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    images_per_s: float
    best: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"trainable": list(self.trainable)}


@dataclass
class TrainOutcome:
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_accuracy: float
    best_predictions: list[int]
    stopped_early: bool
    device: str
    resumed_from: int = 0  # epochs already done when this call started
    interrupted: bool = False


@dataclass
class TrainHooks:
    progress: StageProgress = field(default_factory=SilentProgress)
    on_epoch: Callable[[EpochMetrics], None] | None = None
    on_step: StepHook | None = None


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
               inputs: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:  # fmt: skip
    """One optimisation step; (summed loss, correct predictions) of the batch."""
    optimizer.zero_grad(set_to_none=True)
    logits = model(inputs)
    loss = criterion(logits, labels)
    loss.backward()
    optimizer.step()
    return float(loss.detach()) * len(labels), int((logits.detach().argmax(1) == labels).sum())


def evaluate(model: nn.Module, loader: DataLoader[Any], device: torch.device,
             progress: StageProgress) -> tuple[float, list[int]]:  # fmt: skip
    """(summed cross-entropy, predicted class of every sample in order) in eval mode."""
    model.eval()
    loss, predictions = 0.0, []
    with torch.no_grad():
        for inputs, labels in batches(loader):
            logits = model(inputs.to(device))
            loss += float(nn.functional.cross_entropy(logits, labels.to(device), reduction="sum"))
            predictions += logits.argmax(1).tolist()
            progress.advance(len(labels))
    return loss, predictions


class Trainer:
    """One fine-tuning run into `outdir`; `run` trains from `start` (a ResumeState) or from the initial model."""

    def __init__(self, model: ResNet, train: Sequence[Sample], val: Sequence[Sample], options: FinetuneOptions,
                 outdir: Path, key: dict[str, Any], device: torch.device, workers: int = 0,
                 hooks: TrainHooks | None = None, group: Distributed | None = None,
                 sync_bn: bool = False) -> None:  # fmt: skip
        self.options, self.outdir, self.key, self.device = options, Path(outdir), key, device
        self.model = model.to(device)  # what is saved: torchvision's names, never the DDP wrapper's
        self.group = group
        if sync_bn:  # BatchNorm statistics over the global batch (CUDA only); the parameters stay the same objects
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.network: nn.Module = self.model  # what trains: the model, or its DDP wrapper (made per epoch)
        self.hooks = hooks or TrainHooks()
        self.train_set = EncodedSamples(train, SampleTransform(options.size, options.contract, options.seed,
                                                               train=options.augment))  # fmt: skip
        self.val_set = EncodedSamples(val, SampleTransform(options.size, options.contract, options.seed, train=False))
        self.workers = workers
        self.labels = [s.label for s in train]
        self.val_labels = [s.label for s in val]
        self.criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)
        self.optimizer = make_optimizer(self.model, options)

    def _loader(self, dataset: EncodedSamples, order: Sequence[Any], train: bool = False) -> DataLoader[Any]:
        """Batches in `order`; in training a last batch of one sample is dropped (BatchNorm cannot train on
        one value per channel, which a small input leaves at the last stage)."""
        drop_last = train and len(order) % self.options.batch_size == 1 and len(order) > 1
        return DataLoader(dataset, batch_size=self.options.batch_size, sampler=list(order), num_workers=self.workers,
                          drop_last=drop_last, collate_fn=collate_samples)  # fmt: skip

    def _wrap(self) -> None:
        """With several processes, a DDP wrapper over the parameters that train this epoch (DDP fixes the set of
        parameters it averages when it is made, and warm-up changes it)."""
        if self.group is None:
            return
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.network = DistributedDataParallel(self.model, device_ids=ids)  # buffers follow rank 0 at each step

    def _train_epoch(self, epoch: int, balanced: bool) -> tuple[float, float, int]:
        self.train_set.epoch = epoch
        order = epoch_order(self.labels, epoch, self.options.seed, balanced)
        rank, world = (self.group.rank, self.group.world_size) if self.group else (0, 1)
        draws = shard(list(enumerate(order.tolist())), rank, world, pad=True)  # (position, sample) pairs
        loader = self._loader(self.train_set, draws, train=True)
        loss, hits, seen = 0.0, 0, 0
        bar = self.hooks.progress
        bar.begin(f"epoch {epoch + 1}/{self.options.epochs} train", len(draws) * world)
        for step, (inputs, labels) in enumerate(batches(loader)):
            batch_loss, batch_hits = train_step(self.network, self.optimizer, self.criterion,
                                                inputs.to(self.device), labels.to(self.device))  # fmt: skip
            if not math.isfinite(summed(batch_loss, self.group)):  # every rank stops at the same step
                raise DivergedError(f"training diverged at epoch {epoch + 1}, step {step + 1}: the training loss is "
                                    f"{batch_loss / len(labels)}{self._rate_advice()}")  # fmt: skip
            loss, hits, seen = loss + batch_loss, hits + batch_hits, seen + len(labels)
            bar.advance(len(labels) * world)
            if self.hooks.on_step is not None:
                self.hooks.on_step(epoch, step)
        bar.end()
        problem = first_non_finite(self.model.state_dict())
        if problem is not None:
            raise DivergedError(f"training diverged in epoch {epoch + 1}: {problem}{self._rate_advice()}")
        total_loss, total_hits = summed(loss, self.group), summed(hits, self.group)
        total_seen = round(summed(seen, self.group))
        return total_loss / total_seen, total_hits / total_seen, total_seen

    def _validate(self) -> tuple[float, float, list[int]]:
        """(mean cross-entropy, top-1 accuracy, prediction of every validation sample in order): each rank its
        share of the samples once, gathered."""
        rank, world = (self.group.rank, self.group.world_size) if self.group else (0, 1)
        mine = shard(list(range(len(self.val_set))), rank, world, pad=False)
        loss, predictions = evaluate(self.model, self._loader(self.val_set, mine), self.device, self.hooks.progress)
        everything = unshard(gathered(predictions, self.group))
        hits = sum(p == t for p, t in zip(everything, self.val_labels, strict=True))
        return summed(loss, self.group) / len(everything), hits / len(everything), everything

    def _rate_advice(self) -> str:
        return f" (head learning rate {self.optimizer.param_groups[0]['lr']:.3g}); lower the learning rate"

    def _epoch(self, epoch: int, balanced: bool) -> tuple[float, float, int]:
        """One epoch's training; torch running out of memory (the estimate checked up front can be short, or
        other processes took memory since) becomes one line."""
        try:
            return self._train_epoch(epoch, balanced)
        except RuntimeError as exc:  # torch.OutOfMemoryError, or the CPU allocator's plain RuntimeError
            message = str(exc).strip()
            if not isinstance(exc, torch.OutOfMemoryError) and "can't allocate memory" not in message:
                raise
            cause = message[message.find("DefaultCPUAllocator") :] if "DefaultCPUAllocator" in message else message
            cause = cause.splitlines()[0] if cause else type(exc).__name__
            raise ResourceLimitError(f"training epoch {epoch + 1} ran out of memory ({cause}); lower the batch "
                                     "size or the network size") from exc  # fmt: skip

    def restore(self, state: ResumeState, path: Path) -> None:
        check_resumable(state.key, self.key, path)
        state.restore(self.model, self.optimizer, path)

    def run(
        self, balanced: bool, start: ResumeState | None = None, saved: Callable[[TrainOutcome], object] | None = None
    ) -> TrainOutcome:
        """Train the remaining epochs; `saved` is called after each epoch's checkpoints have landed."""
        options = self.options
        outcome = TrainOutcome([], None, -1.0, [], False, self.device.type)
        if start is not None:
            outcome = TrainOutcome(list(start.history), start.best_epoch, start.best_accuracy,
                                   list(start.best_predictions), start.stopped_early, self.device.type,
                                   resumed_from=start.epochs_done)  # fmt: skip
        first = start.epochs_done if start is not None else 0
        main = self.group is None or self.group.is_main
        for epoch in range(first, options.epochs):
            if outcome.stopped_early:
                break
            tick = time.perf_counter()
            lr = set_epoch_rate(self.optimizer, epoch, options.epochs)
            stages = trainable_stages(options, epoch)
            apply_freezing(self.model, stages)
            self._wrap()
            train_loss, train_acc, seen = self._epoch(epoch, balanced)
            self.hooks.progress.begin(f"epoch {epoch + 1}/{options.epochs} validate", len(self.val_set))
            val_loss, val_acc, predictions = self._validate()
            self.hooks.progress.end()
            if not math.isfinite(val_loss):  # finite weights whose outputs overflow float32
                raise DivergedError(f"training diverged in epoch {epoch + 1}: the validation loss is "
                                    f"{val_loss}{self._rate_advice()}")  # fmt: skip
            best = from_main(val_acc > outcome.best_accuracy, self.group)  # decided once, for every rank
            if best:
                outcome.best_epoch, outcome.best_accuracy, outcome.best_predictions = epoch + 1, val_acc, predictions
                if main:
                    save_model(self.outdir / MODEL_NAME, self.model)
            seconds = time.perf_counter() - tick
            metrics = EpochMetrics(epoch + 1, lr, stages, train_loss, train_acc, val_loss, val_acc,
                                   round(seconds, 3), round(seen / seconds, 2), best)  # fmt: skip
            outcome.history.append(metrics.as_dict())
            assert outcome.best_epoch is not None
            stop = epoch + 1 - outcome.best_epoch >= options.patience and epoch + 1 < options.epochs
            outcome.stopped_early = from_main(stop, self.group)
            if main:
                ResumeState(self.key, epoch + 1, self.model.state_dict(), self.optimizer.state_dict(), outcome.history,
                            outcome.best_epoch, outcome.best_accuracy, outcome.best_predictions,
                            outcome.stopped_early).save(self.outdir / RESUME_NAME)  # fmt: skip
                if saved is not None:
                    saved(outcome)
                if self.hooks.on_epoch is not None:
                    self.hooks.on_epoch(metrics)
        return outcome
