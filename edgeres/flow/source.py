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
from edgeres.frames.contract import InputContract, InputSpec
from edgeres.model.arch import Arch
from edgeres.progress import Stages
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


@dataclass(frozen=True)
class SourceModel:
    """The FP32 ONNX the build starts from, which weights it carries and what input it takes."""

    path: Path
    weights: str
    random_weights: bool | None  # None: unknown (no edgeres sidecar)
    contract: InputContract | None

    @cached_property
    def model(self) -> onnx.ModelProto:
        """The model with its weights, loaded once for every stage that reads it."""
        return load_onnx(self.path)

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
            "the engine need one fixed input size: export the model with a fixed size"
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
        if random is None:
            why = f"no edgeres sidecar beside {path}" if sidecar is None else f"{path}'s sidecar does not say"
            return SourceModel(path, f"unknown ({why})", None, contract)
        return SourceModel(path, str(weights) if weights else "random (seeded)", bool(random), contract)
    from edgeres.export.from_weights import export_default

    with stages.stage("export FP32 ONNX" + (" with the camera front-end" if options.contract else "")):
        result = export_default(
            outdir / "model_fp32.onnx", options.arch, options.weights, options.num_classes, contract=options.contract
        )
    random = bool(result.record.random_weights)
    weights = str(options.weights) if options.weights else ("random (seeded)" if random else "torchvision cache")
    return SourceModel(result.path, weights, random, options.contract)
