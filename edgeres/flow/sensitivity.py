"""`edgeres sensitivity`: samples -> calibrate -> analyse, without writing the models of a build."""

from __future__ import annotations

from pathlib import Path

from edgeres.artifacts.staging import rollback_on_failure
from edgeres.flow.int8_analysis import Int8Analysis, analyse_int8
from edgeres.flow.options import AnalysisRequest, BuildOptions
from edgeres.flow.samples import build_samples
from edgeres.flow.source import source_model
from edgeres.progress import StageProgress, Stages
from edgeres.quantize.int8 import calibrate_int8


def sensitivity(options: BuildOptions, outdir: Path, progress: StageProgress | None = None) -> Int8Analysis:
    """Which layers INT8 hurts, from one calibration of the source model (its cache kept in `outdir`).

    A failure or interrupt removes every file this run wrote into `outdir`.
    """
    options.check_files()
    stages = Stages(progress)
    with rollback_on_failure(Path(outdir)):
        source = source_model(options.onnx, options, outdir, stages)
        samples = build_samples(options, source)
        calibrated = calibrate_int8(source.path, source.model, samples.calibration, options.int8, outdir, stages)
        return analyse_int8(calibrated, samples.evaluation, AnalysisRequest(sensitivity=True), outdir, stages)
