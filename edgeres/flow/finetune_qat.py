"""`edgeres finetune --qat-epochs N`: quantization-aware training as the last epochs of a fine-tune.

After the float epochs, the best model is exported as `build` would export it (camera front-end included) and
calibrated on the run's training split with the build's own defaults, so the ranges are the ones post-training
quantization would use; its bias-corrected INT8 network then trains on the labelled training split
(edgeres.qat.labelled) with the ranges and weight scales fixed. The result is OUT/model_qat.onnx: the trained
FP32 ONNX carrying the scales it was trained against (edgeres.qat.scales), which `edgeres build --int8 --onnx`
quantizes at those scales instead of calibrating, after the same parity gate. OUT/qat_last.pt holds the last
finished QAT epoch, what `--resume` continues from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.folder_lock import owned_folder
from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.staging import rollback_on_failure, scratch_folder
from edgeres.errors import CheckpointError, UserInputError
from edgeres.export.from_weights import export_default
from edgeres.export.record import ExportRecord
from edgeres.flow.int8 import check_weight_scales
from edgeres.flow.options import BuildOptions
from edgeres.progress import StageProgress, Stages
from edgeres.qat.distill import PARITY_SAMPLES, export_trained, network_inputs
from edgeres.qat.labelled import EPOCH_KEYS, LabelledQatState, LabelledSplit, train_labelled
from edgeres.qat.network import QatNetwork
from edgeres.qat.scales import TrainedScales, placement_of
from edgeres.quantize.fidelity import model_logits
from edgeres.quantize.int8 import calibrate_int8
from edgeres.quantize.qdq import QdqPlan, plan_qdq
from edgeres.quantize.tensorrt_qdq import HIGH_PRECISION_GRID
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from edgeres.samples.holdout import evaluation_holdout
from edgeres.train.checkpoints import save_atomic
from edgeres.train.finetune import FinetuneResult
from edgeres.train.options import DEFAULT_QAT_LR, FinetuneOptions
from edgeres.train.report import write_report

QAT_MODEL_NAME = "model_qat.onnx"
QAT_RESUME_NAME = "qat_last.pt"
QAT_RESUME_SCHEMA = 1


@dataclass(frozen=True)
class QatRequest:
    """How many QAT epochs, at which rate, and whether to distil from the fine-tuned float model too."""

    epochs: int
    lr: float = DEFAULT_QAT_LR
    distill: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserInputError(f"--qat-epochs {self.epochs}: must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserInputError(f"--qat-lr {self.lr}: must be a positive number")

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lr": self.lr, "distill": self.distill}


@dataclass(frozen=True)
class QatFinetuned:
    """What the QAT epochs wrote and how they went (finetune.json's "qat" section)."""

    model: Path
    record: Mapping[str, Any]

    def describe(self) -> str:
        r = self.record
        return (
            f"quantization-aware training: INT8 validation accuracy {r['ptq_val_accuracy']:.1%} (post-training) -> "
            f"{r['qat_val_accuracy']:.1%} (epoch {r['best_epoch']}); FP32 {r['fp32_val_accuracy']:.1%}; the export "
            f"computes what was trained (worst node {r['parity']['sqnr_db']:.0f} dB)"
        )


@dataclass(frozen=True)
class _Start:
    """The INT8 network QAT begins from: placement, ranges, and where they came from."""

    plan: QdqPlan
    ranges: dict[str, float]
    weight_scales: dict[str, np.ndarray] | None  # None: as the network computes them from its start weights
    start: onnx.ModelProto
    calibration: Mapping[str, Any] | None


def _resume_key(result: FinetuneResult, options: FinetuneOptions, request: QatRequest) -> dict[str, Any]:
    return {"model_sha256": sha256_file(result.model), "options": options.training_key(),
            "qat_lr": request.lr, "qat_distill": request.distill}  # fmt: skip


@dataclass(frozen=True)
class _Saved:
    """A QAT run's last finished epoch as qat_last.pt holds it: the training state and the start it trained from."""

    state: LabelledQatState
    ranges: dict[str, float]
    weight_scales: dict[str, np.ndarray]
    calibration: Mapping[str, Any] | None


def _save_state(path: Path, key: Mapping[str, Any], start: _Start, scales: Mapping[str, np.ndarray],
                state: LabelledQatState) -> None:  # fmt: skip
    save_atomic(path, {
        "schema": QAT_RESUME_SCHEMA, "key": json.dumps(key, sort_keys=True), "epochs_done": state.epochs_done,
        "params": state.params, "optimizer": state.optimizer, "history": json.dumps(state.history),
        "best_epoch": state.best_epoch, "best_accuracy": state.best_accuracy, "best_params": state.best_params,
        "ranges": json.dumps(start.ranges), "calibration": json.dumps(start.calibration),
        "weight_scales": {name: torch.from_numpy(np.asarray(value)) for name, value in scales.items()},
    })  # fmt: skip


def _refuse_other(path: Path, saved: Mapping[str, Any], key: Mapping[str, Any], names: Sequence[str]) -> None:
    for name in names:
        if saved.get(name) != key.get(name):
            raise UserInputError(
                f"{path}: the quantization-aware training being resumed had {name} = {saved.get(name)!r}, this "
                f"one has {key.get(name)!r}; resume with the same options, or run again in another folder"
            )


def check_qat_resumable(outdir: Path, request: QatRequest) -> None:
    """Refuse, before the float epochs run, QAT options that differ from those of the QAT run `outdir` holds
    (the same check `--resume` makes at the QAT epochs; a damaged file is left to that one)."""
    path = Path(outdir) / QAT_RESUME_NAME
    if not path.is_file():
        return
    try:
        saved = json.loads(torch.load(path, map_location="cpu", weights_only=True)["key"])
    except Exception:  # unreadable: the QAT step refuses it with the reason
        return
    if isinstance(saved, dict):
        _refuse_other(path, saved, {"qat_lr": request.lr, "qat_distill": request.distill}, ["qat_lr", "qat_distill"])


def _load_state(path: Path, key: Mapping[str, Any]) -> _Saved | None:
    """What qat_last.pt holds, checked; None when it belongs to another fine-tuned model.pth (the float epochs
    went on since: the QAT epochs start again); a one-line refusal when the QAT options differ."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        saved_key = json.loads(data["key"])
        state = LabelledQatState(
            int(data["epochs_done"]), dict(data["params"]), dict(data["optimizer"]), list(json.loads(data["history"])),
            int(data["best_epoch"]), float(data["best_accuracy"]), dict(data["best_params"]),
        )  # fmt: skip
        ranges = {str(k): float(v) for k, v in json.loads(data["ranges"]).items()}
        scales = {str(k): np.asarray(v.numpy(), np.float32) for k, v in dict(data["weight_scales"]).items()}
        calibration = json.loads(data["calibration"])
        schema = int(data["schema"])
    except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path}: not a quantization-aware training checkpoint of this edgeres ({exc!r})"
        ) from exc
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise CheckpointError(f"{path}: cannot be read as a quantization-aware training checkpoint "
                              f"({type(exc).__name__})") from exc  # fmt: skip
    if schema != QAT_RESUME_SCHEMA:
        raise CheckpointError(f"{path}: a quantization-aware training checkpoint of another format ({schema})")
    whole = all(isinstance(e, dict) and set(e) >= EPOCH_KEYS for e in state.history)
    counted = len(state.history) == state.epochs_done + 1 and 0 <= state.best_epoch <= state.epochs_done
    if not (state.history and whole and counted and "train_logit_error" in state.history[0]):
        raise CheckpointError(f"{path}: its epoch record is not one this edgeres writes; run again in another folder")
    bad = [n for n, v in ranges.items() if not (math.isfinite(v) and v > 0)]
    bad += [n for n, v in scales.items() if not (np.all(np.isfinite(v)) and np.all(v > 0))]
    if bad:
        raise CheckpointError(f"{path}: the range or weight scales of {bad[0]} are not positive finite numbers")
    if saved_key.get("model_sha256") != key.get("model_sha256"):
        return None
    _refuse_other(path, saved_key, key, sorted(set(saved_key) | set(key)))
    return _Saved(state, ranges, scales, calibration if isinstance(calibration, dict) else None)


def _labelled(model: onnx.ModelProto, network: QatNetwork, csv: Path, classes: int, options: FinetuneOptions,
              encoder: Any) -> tuple[np.ndarray, LabelledSplit]:  # fmt: skip
    """The model inputs of every row of `csv` and the split as the network takes it."""
    held = evaluation_holdout(csv, classes).load(encoder, options.batch_size, options.seed)
    inputs = np.concatenate([x for x, _ in held.batches])
    labels = np.concatenate([y for _, y in held.batches if y is not None])
    converted = torch.from_numpy(network_inputs(model, network, inputs))
    reference = torch.from_numpy(np.concatenate(model_logits(model, [inputs])))  # the float model's logits
    return inputs, LabelledSplit(converted, torch.from_numpy(labels.astype(np.int64)), reference)


def _calibrated_start(model_path: Path, model: onnx.ModelProto, train_csv: Path, classes: int, encoder: Any,
                      scratch: Path, stages: Stages) -> _Start:  # fmt: skip
    """PTQ as `build --int8 --calib train.csv` would do it: the build's own INT8 defaults."""
    defaults = BuildOptions()
    calibration = CalibrationSet(train_csv, encoder, defaults.calib_size, defaults.seed, None, classes)
    calibrated = calibrate_int8(model_path, model, calibration, defaults.int8, scratch, stages)
    record = calibrated.calibrated.record.as_dict() | {"bias_correction": calibrated.biases is not None}
    return _Start(calibrated.plan, dict(calibrated.calibrated.ranges), None, calibrated.corrected_model(), record)


def finetune_qat(
    result: FinetuneResult, options: FinetuneOptions, request: QatRequest, resume: bool,
    progress: StageProgress | None = None, on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> QatFinetuned:  # fmt: skip
    """The QAT epochs after the fine-tune `result` (see the module doc)."""
    outdir = result.outdir
    with owned_folder(outdir), scratch_folder("edgeres-qat-") as scratch:
        return _qat_into(outdir, result, options, request, resume, Stages(progress), on_epoch, scratch)


def _qat_into(
    outdir: Path, result: FinetuneResult, options: FinetuneOptions, request: QatRequest, resume: bool,
    stages: Stages, on_epoch: Callable[[dict[str, float]], None] | None, scratch: Path,
) -> QatFinetuned:  # fmt: skip
    resume_path = outdir / QAT_RESUME_NAME
    key = _resume_key(result, options, request)
    saved = _load_state(resume_path, key) if resume and resume_path.exists() else None
    restarted = resume and resume_path.exists() and saved is None  # the float epochs went on: QAT starts again
    classes = len(result.classes)
    with stages.stage("export the fine-tuned model"):
        exported = export_default(scratch / "model_fp32.onnx", options.arch, result.model, classes,
                                  contract=options.contract, size=options.size)  # fmt: skip
    model = load_onnx(exported.path)
    encoder = encoder_for(model, options.contract)
    if saved is None:
        start = _calibrated_start(exported.path, model, result.train_csv, classes, encoder, scratch, stages)
    else:
        start = _Start(plan_qdq(model), saved.ranges, saved.weight_scales, model, saved.calibration)
        missing = [t for t in (*start.plan.activations, *start.plan.cpu_extra) if t not in start.ranges]
        if missing:
            raise CheckpointError(f"{resume_path}: has no range for {missing[0]} of this model")
        check_weight_scales(model, start.plan, start.weight_scales or {}, str(resume_path))
    grid = HIGH_PRECISION_GRID[BuildOptions().high_precision]  # the scales the build will write
    network = QatNetwork(start.start, start.plan, start.ranges, grid)
    if start.weight_scales is not None:
        network.weight_scales = dict(start.weight_scales)
    with stages.stage("read the training and validation splits"):
        _, train = _labelled(model, network, result.train_csv, classes, options, encoder)
        val_inputs, val = _labelled(model, network, result.val_csv, classes, options, encoder)
    scales = dict(network.weight_scales)
    with stages.stage(f"quantization-aware training ({request.epochs} epochs)", None, "qat_s"):
        state = train_labelled(
            network, train, val, request.epochs, request.lr, options.seed, options.label_smoothing, request.distill,
            None if saved is None else saved.state, lambda s: _save_state(resume_path, key, start, scales, s), on_epoch,
        )  # fmt: skip
    check = val_inputs[:PARITY_SAMPLES]
    with stages.stage("parity of the export"):
        export = export_trained(model, network, start.plan, start.ranges, check)
    record = {
        "request": request.as_dict(),
        "fp32_val_accuracy": float((val.reference.argmax(1) == val.labels).float().mean()),
        "ptq_val_accuracy": state.history[0]["val_accuracy"],
        "qat_val_accuracy": state.best_accuracy,
        "best_epoch": state.best_epoch,
        "epochs": state.history,
        "train_samples": len(train.labels),
        "val_samples": len(val.labels),
        "calibration": start.calibration,
        "parity": {"sqnr_db": export.parity_sqnr_db, "top1_agreement": export.parity_agreement, "samples": len(check)},
        "model": QAT_MODEL_NAME,
        "model_sha256": key["model_sha256"],  # the fine-tuned model.pth it was trained from
        "restarted": restarted,
    }
    stamped = TrainedScales(start.ranges, scales, placement_of(start.plan), record, grid).stamp(export.model)
    path = _write_model(outdir / QAT_MODEL_NAME, stamped, exported.record, result.model)
    write_report(outdir, result.report_data | {"qat": record})
    return QatFinetuned(path, record)


def _write_model(path: Path, model: onnx.ModelProto, exported: ExportRecord, weights: Path) -> Path:
    """The trained model and its sidecar (the export's model record: input, classes, opset), together or neither."""
    with rollback_on_failure(path.parent):
        write_bytes_atomic(path, model.SerializeToString())
        ExportRecord(model=exported.model, weights=f"{weights} + quantization-aware training").write(path)
    return path
