"""The samples step of a build: the calibration set, and the held-out set read once with its FP32 logits."""

from __future__ import annotations

from dataclasses import dataclass

from edgeres.artifacts.precision import Precision
from edgeres.errors import UserInputError
from edgeres.flow.options import BuildOptions
from edgeres.flow.source import SourceModel
from edgeres.quantize.fidelity import HeldOutEvaluation
from edgeres.samples.calibration import CalibrationSet
from edgeres.samples.encoding import encoder_for
from edgeres.samples.holdout import (
    HOLDOUT_FRACTION,
    MAX_HOLDOUT,
    HeldOutSet,
    Holdout,
    check_held_out,
    evaluation_holdout,
)


@dataclass(frozen=True)
class BuildSamples:
    """The calibration set and the held-out set (read, with the FP32 logits, once)."""

    calibration: CalibrationSet
    held_out: HeldOutSet
    evaluation: HeldOutEvaluation
    note: str


def build_samples(options: BuildOptions, source: SourceModel) -> BuildSamples:
    """The calibration set, and the held-out set it never sees (a share of it, or the `eval_csv` rows)."""
    encoder = encoder_for(source.model, source.contract, source.normalization)
    classes = source.num_classes
    full = CalibrationSet(options.calib, encoder, options.calib_size, options.seed, options.raw, classes)
    if options.eval_csv is not None:
        calibration, holdout = full, evaluation_holdout(options.eval_csv, classes)
        check_held_out(holdout, full.pool, full.source)
    else:
        calibration, held_items = full.split_holdout(HOLDOUT_FRACTION, MAX_HOLDOUT)
        holdout = Holdout.of(full.reader, held_items, options.min_holdout_samples)
    if options.gate.min_accuracy is not None and not holdout.labelled:
        raise UserInputError(
            f"a minimum top-1 accuracy needs labelled held-out samples: {full.source} is not a path,label CSV "
            "with integer labels"
        )
    held_out = holdout.load(encoder, options.batch_size, options.seed)
    evaluation = HeldOutEvaluation(source.model, held_out.batches, source.weights, source.random_weights)
    if options.eval_csv is not None:
        note = f"fidelity and accuracy on every row of {options.eval_csv} ({holdout.samples} samples)"
    else:
        unseen = ", none seen by the calibrator" if options.precision is Precision.INT8 else ""
        note = f"fidelity on {holdout.describe()}{unseen}"
    return BuildSamples(calibration, held_out, evaluation, note)
