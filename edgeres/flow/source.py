"""Where `edgeres build` starts: a given FP32 ONNX (its sidecar says which weights and which input it has)
or a fresh export, fused with the camera front-end when an input contract is given."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx

from edgeres.artifacts.onnx import graph_input, graph_output, load_onnx
from edgeres.artifacts.sidecar import Section, Sidecar, verify_sidecar
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputContract, InputKind, InputSpec
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization
from edgeres.model.arch import Arch
from edgeres.progress import Stages
from edgeres.qat.scales import TrainedScales, trained_scales
from edgeres.samples.encoding import model_input


class ExportChoice(Protocol):
    """The parts of the build options that say what to export."""

    @property
    def arch(self) -> Arch: ...
    @property
    def weights(self) -> Path | None: ...
    @property
    def num_classes(self) -> int | None: ...
    @property
    def contract(self) -> InputContract | None: ...
    @property
    def normalization(self) -> PixelNormalization | None: ...


@dataclass(frozen=True)
class SourceModel:
    """The FP32 ONNX the build starts from, which weights it carries and what input it takes."""

    path: Path
    weights: str
    random_weights: bool | None  # None: unknown (no edgeres sidecar)
    input: InputSpec  # recorded by every model the build makes from it

    @property
    def contract(self) -> InputContract | None:
        """The camera contract of a model that takes raw frames; None for one that takes RGB floats."""
        return self.input.contract

    @property
    def normalization(self) -> PixelNormalization:
        return self.input.normalization

    @cached_property
    def model(self) -> onnx.ModelProto:
        """The model with its weights, loaded once for every stage that reads it."""
        return load_onnx(self.path)

    @cached_property
    def trained_scales(self) -> TrainedScales | None:
        """The scales a quantization-aware-trained model carries (edgeres.qat.scales); None for a plain model."""
        return trained_scales(self.model, str(self.path))

    @property
    def num_classes(self) -> int | None:
        """The class count the graph declares; None when its output size is not fixed."""
        return graph_output(self.model, self.path).shape[-1]


def check_source_onnx(onnx_path: Path) -> TensorSpec:
    """The one input of a given FP32 ONNX, refused unless every axis but the batch is fixed (checked up front,
    before a build writes anything)."""
    path = Path(onnx_path)
    spec = graph_input(load_onnx(path, weights=False), path)
    dynamic = [axis for axis, size in enumerate(spec.shape) if axis > 0 and size is None]
    if not spec.shape or dynamic:
        shape = "[" + ", ".join("?" if size is None else str(size) for size in spec.shape) + "]"
        raise UserInputError(
            f"{path}: input '{spec.name}' {shape} has dynamic axes {dynamic} (height/width); calibration and "
            "the engine need one fixed input size: export the model with a fixed size, or fix each named axis with "
            "`python -m onnxruntime.tools.make_dynamic_shape_fixed --dim_param NAME --dim_value SIZE IN OUT`"
        )
    return spec


def _given_model_contract(
    onnx_path: Path, sidecar: Sidecar | None, wanted: InputContract | None
) -> InputContract | None:
    """The input contract of a given ONNX: its sidecar's, checked against the requested one when both exist."""
    declared = InputSpec.of(sidecar) if sidecar is not None else None
    contract = declared.contract if declared is not None else None
    if wanted is None or contract == wanted:
        return contract
    if contract is not None:
        raise UserInputError(
            f"{onnx_path}: its sidecar declares input {contract.describe()}, but the requested input is "
            f"{wanted.describe()}; drop the requested input or export the model again with it"
        )
    if model_input(onnx_path).dtype != np.uint8:
        raise UserInputError(
            f"{onnx_path}: takes RGB floats, not {wanted.layout.value} frames; make the camera model with "
            f"`edgeres export --input {wanted.layout.value}:{wanted.width}x{wanted.height}` and pass that, "
            "or drop the requested input"
        )
    return wanted


def _given_model_input(
    onnx_path: Path, sidecar: Sidecar | None, contract: InputContract | None, wanted: PixelNormalization | None
) -> InputSpec:
    """What a given ONNX takes: its sidecar's record, or what its graph and the options say. A normalisation
    asked for that differs from the recorded one, or given for a model that normalises frames itself, is refused."""
    declared = InputSpec.of(sidecar) if sidecar is not None else None
    takes_frames = contract is not None or (declared is not None and declared.contract is not None)
    if takes_frames and wanted is not None:
        raise UserInputError(
            f"{onnx_path}: takes raw camera frames, and its fused front-end normalises them as ImageNet RGB; "
            "drop --mean, --std and --channel-order"
        )
    if declared is not None and declared.contract == contract:
        if wanted is not None and wanted != declared.normalization:
            raise UserInputError(
                f"{onnx_path}: its sidecar records input normalisation {declared.normalization.describe()}, but "
                f"{wanted.describe()} was asked for; drop --mean, --std and --channel-order, or pass an ONNX "
                "without that sidecar"
            )
        return declared
    tensor = graph_input(load_onnx(onnx_path, weights=False), onnx_path)
    axes = tuple("batch" if size is None else size for size in tensor.shape)
    if contract is not None:
        return InputSpec(InputKind.YUV422, tensor.name, axes, contract)
    return InputSpec(InputKind.RGB_FLOAT, tensor.name, axes, normalization=wanted or IMAGENET_RGB)


def given_source_record(path: Path) -> tuple[Sidecar | None, bool | None, str | None]:
    """The sidecar of a given ONNX, trusted only when it describes this very file (size and SHA-256), with
    what the build reads of it typed: (sidecar, random weights, weights); a sidecar of another file, one
    that records no digest, or sections of the wrong type are refused naming the file."""
    sidecar = verify_sidecar(path, full_hash=True)
    if sidecar is None:
        return None, None, None
    random = sidecar.fields(Section.OPTIONS).get("random_weights", bool)
    weights = sidecar.fields(Section.INPUTS).get("weights", str)
    InputSpec.of(sidecar)  # a malformed input contract is refused now, not halfway through the build
    return sidecar, random, weights


def source_model(onnx_path: Path | None, options: ExportChoice, outdir: Path, stages: Stages) -> SourceModel:
    """The FP32 ONNX to start from: the given one, or a fresh export (fused with the contract's front-end)."""
    if onnx_path is not None:
        path = Path(onnx_path)  # checked by BuildOptions.check_files before the build began
        sidecar, random, weights = given_source_record(path)
        contract = _given_model_contract(path, sidecar, options.contract)
        taken = _given_model_input(path, sidecar, contract, options.normalization)
        if random is None:
            why = f"no edgeres sidecar beside {path}" if sidecar is None else f"{path}'s sidecar does not say"
            return SourceModel(path, f"unknown ({why})", None, taken)
        return SourceModel(path, str(weights) if weights else "random (seeded)", bool(random), taken)
    from edgeres.export.from_weights import export_default

    with stages.stage("export FP32 ONNX" + (" with the camera front-end" if options.contract else "")):
        result = export_default(
            outdir / "model_fp32.onnx", options.arch, options.weights, options.num_classes, contract=options.contract
        )
    random = bool(result.record.random_weights)
    weights = str(options.weights) if options.weights else ("random (seeded)" if random else "torchvision cache")
    exported = result.record.model.input
    assert exported is not None  # an export records what its model takes
    return SourceModel(result.path, weights, random, exported)
