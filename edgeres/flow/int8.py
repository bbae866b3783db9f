"""The quantize step of `edgeres build`: calibrate -> analyse (when asked) -> write INT8, or write FP16."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import SourceModel
from edgeres.progress import Stages
from edgeres.quantize.artifacts import write_fp16_model
from edgeres.quantize.calibration_evidence import TensorEvidence, evidence_json
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.quantize.int8 import CalibrationRecord, calibrate_int8, placement_record, write_int8_models
from edgeres.quantize.qdq import QdqPlan
from edgeres.samples.calibration import CalibrationSet


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

    def sections(self) -> dict[str, Any]:
        """The build summary's sections for this step (written at the file boundary)."""
        if self.calibration is None or self.plan is None:
            return {}
        return self.analysis.sections() | {
            "calibration": self.calibration.as_dict(),
            "placement": placement_record(self.plan),
            "bias_correction": self.bias_correction,
            "calibration_evidence": None if self.evidence is None else evidence_json(self.evidence),
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
    models = write_int8_models(source.path, calibrated, outdir, analysis.keep_float, source.input.to_json())
    table = models.artifacts[ArtifactRole.CALIBRATION_TABLE]
    record = calibrated.calibrated.record
    notes = (
        record.describe(),
        f"TensorRT calibration table (header TRT-{models.table_header}) for DeepStream int8-calib-file: {table}",
    )  # fmt: skip
    candidates = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    artifacts = models.artifacts | analysis.artifacts
    evidence = calibrated.calibrated.evidence
    return Quantized(artifacts, candidates, notes, record, models.plan, options.bias_correction, analysis, evidence)


def quantize_fp16(source: SourceModel, outdir: Path) -> Quantized:
    path = write_fp16_model(source.path, source.model, outdir, source.input.to_json())
    return Quantized({ArtifactRole.FP16: path}, (ArtifactRole.FP16,), ())
