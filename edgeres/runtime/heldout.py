"""`heldout.npz`: held-out samples of a build, as its models take them, with the logits each of its ONNX
models gave on them — what verifies an engine (or an ONNX) on the device with no photographs, no PyTorch
and no calibration source.

The arrays are a compressed numpy archive (`inputs`, optional `labels`, `logits_<role>` per model), read
with pickling off; the sidecar beside it records its size and SHA-256 (an edited or truncated archive is
refused), which file and SHA-256 each set of logits belongs to (a set from another build holds none for
this model), and the build's fidelity gate. Its size is bounded by `HELDOUT_INPUT_BYTES`: the number of
samples is what fits, between 1 and `MAX_HELDOUT_SAMPLES`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.sidecar import Section, Stage, require_sidecar, write_sidecar
from edgeres.errors import UserInputError
from edgeres.quantize.gate import FidelityGate

HELDOUT_NAME = "heldout.npz"
HELDOUT_INPUT_BYTES = 8 << 20  # of model inputs before compression (frames of photographs compress about 3x)
MAX_HELDOUT_SAMPLES = 16
_LOGITS = "logits_"


def heldout_samples(sample_bytes: int, available: int) -> int:
    """How many of `available` samples of `sample_bytes` each the set keeps: what fits the budget, at least one."""
    return max(1, min(available, MAX_HELDOUT_SAMPLES, HELDOUT_INPUT_BYTES // max(1, sample_bytes)))


@dataclass(frozen=True)
class RecordedModel:
    """One model whose logits the set holds: its file name in the build folder and its SHA-256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class HeldOutReference:
    """The samples, their labels when known, each model's logits on them, and the build's gate."""

    inputs: np.ndarray  # [N, ...] in the model's own input layout and type
    labels: np.ndarray | None  # [N] class numbers
    logits: Mapping[ArtifactRole, np.ndarray]  # [N, classes] float32, FP32 included
    models: Mapping[ArtifactRole, RecordedModel]
    gate: FidelityGate
    path: Path | None = None
    sha256: str = ""  # of the archive, once written or read

    def __post_init__(self) -> None:
        where = self.path or "held-out set"
        count = len(self.inputs)
        if count < 1:
            raise UserInputError(f"{where}: no samples")
        if ArtifactRole.FP32 not in self.logits:
            raise UserInputError(f"{where}: no FP32 logits")
        if set(self.logits) != set(self.models):
            raise UserInputError(f"{where}: logits and recorded models differ")
        classes = {array.shape[1] if array.ndim == 2 else -1 for array in self.logits.values()}
        if len(classes) != 1 or -1 in classes or any(len(a) != count for a in self.logits.values()):
            raise UserInputError(f"{where}: every model's logits must be [{count}, classes], alike")
        if self.labels is not None and (self.labels.shape != (count,) or self.labels.dtype.kind not in "iu"):
            raise UserInputError(f"{where}: labels must be {count} class numbers")

    @property
    def samples(self) -> int:
        return len(self.inputs)

    def role_of(self, sha256: str | None) -> ArtifactRole | None:
        """The build role of the model with this SHA-256, when the set holds its logits."""
        return next((role for role, model in self.models.items() if model.sha256 == sha256), None)

    def write(self, path: Path) -> HeldOutReference:
        """The archive and its sidecar, each written under a temporary name and renamed."""
        arrays: dict[str, np.ndarray] = {"inputs": self.inputs}
        if self.labels is not None:
            arrays["labels"] = self.labels
        arrays |= {f"{_LOGITS}{role.value}": np.asarray(logits, np.float32) for role, logits in self.logits.items()}

        archive = io.BytesIO()  # a few MB: serialized whole, then written like every artifact
        save_arrays: Any = np.savez_compressed  # numpy's stub types **arrays as its own keywords
        save_arrays(archive, **arrays)
        write_bytes_atomic(path, archive.getvalue())
        inputs: dict[str, str | None] = {}
        for role, model in self.models.items():
            inputs |= {role.value: model.name, f"{role.value}_sha256": model.sha256}
        options: dict[str, Any] = {
            "role": ArtifactRole.HELDOUT.value,
            "samples": self.samples,
            "labelled": self.labels is not None,
            "input_dtype": str(self.inputs.dtype),
            "input_shape": list(self.inputs.shape[1:]),
            "gate": self.gate.as_dict(),
        }
        write_sidecar(path, Stage.HELDOUT, inputs, options, versions=("numpy",))
        return HeldOutReference(self.inputs, self.labels, self.logits, self.models, self.gate, path, sha256_file(path))

    @classmethod
    def read(cls, path: Path) -> HeldOutReference:
        """The set at `path`, refused in one line when its sidecar is missing or describes another file."""
        path = Path(path)
        sidecar = require_sidecar(path, "held-out set", "its origin cannot be checked")
        sidecar.require_stage(Stage.HELDOUT)
        recorded, options = sidecar.fields(Section.INPUTS), sidecar.fields(Section.OPTIONS)
        gate = FidelityGate.from_json(options.data.get("gate"), f"{sidecar.path}: options.gate")
        arrays = _load_arrays(path)
        logits, models = {}, {}
        for key, array in arrays.items():
            if not key.startswith(_LOGITS):
                continue
            try:
                role = ArtifactRole(key[len(_LOGITS) :])
            except ValueError:
                raise UserInputError(f"{path}: logits of an unknown model '{key}'") from None
            name, sha = recorded.get(role.value, str), recorded.get(f"{role.value}_sha256", str)
            if name is None or sha is None:
                raise UserInputError(f"{sidecar.path}: does not say which file the {role.value} logits belong to")
            logits[role], models[role] = array, RecordedModel(name, sha)
        if "inputs" not in arrays:
            raise UserInputError(f"{path}: holds no inputs")
        return cls(
            arrays["inputs"],
            arrays.get("labels"),
            logits,
            models,
            gate,
            path,
            sidecar.recorded_sha256 or "",
        )


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the archive, pickled objects refused (an archive is data, never code)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserInputError(f"{path}: not a readable held-out set ({type(exc).__name__}: {exc})") from None


def heldout_beside(model: Path) -> Path | None:
    """The held-out set of the build folder `model` is in, when there is one."""
    candidate = Path(model).parent / HELDOUT_NAME
    return candidate if candidate.is_file() else None
