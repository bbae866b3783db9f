"""The quantize step of `edgeres build`: calibrate -> analyse (when asked) -> write INT8, or write FP16."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import SourceModel
from edgeres.progress import Stages
from edgeres.quantize.artifacts import write_fp16_model
from edgeres.quantize.calibration_evidence import TensorEvidence, evidence_json
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.quantize.int8 import (
    CalibrationRecord,
    Int8Calibration,
    calibrate_int8,
    placement_record,
    write_int8_models,
)
from edgeres.quantize.qdq import QdqPlan
from edgeres.samples.calibration import CalibrationSet

if TYPE_CHECKING:
    from edgeres.qat.distill import QatResult


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
    calibrated = calibrate_int8(source.path, source.model, calibration, options.int8, outdir, stages)
    analysis = Int8Analysis()
    if options.analysis.asked:
        analysis = analyse_int8(calibrated, evaluation, options.analysis, outdir, stages)
    qat = None
    if options.qat_epochs:
        calibrated, qat = quantization_aware_step(options, calibrated, calibration, evaluation, stages)
    scales = None if qat is None else qat.weight_scales
    models = write_int8_models(source.path, calibrated, outdir, analysis.keep_float, source.input.to_json(), scales,
                               None if qat is None else qat.as_dict())  # fmt: skip
    table = models.artifacts[ArtifactRole.CALIBRATION_TABLE]
    record = calibrated.calibrated.record
    notes = (
        record.describe(),
        f"TensorRT calibration table (header TRT-{models.table_header}) for DeepStream int8-calib-file: {table}",
        *(() if qat is None else (qat.describe(),)),
    )  # fmt: skip
    candidates = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    artifacts = models.artifacts | analysis.artifacts
    evidence = calibrated.calibrated.evidence
    corrected = options.bias_correction  # with QAT: the start it trained from
    return Quantized(artifacts, candidates, notes, record, models.plan, corrected, analysis, evidence,
                     None if qat is None else qat.as_dict())  # fmt: skip


def quantization_aware_step(
    options: BuildOptions, calibrated: Int8Calibration, calibration: CalibrationSet, evaluation: HeldOutEvaluation,
    stages: Stages,
) -> tuple[Int8Calibration, QatResult]:  # fmt: skip
    """Label-free QAT of the calibrated INT8 network (edgeres.qat), starting from PTQ's best (the bias-corrected
    biases, where bias correction ran): its trained weights replace the float model the INT8 models are written
    from, with no further bias correction (the biases trained)."""
    from edgeres.qat.distill import quantization_aware
    from edgeres.quantize.bias_correction import with_biases

    start = calibrated.model
    if calibrated.biases is not None:
        start = with_biases(start, calibrated.biases, [w.node for w in calibrated.plan.weights])
    samples = [np.asarray(batch) for batch in calibration.batches(options.batch_size)]
    held_out = [inputs for inputs, _ in evaluation.batches]
    with stages.stage(f"quantization-aware training ({options.qat_epochs} epochs)", None, "qat_s"):
        qat = quantization_aware(start, calibrated.plan, calibrated.calibrated.ranges, samples, held_out,
                                 options.qat_epochs, options.qat_lr, options.seed)  # fmt: skip
    return replace(calibrated, model=qat.model, biases=None, tensorrt_biases=None), qat


def quantize_fp16(source: SourceModel, outdir: Path) -> Quantized:
    path = write_fp16_model(source.path, source.model, outdir, source.input.to_json())
    return Quantized({ArtifactRole.FP16: path}, (ArtifactRole.FP16,), ())
