"""The held-out step of `edgeres build`: the first held-out samples, as the models take them, with the logits
every model of the build gave on them, written as the folder's `heldout.npz` so an engine built from any of
them can be verified where it is built (edgeres.runtime.verification).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.quantize.fidelity import HeldOutEvaluation, Kernels, model_logits
from edgeres.quantize.gate import FidelityGate
from edgeres.runtime.heldout import HELDOUT_NAME, HeldOutReference, RecordedModel, heldout_samples


def kernels_for(role: ArtifactRole) -> Kernels:
    """The TensorRT model is judged by its own Q/DQ arithmetic; every other model as onnxruntime runs it."""
    return Kernels.REFERENCE if role is ArtifactRole.INT8_TENSORRT else Kernels.RUNTIME


def write_heldout(
    outdir: Path, evaluation: HeldOutEvaluation, models: dict[ArtifactRole, Path], gate: FidelityGate
) -> Path:
    """`heldout.npz` of the build in `outdir`: as many held-out samples as its size bound allows, the FP32
    logits the build measured against, and each of `models`' (FP32 excluded) logits on them."""
    first_inputs = evaluation.batches[0][0]
    count = heldout_samples(first_inputs[0].nbytes, evaluation.samples)
    inputs: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    reference: list[np.ndarray] = []
    for (batch, batch_labels), fp32 in zip(evaluation.batches, evaluation.reference, strict=True):
        wanted = count - sum(len(kept) for kept in inputs)
        if wanted <= 0:
            break
        inputs.append(batch[:wanted])
        labels.append(None if batch_labels is None else batch_labels[:wanted])
        reference.append(fp32[:wanted])
    samples = np.concatenate(inputs)
    logits = {ArtifactRole.FP32: np.concatenate(reference).astype(np.float32)}
    for role, path in models.items():
        if role is not ArtifactRole.FP32:
            logits[role] = model_logits(path, [samples], kernels_for(role))[0].astype(np.float32)
    known = None if any(b is None for b in labels) else np.concatenate([b for b in labels if b is not None])
    recorded = {role: RecordedModel(path.name, sha256_file(path)) for role, path in models.items()}
    path = Path(outdir) / HELDOUT_NAME
    HeldOutReference(samples, known, logits, recorded, gate).write(path)
    return path
