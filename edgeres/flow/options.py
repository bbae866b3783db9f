"""What `edgeres build` is asked to do, validated when it is made."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.precision import Precision
from edgeres.engine.options import EngineOptions
from edgeres.errors import UserInputError
from edgeres.flow.source import check_source_onnx, given_source_record
from edgeres.frames.contract import FrameFormat, InputContract
from edgeres.frames.normalization import PixelNormalization
from edgeres.model.arch import Arch
from edgeres.qat.scales import check_trained_from, trained_scales
from edgeres.quantize.cache import (
    DEFAULT_TRT_VERSION,
    trt_version_number,
)
from edgeres.quantize.gate import DEFAULT_MAX_FALLBACK, FidelityGate, check_fallback_budget, check_fallback_target
from edgeres.quantize.histogram import CalibAlgo, CalibOptions
from edgeres.quantize.settings import Int8Settings
from edgeres.quantize.tensorrt_qdq import HIGH_PRECISION_GRID, HighPrecision
from edgeres.samples.calibration import DEFAULT_BATCH, DEFAULT_SEED
from edgeres.samples.holdout import MIN_HOLDOUT_SAMPLES
from edgeres.samples.sources import SampleSource, sample_source

DEFAULT_QAT_LR = 1e-6  # Adam on BatchNorm-folded weights (docs/building.md, "Quantization-aware training")
DEFAULT_PROFILE_ITERATIONS = 10  # a first idea of speed after a build; `edgeres profile` measures properly


# MSE is the default: on the trained EfficientNet-Lite0 check it is as faithful as max and better than
# percentile and entropy (docs/measured-results.md), and one outlier frame cannot set its range as it sets max's.
DEFAULT_CALIB_ALGO = CalibAlgo.MSE
DEFAULT_CALIB_SIZE = 64  # calibration samples
DEFAULT_CALIB_BATCH = DEFAULT_BATCH  # calibration samples per model call
DEFAULT_CALIB_SEED = DEFAULT_SEED  # seed of the shuffle and of the held-out split


@dataclass(frozen=True)
class AnalysisRequest:
    """Which INT8 questions to answer: sensitivity, and automatic fallback to meet `gate`."""

    sensitivity: bool = False
    auto_fallback: bool = False
    gate: FidelityGate = field(default_factory=FidelityGate)
    max_fallback: int = DEFAULT_MAX_FALLBACK

    @property
    def asked(self) -> bool:
        return self.sensitivity or self.auto_fallback


@dataclass(frozen=True)
class BuildOptions:
    precision: Precision = Precision.INT8
    onnx: Path | None = None  # an FP32 ONNX to start from instead of exporting
    arch: Arch = Arch.RESNET50
    weights: Path | None = None
    num_classes: int | None = None
    # A folder of images / raw frames, a path,label CSV, or any SampleSource; None: the shipped photographs.
    calib: Path | SampleSource | None = None
    # A labelled path,label CSV evaluated whole (every row once, none derived) instead of a held-out share of
    # `calib`, which then calibrates on all of itself.
    eval_csv: Path | None = None
    calib_algo: CalibAlgo = DEFAULT_CALIB_ALGO
    calib_size: int = DEFAULT_CALIB_SIZE
    batch_size: int = DEFAULT_CALIB_BATCH
    seed: int = DEFAULT_CALIB_SEED
    percentile: float = CalibOptions().percentile  # for --calib-algo percentile
    keep_float: tuple[str, ...] = ()
    # Which layers INT8 hurts (edgeres.quantize.sensitivity): sensitivity.json and .png in the build folder.
    sensitivity: bool = False
    # Keep the fewest extra layers in float that make `gate` pass (edgeres.quantize.fallback), at most max_fallback.
    auto_fallback: bool = False
    max_fallback: int = DEFAULT_MAX_FALLBACK
    # Bias correction (edgeres.quantize.bias_correction) raises logits SQNR on the trained and the random-weight
    # checks (docs/building.md, "Bias correction"). Its input means come from the calibration pass itself; a
    # reused cache costs one float pass for them.
    bias_correction: bool = True
    # The TensorRT Q/DQ model's non-INT8 remainder (front-end, float layers, Adds, pooling): FP16 by default,
    # as NVIDIA Model Optimizer writes it; it needs TensorRT 10 or later (edgeres.quantize.tensorrt_qdq).
    high_precision: HighPrecision = HighPrecision.FP16
    gate: FidelityGate = field(default_factory=FidelityGate)
    raw: FrameFormat | None = None  # layout and size of raw .yuv calibration frames
    contract: InputContract | None = None  # camera-frame input: export (or expect) the fused model
    # How a given RGB ONNX wants its floats; None: as its sidecar records, else ImageNet RGB.
    normalization: PixelNormalization | None = None
    recalibrate: bool = False  # overwrite a calibration cache made from other inputs instead of refusing
    trt_table_version: str = DEFAULT_TRT_VERSION  # header version of calibration.table
    engine: EngineOptions = field(default_factory=EngineOptions)
    profile_iterations: int = DEFAULT_PROFILE_ITERATIONS  # 0: no profile after the build
    min_holdout_samples: int = MIN_HOLDOUT_SAMPLES
    build_engine: bool = True  # False: never build a TensorRT engine, even where one could be built
    # Label-free quantization-aware training (edgeres.qat) after calibration: epochs over the calibration samples
    # (0: none) and its learning rate.
    qat_epochs: int = 0
    qat_lr: float = DEFAULT_QAT_LR

    def __post_init__(self) -> None:
        if self.precision is Precision.FP32:
            raise UserInputError("build makes INT8 or FP16 models; the FP32 ONNX comes from `edgeres export`")
        if self.calib_size < 1:
            raise UserInputError(f"calibration size {self.calib_size}: must be at least 1")
        if self.batch_size < 1:
            raise UserInputError(f"calibration batch {self.batch_size}: must be at least 1")
        if self.profile_iterations < 0:
            raise UserInputError(f"profile iterations {self.profile_iterations}: must be 0 (off) or more")
        check_fallback_budget(self.max_fallback)
        if self.auto_fallback:
            check_fallback_target(self.gate)
        if (self.auto_fallback or self.sensitivity) and self.precision is not Precision.INT8:
            raise UserInputError("sensitivity analysis and automatic fallback are for INT8 builds")
        try:
            CalibOptions(percentile=self.percentile)
        except ValueError as exc:
            raise UserInputError(f"calibration percentile {self.percentile}: {exc}") from None
        trt_version_number(self.trt_table_version)  # raises UserInputError when it cannot be a header
        self._check_qat()
        if self.normalization is not None and self.onnx is None:
            raise UserInputError(
                "--mean, --std and --channel-order describe a model given with --onnx; the models edgeres "
                "exports (torchvision's) take ImageNet-normalised RGB"
            )
        if self.normalization is not None and self.contract is not None:
            raise UserInputError(
                "--mean, --std and --channel-order are for a model taking RGB floats; a model taking raw frames "
                "normalises them in its fused front-end"
            )

    def _check_qat(self) -> None:
        if self.qat_epochs < 0:
            raise UserInputError(f"--qat-epochs {self.qat_epochs}: must be 0 (none) or more")
        if not (self.qat_lr > 0 and math.isfinite(self.qat_lr)):
            raise UserInputError(f"--qat-lr {self.qat_lr}: must be a positive number")
        if not self.qat_epochs:
            return
        if self.precision is not Precision.INT8:
            raise UserInputError("--qat-epochs trains an INT8 model; an FP16 build has nothing to train")

    def check_files(self) -> None:
        """Refuse missing sources and a given ONNX of the wrong shape, before a build writes anything."""
        if isinstance(self.calib, Path | str) and not Path(self.calib).exists():
            raise UserInputError(f"{self.calib}: calibration source not found")
        if self.eval_csv is not None and not Path(self.eval_csv).is_file():
            raise UserInputError(f"{self.eval_csv}: evaluation CSV not found")
        if self.onnx is not None and not Path(self.onnx).is_file():
            raise UserInputError(f"{self.onnx}: ONNX file not found")
        if self.onnx is not None:
            check_source_onnx(self.onnx)  # one input of a fixed size
            given_source_record(Path(self.onnx))  # its sidecar describes it, with sections of the right types
            self._check_trained(Path(self.onnx))
        if isinstance(self.calib, Path | str):
            sample_source(self.calib, self.raw).items([])  # what it holds is listed before any export

    def _check_trained(self, path: Path) -> None:
        """A quantization-aware-trained model is quantized at the scales it carries: refuse what would
        recalibrate over them (or re-place its Q/DQ) instead of silently discarding what training fitted."""
        scales = None if self.precision is not Precision.INT8 else trained_scales(load_onnx(path, weights=False),
                                                                                    str(path))  # fmt: skip
        if scales is None:
            return
        check_trained_from(path, scales)
        if scales.grid is not HIGH_PRECISION_GRID[self.high_precision]:
            raise UserInputError(f"{path}: was trained with {scales.grid.value} scales, which --high-precision "
                                 f"{self.high_precision.value} does not write")  # fmt: skip
        default = BuildOptions()
        recalibrating = {
            "--calib-algo": self.calib_algo != default.calib_algo,
            "--percentile": self.percentile != default.percentile,
            "--keep-float": bool(self.keep_float), "--qat-epochs": bool(self.qat_epochs),
            "--auto-fallback": self.auto_fallback, "--sensitivity": self.sensitivity,
            "--recalibrate": self.recalibrate,
        }  # fmt: skip
        given = [flag for flag, asked in recalibrating.items() if asked]
        if given:
            raise UserInputError(
                f"{path}: carries the ranges and weight scales its quantization-aware training fitted the weights to; "
                f"{', '.join(given)} would quantize it anew and lose that training: drop {given[0]}, or build from "
                "the float checkpoint (model.pth) to calibrate afresh"
            )

    @property
    def calib_options(self) -> CalibOptions:
        return CalibOptions(percentile=self.percentile)

    @property
    def int8(self) -> Int8Settings:
        return Int8Settings(
            self.calib_algo, self.calib_options, self.batch_size, self.keep_float, self.bias_correction,
            self.high_precision, self.trt_table_version, self.recalibrate,
        )  # fmt: skip

    @property
    def analysis(self) -> AnalysisRequest:
        return AnalysisRequest(self.sensitivity, self.auto_fallback, self.gate, self.max_fallback)

    def recipe(self) -> dict[str, Any]:
        """The choices that reproduce this build's calibration and held-out split (build_summary.json)."""
        return {
            "calib": _source_name(self.calib),
            "eval_csv": None if self.eval_csv is None else str(Path(self.eval_csv).resolve()),
            "calib_algo": self.calib_algo.value,
            "calib_size": self.calib_size,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "percentile": self.percentile,
            "keep_float": list(self.keep_float),
            "bias_correction": self.bias_correction,
            "high_precision": self.high_precision.value,
            "raw": None if self.raw is None else str(self.raw),
            "min_holdout_samples": self.min_holdout_samples,
            "normalization": None if self.normalization is None else self.normalization.to_json(),
            "qat_epochs": self.qat_epochs,
            "qat_lr": self.qat_lr,
        }

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any], onnx: Path, **changes: Any) -> BuildOptions:
        """INT8 options that redo a recorded build's calibration on its FP32 model `onnx`."""
        try:
            return cls(
                onnx=onnx,
                calib=None if recipe["calib"] is None else Path(recipe["calib"]),
                eval_csv=None if recipe["eval_csv"] is None else Path(recipe["eval_csv"]),
                calib_algo=CalibAlgo(recipe["calib_algo"]),
                calib_size=int(recipe["calib_size"]),
                batch_size=int(recipe["batch_size"]),
                seed=int(recipe["seed"]),
                percentile=float(recipe["percentile"]),
                keep_float=tuple(str(name) for name in recipe["keep_float"]),
                bias_correction=bool(recipe["bias_correction"]),
                high_precision=HighPrecision(recipe["high_precision"]),
                raw=None if recipe["raw"] is None else FrameFormat.parse(str(recipe["raw"])),
                min_holdout_samples=int(recipe["min_holdout_samples"]),
                normalization=_recorded_normalization(recipe.get("normalization")),
                qat_epochs=int(recipe.get("qat_epochs", 0)),
                qat_lr=float(recipe.get("qat_lr", DEFAULT_QAT_LR)),
                **changes,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"the build's recorded options are incomplete or invalid ({exc!r})") from None


def _recorded_normalization(value: object) -> PixelNormalization | None:
    return None if value is None else PixelNormalization.from_json(value, "the build's options.normalization")


def _source_name(source: Path | SampleSource | None) -> str | None:
    """How the recipe records a calibration source: a resolved path, or the name of an API source."""
    if source is None:
        return None
    return str(Path(source).resolve()) if isinstance(source, Path | str) else source.name
