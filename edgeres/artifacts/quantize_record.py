"""What the quantize stage records beside each model it makes (FP16, the TensorRT Q/DQ model, the CPU twin).

Kept here, below every stage: the quantize stage writes it and deploy reads it back (a DeepStream INT8
config needs the calibrated ranges when no table lies beside the model). The choices are recorded as the
values of their enums (`CalibAlgo`, `HighPrecision`, `WeightType` live above this package).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.sidecar import Section, Sidecar, Stage, read_sidecar, write_sidecar
from edgeres.errors import UserInputError

RANGES = "ranges"


@dataclass(frozen=True)
class QuantizeRecord:
    """A model made from an FP32 ONNX by the quantize stage: its role, how it was quantized, its ranges.

    Fields left None are not written (the FP16 model records only `keep_io_float`). `report` holds the
    results shown to people and read by nobody inside edgeres (placement counts, the calibration summary).
    """

    role: ArtifactRole
    source: Path  # inputs.onnx: the FP32 model it was made from
    source_sha256: str | None = None  # inputs.onnx_sha256: taken from `source` when written
    calib_algo: str | None = None  # a CalibAlgo value
    keep_float: tuple[str, ...] | None = None  # layers left in float
    bias_correction: bool | None = None
    weights: str | None = None  # how weights are quantized, in words
    activations: str | None = None  # how activations are quantized, in words
    target: str | None = None  # the runtime the model is for, in words
    high_precision: str | None = None  # a HighPrecision value: the type of what is not INT8
    cpu_weights: str | None = None  # a WeightType value: the CPU twin's weight codes
    keep_io_float: bool | None = None  # FP16: inputs and outputs stay float32
    # options["input"] as the FP32 model's (edgeres.frames.contract.InputSpec.to_json), so a model made from an
    # ONNX without a sidecar still says what it takes; read back by InputSpec.of, its one decoder.
    input: Mapping[str, Any] | None = None
    ranges: Mapping[str, float] | None = None  # calibrated absolute maximum per activation tensor
    report: Mapping[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The sidecar's options section: the role and how the model was quantized."""
        values: dict[str, Any] = {
            "role": self.role.value,
            "calib_algo": self.calib_algo,
            "keep_float": None if self.keep_float is None else list(self.keep_float),
            "bias_correction": self.bias_correction,
            "weights": self.weights,
            "activations": self.activations,
            "target": self.target,
            "high_precision": self.high_precision,
            "cpu_weights": self.cpu_weights,
            "keep_io_float": self.keep_io_float,
            "input": None if self.input is None else dict(self.input),
        }
        return {key: value for key, value in values.items() if value is not None}

    def write(self, artifact: Path) -> Sidecar:
        """The sidecar of `artifact` (already written), naming its source and that source's SHA-256."""
        inputs: dict[str, str | None] = {"onnx": str(self.source), "onnx_sha256": sha256_file(self.source)}
        results = dict(self.report)
        if self.ranges is not None:
            results[RANGES] = dict(self.ranges)
        return write_sidecar(artifact, Stage.QUANTIZE, inputs, self.options(), results)

    @classmethod
    def of(cls, sidecar: Sidecar) -> QuantizeRecord:
        """The record a quantize sidecar holds; one-line UserInputError naming the file on a malformed value."""
        sidecar.require_stage(Stage.QUANTIZE)
        inputs, options = sidecar.fields(Section.INPUTS), sidecar.fields(Section.OPTIONS)
        results = sidecar.fields(Section.RESULTS)
        role = sidecar.role
        if role is None:
            raise UserInputError(f"{sidecar.path}: options has no role (which model of the build this is)")
        return cls(
            role=role,
            source=Path(inputs.require("onnx", str)),
            source_sha256=inputs.get("onnx_sha256", str),
            calib_algo=options.get("calib_algo", str),
            keep_float=options.items("keep_float", str),
            bias_correction=options.get("bias_correction", bool),
            weights=options.get("weights", str),
            activations=options.get("activations", str),
            target=options.get("target", str),
            high_precision=options.get("high_precision", str),
            cpu_weights=options.get("cpu_weights", str),
            keep_io_float=options.get("keep_io_float", bool),
            input=options.get("input", dict),
            ranges=results.mapping(RANGES, float),
            report={key: value for key, value in results.data.items() if key != RANGES},
        )


def read_quantize_record(artifact: Path) -> QuantizeRecord | None:
    """The quantize record beside `artifact`; None when it has no sidecar or another stage wrote it."""
    sidecar = read_sidecar(artifact)
    if sidecar is None or sidecar.stage != Stage.QUANTIZE.value:
        return None
    return QuantizeRecord.of(sidecar)
