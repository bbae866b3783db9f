"""`edgeres sensitivity`: samples -> calibrate -> analyse, without writing the models of a build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeres.artifacts.staging import rollback_on_failure
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import AnalysisRequest, BuildOptions
from edgeres.flow.samples import build_samples
from edgeres.flow.source import source_model
from edgeres.progress import StageProgress, Stages
from edgeres.quantize.int8 import CalibrationRecord, calibrate_int8


@dataclass(frozen=True)
class SensitivityRun:
    """The analysis, and the data it was measured on."""

    analysis: Int8Analysis
    calibration: CalibrationRecord
    held_out: str  # which held-out samples, in words


def sensitivity(options: BuildOptions, outdir: Path, progress: StageProgress | None = None) -> SensitivityRun:
    """Which layers INT8 hurts, from one calibration of the source model (its cache kept in `outdir`).

    A failure or interrupt removes every file this run wrote into `outdir`.
    """
    options.check_files()
    stages = Stages(progress)
    with rollback_on_failure(Path(outdir)):
        source = source_model(options.onnx, options, outdir, stages)
        samples = build_samples(options, source)
        calibrated = calibrate_int8(source.path, source.model, samples.calibration, options.int8, outdir, stages)
        analysis = analyse_int8(calibrated, samples.evaluation, AnalysisRequest(sensitivity=True), outdir, stages)
    return SensitivityRun(analysis, calibrated.calibrated.record, samples.note)
