"""The quantize step of `edgeres build`: calibrate -> analyse (when asked) -> write INT8, or write FP16."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from edgeres.artifacts.atomic import sha256_bytes
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.errors import UserInputError
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import SourceModel
from edgeres.progress import Stages
from edgeres.quantize.artifacts import CACHE_NAME, write_fp16_model
from edgeres.quantize.cache import CalibCache, cache_key, write_cache
from edgeres.quantize.calibration_evidence import TensorEvidence, evidence_json
from edgeres.quantize.fallback import fallback_metrics
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.quantize.int8 import (
    Calibrated,
    CalibrationRecord,
    Int8Calibration,
    calibrate_int8,
    placement_record,
    write_int8_models,
)
from edgeres.quantize.qdq import QdqPlan, insert_qdq, plan_qdq
from edgeres.quantize.tensorrt_qdq import HIGH_PRECISION_GRID
from edgeres.samples.calibration import CalibrationSet

if TYPE_CHECKING:
    from edgeres.qat.distill import QatResult
    from edgeres.qat.scales import TrainedScales


@dataclass(frozen=True)
class Quantized:
    """The models the quantize step wrote and what the build reports of it."""

    artifacts: dict[ArtifactRole, Path]
    candidates: tuple[ArtifactRole, ...]  # the models judged on the held-out set; the engine's source first
    notes: tuple[str, ...]
    calibration: CalibrationRecord | None = None  # INT8 only, as are the rest
    plan: QdqPlan | None = None
    bias_correction: bool | None = None
    analysis: Int8Analysis = field(default_factory=Int8Analysis)
    evidence: Mapping[str, TensorEvidence] | None = None  # the calibration pass's histograms, when one ran
    qat: Mapping[str, Any] | None = None  # how quantization-aware training went, when it ran

    def sections(self) -> dict[str, Any]:
        """The build summary's sections for this step (written at the file boundary)."""
        if self.calibration is None or self.plan is None:
            return {}
        return self.analysis.sections() | {
            "calibration": self.calibration.as_dict(),
            "placement": placement_record(self.plan),
            "bias_correction": self.bias_correction,
            "calibration_evidence": None if self.evidence is None else evidence_json(self.evidence),
            "qat": None if self.qat is None else dict(self.qat),
        }

    @property
    def cpu_model(self) -> ArtifactRole:
        """The model that runs on this CPU: the twin, or the FP16 model."""
        return self.candidates[-1]


def quantize_int8(
    options: BuildOptions, source: SourceModel, calibration: CalibrationSet, evaluation: HeldOutEvaluation,
    outdir: Path, stages: Stages,
) -> Quantized:  # fmt: skip
    if source.trained_scales is not None:
        return quantize_trained(options, source, source.trained_scales, evaluation, outdir, stages)
    calibrated = calibrate_int8(source.path, source.model, calibration, options.int8, outdir, stages)
    analysis = Int8Analysis()
    qat_record, qat_note, missed = None, None, []
    if options.qat_epochs:
        calibrated, qat = quantization_aware_step(options, calibrated, calibration, evaluation, stages)
        qat_record, qat_note = qat.as_dict(), qat.describe()
        if options.auto_fallback:  # QAT is the fallback's first step: layers are kept in float only if it falls short
            missed = qat_gate_failures(options, calibrated, evaluation, stages)
            qat_record |= {"met_gate": not missed, "gate_failures": missed}
            if missed:
                qat_note = f"{qat_note}; it misses the gate ({missed[0]}): layers of it are kept in float"
    fallback_needed = options.auto_fallback and (not options.qat_epochs or bool(missed))
    if options.sensitivity or fallback_needed:
        request = replace(options.analysis, auto_fallback=fallback_needed)
        analysis = analyse_int8(calibrated, evaluation, request, outdir, stages)
    models = write_int8_models(source.path, calibrated, outdir, analysis.keep_float, source.input.to_json(),
                               qat_record)  # fmt: skip
    table = models.artifacts[ArtifactRole.CALIBRATION_TABLE]
    record = calibrated.calibrated.record
    notes = (
        record.describe(),
        f"TensorRT calibration table (header TRT-{models.table_header}) for DeepStream int8-calib-file: {table}",
        *(() if qat_note is None else (qat_note,)),
    )  # fmt: skip
    candidates = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    artifacts = models.artifacts | analysis.artifacts
    evidence = calibrated.calibrated.evidence
    corrected = options.bias_correction  # with QAT: the start it trained from
    return Quantized(artifacts, candidates, notes, record, models.plan, corrected, analysis, evidence, qat_record)


def qat_gate_failures(
    options: BuildOptions, trained: Int8Calibration, evaluation: HeldOutEvaluation, stages: Stages
) -> list[str]:
    """What the gate says of the QAT-trained model, judged as the fallback judges its candidates (the twin,
    then the TensorRT Q/DQ model by its reference arithmetic): QAT is the fallback's first step."""
    metrics = fallback_metrics(trained.variants(), evaluation)
    with stages.stage("fidelity of the QAT model", None, "qat_gate_s"):
        failures = options.gate.failures(metrics.twin(()))
        return failures or options.gate.failures(metrics.confirm(()))


def quantization_aware_step(
    options: BuildOptions, calibrated: Int8Calibration, calibration: CalibrationSet, evaluation: HeldOutEvaluation,
    stages: Stages,
) -> tuple[Int8Calibration, QatResult]:  # fmt: skip
    """Label-free QAT of the calibrated INT8 network (edgeres.qat), starting from PTQ's best (the bias-corrected
    biases, where bias correction ran): its trained weights replace the float model the INT8 models are written
    from, with no further bias correction (the biases trained)."""
    from edgeres.qat.distill import quantization_aware

    start = calibrated.corrected_model()
    samples = [np.asarray(batch) for batch in calibration.batches(options.batch_size)]
    held_out = [inputs for inputs, _ in evaluation.batches]
    with stages.stage(f"quantization-aware training ({options.qat_epochs} epochs)", None, "qat_s"):
        qat = quantization_aware(start, calibrated.plan, calibrated.calibrated.ranges, samples, held_out,
                                 options.qat_epochs, options.qat_lr, options.seed,
                                 HIGH_PRECISION_GRID[options.high_precision])  # fmt: skip
    trained = replace(calibrated, model=qat.model, biases=None, tensorrt_biases=None, weight_scales=qat.weight_scales)
    return trained, qat




def quantize_trained(
    options: BuildOptions, source: SourceModel, scales: TrainedScales, evaluation: HeldOutEvaluation, outdir: Path,
    stages: Stages,
) -> Quantized:  # fmt: skip
    """The INT8 models of a quantization-aware-trained model at the scales it carries, not recalibrated: its
    placement checked against today's, then the parity gate (the fake-quantized network it was trained as
    against the Q/DQ model written from it) before anything is written."""
    from edgeres.qat.distill import PARITY_SAMPLES, check_parity
    from edgeres.qat.network import QatNetwork
    from edgeres.qat.scales import TrainingSummary

    where = str(source.path)
    plan = plan_qdq(source.model)
    scales.check_placement(plan, where)
    settings = replace(options.int8, bias_correction=False)  # the biases were trained
    missing = [t for t in (*plan.activations, *plan.cpu_extra) if t not in scales.ranges]
    if missing:
        raise UserInputError(f"{where}: its trained scales have no range for {missing[0]} ({len(missing)} missing)")
    grid = HIGH_PRECISION_GRID[options.high_precision]  # checked against the trained grid with the options
    network = QatNetwork(source.model, plan, scales.ranges, grid)
    network.weight_scales = check_weight_scales(source.model, plan, scales.weight_scales, where)
    check = np.concatenate([inputs for inputs, _ in evaluation.batches])[:PARITY_SAMPLES]
    with stages.stage("parity of the trained model", None, "qat_parity_s"):
        exported = insert_qdq(source.model, plan, scales.ranges, grid=grid, weight_scales=network.weight_scales)
        worst = check_parity(network, exported, check)
    ranges = dict(scales.ranges)
    cache = outdir / CACHE_NAME
    digest = sha256_bytes(scales.to_json().encode())
    write_cache(cache, CalibCache(cache_key(source.path, digest, settings.calib_algo, settings.calib_options,
                                            list(ranges)), ranges, 0))  # fmt: skip
    record = CalibrationRecord(settings.calib_algo, settings.calib_options.percentile, cache, len(ranges), 0,
                               trained=where)  # fmt: skip
    calibrated = Int8Calibration(source.model, plan, Calibrated(ranges, record), None, None, settings,
                                 network.weight_scales)  # fmt: skip
    qat = {"source": where, "from_checkpoint": True, "parity": {"sqnr_db": worst, "samples": len(check)},
           "training": TrainingSummary.of(scales.record, where).to_json()}  # fmt: skip
    models = write_int8_models(source.path, calibrated, outdir, (), source.input.to_json(), qat)
    table = models.artifacts[ArtifactRole.CALIBRATION_TABLE]
    notes = (
        record.describe(),
        f"the export computes what was trained (worst node {worst:.0f} dB on {len(check)} held-out samples)",
        f"TensorRT calibration table (header TRT-{models.table_header}) for DeepStream int8-calib-file: {table}",
    )
    candidates = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    return Quantized(models.artifacts, candidates, notes, record, models.plan, False, Int8Analysis(), None, qat)


def check_weight_scales(
    model: onnx.ModelProto, plan: QdqPlan, stored: Mapping[str, np.ndarray], where: str
) -> dict[str, np.ndarray]:
    """The stored per-channel scales, one per output channel of each quantized weight, or a one-line refusal."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    scales = {}
    for weight in plan.weights:
        values = stored.get(weight.initializer)
        channels = shapes[weight.initializer][weight.axis]
        if values is None or len(values) != channels:
            have = "none" if values is None else len(values)
            raise UserInputError(f"{where}: its trained scales for {weight.initializer} are {have}, the weight has "
                                 f"{channels} channels")  # fmt: skip
        scales[weight.initializer] = np.asarray(values, np.float32)
    return scales


def quantize_fp16(source: SourceModel, outdir: Path) -> Quantized:
    path = write_fp16_model(source.path, source.model, outdir, source.input.to_json())
    return Quantized({ArtifactRole.FP16: path}, (ArtifactRole.FP16,), ())
