"""Export a model from its weights (a checkpoint, torchvision's cached ones, or seeded random ones), checked
on the shipped photographs: plain, or with the camera front-end fused in. What `edgeres export` and a
`build` without a given ONNX run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import sha256_bytes
from edgeres.artifacts.class_names import names_beside
from edgeres.errors import ParityError
from edgeres.export.onnx_export import ExportResult, export_checked, export_model, write_export
from edgeres.export.opsets import DEFAULT_OPSET, validate_opset
from edgeres.export.parity import ParityTolerance, compare_logits, parity_batch, run_onnx
from edgeres.frames.contract import InputContract, InputSpec
from edgeres.frames.images import NETWORK_SIZE, default_calibration_dir, list_images, read_batch, read_rgb
from edgeres.frontend.graph import attach_frontend
from edgeres.frontend.host import parity_frames, reference_input
from edgeres.model.arch import Arch
from edgeres.model.resnet import ResNet, load_model

PARITY_IMAGES = 4  # real photographs in the parity batch, plus two random inputs


def parity_inputs(
    folder: Path | None = None, count: int = PARITY_IMAGES, size: int = NETWORK_SIZE
) -> tuple[np.ndarray, str]:
    """A parity batch of real photographs (the shipped ones by default) and random inputs, with its hash."""
    paths = list_images(folder or default_calibration_dir())[:count]
    real = read_batch(paths, size) if paths else None
    batch = parity_batch(real, size=size)
    return batch, sha256_bytes(batch.tobytes())


def export_default(
    output: Path,
    arch: Arch = Arch.RESNET50,
    weights: Path | None = None,
    num_classes: int | None = None,
    opset: int = DEFAULT_OPSET,
    contract: InputContract | None = None,
    size: int = NETWORK_SIZE,
) -> ExportResult:
    """The RGB-float model at `size` x `size`, or with `contract` the model with the YUV 4:2:2 front-end fused in
    front (at the contract's network size)."""
    validate_opset(opset)  # before the model is built, so a bad option is the only message
    model, weights_used = load_model(arch, weights, num_classes)
    names = names_beside(weights, model.num_classes)  # a finetune run's classes.txt travels with its model
    size = size if contract is None else contract.size
    batch, batch_hash = parity_inputs(size=size)
    if contract is not None:
        return export_fused(model, output, contract, batch, weights_used, opset, batch_hash, names)
    return export_model(model, output, batch, weights_used, opset, parity_inputs_sha256=batch_hash, class_names=names,
                        size=size)  # fmt: skip


def export_fused(
    model: ResNet,
    output: Path,
    contract: InputContract,
    batch: np.ndarray,
    weights: str | None,
    opset: int,
    batch_hash: str | None,
    class_names: tuple[str, ...] | None = None,
) -> ExportResult:
    """Export, check the RGB model against PyTorch, attach the front-end, then check the fused model on
    real photographs encoded as frames (plus random bytes) against the host path: frames.py/frontend.py
    preprocessing + the plain ONNX. Nothing is written when a check fails."""
    tolerance = ParityTolerance()  # the two front-ends differ by float summation order only
    proto, parity = export_checked(model, batch, opset, tolerance, contract.size)
    plain = proto.SerializeToString()
    fused = attach_frontend(proto, contract).SerializeToString()
    photos = [read_rgb(p) for p in list_images(default_calibration_dir())[:PARITY_IMAGES]]
    frames = parity_frames(photos, contract)
    front = compare_logits(run_onnx(plain, reference_input(frames, contract)), run_onnx(fused, frames))
    if not front.within(tolerance):
        raise ParityError(
            f"fused {contract.layout.value} model disagrees with the host path: max abs error "
            f"{front.max_abs_error:.3g} (limit {tolerance.max_abs:g}), min cosine {front.min_cosine:.7f}"
        )
    return write_export(
        output, fused, model, weights, opset, parity, tolerance, InputSpec.frames(contract),
        parity_inputs_sha256=batch_hash, parity_frames_sha256=sha256_bytes(frames.tobytes()), frontend_parity=front,
        class_names=class_names,
    )  # fmt: skip

