"""What export records beside the ONNX it writes: the model (`ModelSpec`), its weights and its parity with
PyTorch (`ExportRecord`). Torch-free, so deploy and the build read it without importing PyTorch.

`ModelSpec` is also what a deployment's own ONNX records (edgeres.deploy.record); a quantized ONNX records
none and inherits its source's, which `read_model_spec` follows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeres.artifacts.fields import Fields
from edgeres.artifacts.lineage import nearest
from edgeres.artifacts.precision import Precision
from edgeres.artifacts.sidecar import Section, Sidecar, Stage, read_sidecar, write_sidecar
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputSpec


@dataclass(frozen=True)
class ParityTolerance:
    """FP32 PyTorch vs FP32 onnxruntime: only summation order differs, so errors are tiny."""

    max_abs: float = 1e-3
    min_cosine: float = 0.99999

    @classmethod
    def from_json(cls, fields: Fields) -> ParityTolerance:
        return cls(fields.require("max_abs", float), fields.require("min_cosine", float))


@dataclass(frozen=True)
class ParityReport:
    samples: int
    max_abs_error: float
    max_rel_error: float
    min_cosine: float
    top1_agreement: float

    def within(self, tolerance: ParityTolerance) -> bool:
        return self.max_abs_error <= tolerance.max_abs and self.min_cosine >= tolerance.min_cosine

    @classmethod
    def from_json(cls, fields: Fields) -> ParityReport:
        return cls(
            samples=fields.require("samples", int),
            max_abs_error=fields.require("max_abs_error", float),
            max_rel_error=fields.require("max_rel_error", float),
            min_cosine=fields.require("min_cosine", float),
            top1_agreement=fields.require("top1_agreement", float),
        )


@dataclass(frozen=True)
class OutputSpec:
    """The model's output as a sidecar records it (options["output"]): tensor name and shape."""

    name: str
    shape: tuple[int | str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, fields: Fields) -> OutputSpec:
        shape = fields.shape("shape")
        if shape is None:
            raise UserInputError(f"{fields.where} has no shape")
        return cls(fields.require("name", str), shape)


@dataclass(frozen=True)
class ModelSpec:
    """What an ONNX model is: network, class count, opset, input, output, and whether its weights are random.

    A sidecar holds one when its options record num_classes. The file's precision is written beside it by
    each writer and read through edgeres.artifacts.precision: a quantized model inherits this spec from its
    FP32 source, but not the source's precision.
    """

    arch: str | None
    num_classes: int
    input: InputSpec | None
    output: OutputSpec | None
    opset: int | None = None
    random_weights: bool | None = None  # None: not recorded
    class_names: tuple[str, ...] | None = None  # line k naming class k; None: not recorded

    def to_options(self, precision: Precision) -> dict[str, Any]:
        """The options keys a model's sidecar holds, in the order export writes them."""
        values: dict[str, Any] = {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "opset": self.opset,
            "precision": precision.value,
            "input": None if self.input is None else self.input.to_json(),
            "output": None if self.output is None else self.output.to_json(),
            "random_weights": self.random_weights,
            "class_names": None if self.class_names is None else list(self.class_names),
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_options(cls, options: Fields) -> ModelSpec | None:
        """The spec in a sidecar's options (or a copy of them); None when they record no num_classes."""
        num_classes = options.get("num_classes", int)
        if num_classes is None:
            return None
        if num_classes < 1:
            raise options.refusal("num_classes", num_classes, "a class count of at least 1")
        output = options.section("output")
        names = options.items("class_names", str)
        if names is not None and len(names) != num_classes:
            raise options.refusal("class_names", f"{len(names)} names", f"{num_classes} names, one per class")
        return cls(
            arch=options.get("arch", str),
            num_classes=num_classes,
            input=InputSpec.from_options(options),
            output=None if output is None else OutputSpec.from_json(output),
            opset=options.get("opset", int),
            random_weights=options.get("random_weights", bool),
            class_names=names,
        )

    @classmethod
    def of(cls, sidecar: Sidecar) -> ModelSpec | None:
        return cls.from_options(sidecar.fields(Section.OPTIONS))


@dataclass(frozen=True)
class ExportRecord:
    """What export made: the model, from which weights (None: random), on which parity batch, and how close
    the ONNX is to PyTorch (and, for a camera model, the fused front-end to the host path)."""

    model: ModelSpec
    weights: str | None = None  # the checkpoint the model carries; None for seeded random weights
    weights_sha256: str | None = None
    parity_inputs_sha256: str | None = None  # the batch the ONNX was compared with PyTorch on
    parity_frames_sha256: str | None = None  # the frames the fused front-end was compared on
    parity: ParityReport | None = None
    tolerance: ParityTolerance | None = None
    frontend_parity: ParityReport | None = None

    @property
    def random_weights(self) -> bool | None:
        return self.model.random_weights

    def write(self, artifact: Path) -> Sidecar:
        """The sidecar of `artifact` (already written)."""
        inputs: dict[str, str | None] = {"weights": self.weights, "weights_sha256": self.weights_sha256}
        hashes = {"parity_inputs_sha256": self.parity_inputs_sha256, "parity_frames_sha256": self.parity_frames_sha256}
        inputs.update({key: value for key, value in hashes.items() if value is not None})
        reports = {"parity": self.parity, "tolerance": self.tolerance, "frontend_parity": self.frontend_parity}
        results = {key: asdict(report) for key, report in reports.items() if report is not None}
        return write_sidecar(artifact, Stage.EXPORT, inputs, self.model.to_options(Precision.FP32), results)

    @classmethod
    def of(cls, sidecar: Sidecar) -> ExportRecord:
        """The record an export sidecar holds; one-line UserInputError naming the file on a malformed value."""
        sidecar.require_stage(Stage.EXPORT)
        model = ModelSpec.of(sidecar)
        if model is None:
            raise UserInputError(f"{sidecar.path}: options has no num_classes: not a model's export record")
        inputs, results = sidecar.fields(Section.INPUTS), sidecar.fields(Section.RESULTS)
        parity, tolerance, front = (results.section(key) for key in ("parity", "tolerance", "frontend_parity"))
        return cls(
            model=model,
            weights=inputs.get("weights", str),
            weights_sha256=inputs.get("weights_sha256", str),
            parity_inputs_sha256=inputs.get("parity_inputs_sha256", str),
            parity_frames_sha256=inputs.get("parity_frames_sha256", str),
            parity=None if parity is None else ParityReport.from_json(parity),
            tolerance=None if tolerance is None else ParityTolerance.from_json(tolerance),
            frontend_parity=None if front is None else ParityReport.from_json(front),
        )


def read_export_record(artifact: Path) -> ExportRecord | None:
    """The export record beside `artifact`; None when it has no sidecar or another stage wrote it."""
    sidecar = read_sidecar(Path(artifact))
    if sidecar is None or sidecar.stage != Stage.EXPORT.value:
        return None
    return ExportRecord.of(sidecar)


def read_model_spec(artifact: Path) -> ModelSpec | None:
    """What the model is, from its own sidecar or the nearest source's that records a class count."""
    return nearest(Path(artifact), ModelSpec.of)
