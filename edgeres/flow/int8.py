"""The quantize step of `edgeres build`: calibrate -> analyse (when asked) -> write INT8, or write FP16."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.kinds import ArtifactRole
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import SourceModel
from edgeres.progress import Stages
from edgeres.quantize.artifacts import write_fp16_model
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.quantize.int8 import calibrate_int8, write_int8_models
from edgeres.samples.calibration import CalibrationSet


@dataclass(frozen=True)
class Quantized:
    """The models the quantize step wrote and what the build reports of it."""

    artifacts: dict[ArtifactRole, Path]
    candidates: tuple[ArtifactRole, ...]  # the models judged on the held-out set; the engine's source first
    sections: dict[str, Any]  # build summary sections (calibration, placement, analysis)
    notes: tuple[str, ...]
    analysis: Int8Analysis = field(default_factory=Int8Analysis)

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
    models = write_int8_models(source.path, calibrated, outdir, analysis.keep_float)
    table = models.artifacts[ArtifactRole.CALIBRATION_TABLE]
    notes = (
        calibrated.calibrated.note,
        f"TensorRT calibration table (header TRT-{models.table_header}) for DeepStream int8-calib-file: {table}",
    )  # fmt: skip
    sections = analysis.sections() | {
        "calibration": calibrated.calibrated.record,
        "placement": models.placement,
        "bias_correction": options.bias_correction,
    }
    candidates = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME)
    return Quantized(models.artifacts | analysis.artifacts, candidates, sections, notes, analysis)


def quantize_fp16(source: SourceModel, outdir: Path) -> Quantized:
    path = write_fp16_model(source.path, source.model, outdir)
    return Quantized({ArtifactRole.FP16: path}, (ArtifactRole.FP16,), {}, ())
