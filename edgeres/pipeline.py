"""Stages chained with the shipped defaults: what `edgeres export` (and later `build`) run."""

from __future__ import annotations

from pathlib import Path

from edgeres.artifacts import sha256_bytes
from edgeres.export import DEFAULT_OPSET, ExportResult, export_model, parity_batch
from edgeres.images import default_calibration_dir, list_images, read_batch
from edgeres.model import Arch, load_model

PARITY_IMAGES = 4  # real photographs in the parity batch, plus two random inputs


def parity_inputs(folder: Path | None = None, count: int = PARITY_IMAGES) -> tuple[object, str | None]:
    """A parity batch of real photographs (the shipped ones by default) and random inputs, with its hash."""
    paths = list_images(folder or default_calibration_dir())[:count]
    real = read_batch(paths) if paths else None
    batch = parity_batch(real)
    return batch, sha256_bytes(batch.tobytes())


def export_default(
    output: Path,
    arch: Arch = Arch.RESNET50,
    weights: Path | None = None,
    num_classes: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    model, weights_used = load_model(arch, weights, num_classes)
    batch, batch_hash = parity_inputs()
    return export_model(
        model, output, batch, weights_used, opset, input_hashes={"parity_inputs_sha256": batch_hash}  # type: ignore[arg-type]
    )
