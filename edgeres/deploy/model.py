"""What a deployment needs to know about a built model, read from the artifact and its sidecar.

The DeepStream (edgeres.deploy.deepstream) and Triton (edgeres.deploy.triton) generators
both start here: pick the artifact of a `build` directory, read its input/output tensors from the
ONNX graph itself, and check them against what the sidecar says the stage produced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgeres.artifacts.atomic import sha256_file
from edgeres.artifacts.build_summary import SUMMARY_NAME as BUILD_SUMMARY_NAME
from edgeres.artifacts.build_summary import BuildSummary
from edgeres.artifacts.completion import IN_PROGRESS_NAME, build_status
from edgeres.artifacts.kinds import ONNX_SUFFIX, ArtifactRole
from edgeres.artifacts.onnx import graph_input, graph_output, load_onnx, model_opset
from edgeres.artifacts.precision import Precision, onnx_precision
from edgeres.artifacts.quantize_record import QuantizeRecord
from edgeres.artifacts.sidecar import Sidecar, Stage, read_sidecar, require_sidecar, verify_sidecar
from edgeres.artifacts.tensors import TensorSpec
from edgeres.engine.record import EngineRecord
from edgeres.engine.verification_record import check_verified
from edgeres.errors import UserInputError
from edgeres.export.record import ModelSpec, OutputSpec, read_model_spec
from edgeres.frames.contract import InputKind, InputSpec, recorded_input
from edgeres.frames.normalization import IMAGENET_RGB, PixelNormalization

# Preference when the user names no precision: the reason to build for the edge is INT8. On the CPU,
# onnxruntime runs a float16 operator it has no CPU kernel for between casts to and from float32
# (onnxruntime core/optimizer/insert_cast_transformer.cc), so FP32 comes before FP16 there.
PRECISION_PREFERENCE = (Precision.INT8, Precision.FP16, Precision.FP32)
CPU_PRECISION_PREFERENCE = (Precision.INT8, Precision.FP32, Precision.FP16)
# What `edgeres build` writes last, once every model's fidelity has been checked (edgeres.flow.orchestrator).
# Roles whose files only `edgeres build` writes: without a summary beside them their fidelity was never checked.
BUILD_ROLES = (ArtifactRole.INT8_TENSORRT, ArtifactRole.INT8_ONNXRUNTIME, ArtifactRole.FP16)


class ModelFormat(str, enum.Enum):
    ONNX = "onnx"
    TENSORRT_ENGINE = "engine"


class ElementType(enum.Enum):
    """Tensor element types a classifier here uses, with their numpy and Triton names."""

    FP32 = ("float32", "TYPE_FP32")
    FP16 = ("float16", "TYPE_FP16")
    UINT8 = ("uint8", "TYPE_UINT8")
    INT8 = ("int8", "TYPE_INT8")

    @property
    def triton_type(self) -> str:
        return str(self.value[1])

    @classmethod
    def of(cls, tensor: TensorSpec, where: object) -> ElementType:
        for member in cls:
            if np.dtype(member.value[0]) == tensor.dtype:
                return member
        raise UserInputError(f"{where}: tensor '{tensor.name}' has element type {tensor.dtype}, not supported here")


@dataclass(frozen=True)
class DeployModel:
    """A built model ready to deploy: file, format, precision, tensors, class count, provenance."""

    path: Path
    format: ModelFormat
    precision: Precision
    num_classes: int
    input: TensorSpec
    output: TensorSpec
    input_kind: InputKind  # told from the graph's input tensor
    sidecar: Sidecar
    spec: ModelSpec  # from its sidecar, or the sidecar of the model it was made from
    quantize: QuantizeRecord | None = None  # its quantize record, when the quantize stage made it
    gate_overridden: bool = False  # its build failed the fidelity gate and the caller deploys it anyway

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the graph, or None when the batch axis is dynamic."""
        return self.input.fixed_batch

    @property
    def normalization(self) -> PixelNormalization:
        """How the model wants its RGB floats (what a server's pre-processing must produce)."""
        return self.spec.input.normalization if self.spec.input is not None else IMAGENET_RGB

    def dims(self, tensor: TensorSpec) -> tuple[int, ...]:
        """A tensor's shape without the batch axis (what DeepStream and Triton call dims)."""
        return tensor.sample_shape(self.path)


def _input_kind(tensor: TensorSpec, where: str) -> InputKind:
    element = ElementType.of(tensor, where)
    if len(tensor.shape) == 4 and tensor.shape[1] == 3 and element in (ElementType.FP32, ElementType.FP16):
        return InputKind.RGB_FLOAT
    if len(tensor.shape) == 3 and element is ElementType.UINT8:
        return InputKind.YUV422
    raise UserInputError(
        f"{where}: input '{tensor.name}' {element.name} {list(tensor.shape)} is neither float [N, 3, H, W] "
        f"nor a uint8 [N, rows, bytes] YUV422 frame"
    )


def _check_against_sidecar(tensor: TensorSpec, recorded: InputSpec | OutputSpec | None, role: str, where: str) -> None:
    """The sidecar's recorded name and fixed dimensions must agree with the graph."""
    if recorded is None:
        return
    if recorded.name != tensor.name:
        raise UserInputError(f"{where}: sidecar says {role} '{recorded.name}', the graph has '{tensor.name}'")
    shape = recorded.shape
    if len(shape) == len(tensor.shape):
        for axis, (want, got) in enumerate(zip(shape, tensor.shape, strict=True)):
            if isinstance(want, int) and got is not None and want != got:
                raise UserInputError(
                    f"{where}: {role} '{tensor.name}' axis {axis} is {got} in the graph, {want} in the sidecar"
                )


@dataclass(frozen=True)
class BuildRecord:
    """What a finished build's build_summary.json says: the files it made (name -> SHA-256 if recorded), its gate."""

    path: Path
    files: dict[str, str | None]
    gate_passed: bool | None


GATE_OVERRIDDEN_COMMENT = "# fidelity gate FAILED for this model's build; deployed with allow_failed_gate"


def read_build_record(folder: Path) -> BuildRecord | None:
    """The finished build's summary in `folder`, or None when there is none (not a build folder).

    A build in progress (or interrupted), or a summary that does not record a complete build, is refused.
    """
    if (Path(folder) / IN_PROGRESS_NAME).exists():
        raise UserInputError(
            f"{folder}: a build is in progress there, or was interrupted ({IN_PROGRESS_NAME}); rebuild"
        )
    path = Path(folder) / BUILD_SUMMARY_NAME
    if not path.is_file():
        return None
    summary = BuildSummary.read(path)
    if not summary.complete:
        raise UserInputError(f"{path}: the build did not finish (it does not record complete: true); rebuild")
    problem = verified_set(Path(folder))
    if problem is not None:  # a file of the set edited, swapped or gone: none of it is used
        raise UserInputError(f"{problem}; rebuild")
    files: dict[str, str | None] = {}
    for listed in summary.artifacts.values():  # the summary hashes by path relative to the folder
        files[listed.name] = summary.sha256.get(listed.name, summary.sha256.get(str(listed)))
    return BuildRecord(path, files, summary.gate_passed)


_VERIFIED: dict[tuple[object, ...], str | None] = {}


def verified_set(folder: Path) -> str | None:
    """`build_status` with every file of the set hashed against the summary; hashed again only when a file
    of the folder changed (size, time or inode), since a deployment reads the set several times."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    key = (folder.resolve(), *((p.name, p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _VERIFIED:
        _VERIFIED.clear()
        _VERIFIED[key] = build_status(folder, verify_hashes=True)
    return _VERIFIED[key]


def _check_build(path: Path, sidecar: Sidecar, allow_failed_gate: bool) -> bool:
    """Refuse a model its folder's build did not finish, list, or pass; True when a failed gate is overridden."""
    record = read_build_record(path.parent)
    if record is None:
        if sidecar.role in BUILD_ROLES:
            raise UserInputError(
                f"{path}: no {BUILD_SUMMARY_NAME} beside it: its build did not finish, its fidelity was never checked"
            )
        return False
    if path.name not in record.files:
        raise UserInputError(f"{path}: not listed in {record.path} (left by an earlier build?); rebuild or remove it")
    recorded = record.files[path.name]
    if recorded is not None and recorded != sha256_file(path):
        raise UserInputError(f"{path}: SHA-256 differs from the one {record.path} records; rebuild")
    if record.gate_passed is None:
        raise UserInputError(f"{record.path}: records no gate result: the build's fidelity was never checked")
    if not record.gate_passed:
        if not allow_failed_gate:
            raise UserInputError(f"{record.path}: the build failed its fidelity gate; refusing to deploy {path.name}")
        return True
    return False


def read_deploy_model(path: Path, allow_failed_gate: bool = False) -> DeployModel:
    """Read an ONNX artifact made by edgeres (file + sidecar) into a DeployModel.

    The sidecar must describe this very file (size and SHA-256); a model in a build folder must be one
    the folder's finished build lists and passed, unless `allow_failed_gate` (then `gate_overridden`).
    """
    path = Path(path)
    sidecar = require_sidecar(path, "model file", "deploy needs a model made by edgeres")
    overridden = _check_build(path, sidecar, allow_failed_gate)
    precision = onnx_precision(path)  # the model's own sidecar, else its graph (Q/DQ -> INT8, FP16 weights)
    if path.suffix.lower() != ONNX_SUFFIX:
        raise UserInputError(f"{path}: deploy reads ONNX models (a TensorRT engine is tied to the GPU that built it)")
    graph = load_onnx(path, weights=False)
    input_tensor, output_tensor = graph_input(graph, path), graph_output(graph, path)
    spec = read_model_spec(path) or _graph_spec(path, output_tensor)
    num_classes = spec.num_classes
    ElementType.of(output_tensor, path)
    _check_against_sidecar(input_tensor, spec.input, "input", str(path))
    _check_against_sidecar(output_tensor, spec.output, "output", str(path))
    if output_tensor.shape[-1] != num_classes:
        raise UserInputError(
            f"{path}: output '{output_tensor.name}' has {output_tensor.shape[-1]} classes, "
            f"the sidecar says {num_classes}"
        )
    return DeployModel(
        path=path,
        format=ModelFormat.ONNX,
        precision=precision,
        num_classes=num_classes,
        input=input_tensor,
        output=output_tensor,
        input_kind=_input_kind(input_tensor, str(path)),
        sidecar=sidecar,
        spec=replace(spec, opset=model_opset(graph)),  # its own, not the FP32 source's it was made from
        quantize=QuantizeRecord.of(sidecar) if sidecar.stage == Stage.QUANTIZE.value else None,
        gate_overridden=overridden,
    )


def _graph_spec(path: Path, output: TensorSpec) -> ModelSpec:
    """The spec of a model built from an ONNX edgeres did not export: its class count from its graph, what it
    takes from the build's record (edgeres.frames.contract.recorded_input)."""
    num_classes = output.shape[-1] if output.shape else None
    if num_classes is None:
        raise UserInputError(
            f"{path}.json: no num_classes in its options or its source model's, nor a fixed graph output"
        )
    return ModelSpec(arch=None, num_classes=num_classes, input=recorded_input(path), output=None)


def require_engine_file(engine: Path) -> Path:
    """An engine named for a deployment must exist (a config that points at nothing fails only on the device)."""
    if not Path(engine).is_file():
        raise UserInputError(f"{engine}: TensorRT engine not found")
    return Path(engine)


ENGINE_UNVERIFIED_COMMENT = (
    "# the TensorRT engine was never verified against its ONNX, or failed; deployed with allow_unverified"
)


def engine_overridden(engine: Path, allow_unverified: bool) -> bool:
    """Refuse an engine whose sidecar records no passed verification against its ONNX, unless
    `allow_unverified`; True when such an engine is deployed anyway (recorded in what deploy writes)."""
    sidecar = verify_sidecar(require_engine_file(engine), full_hash=True)  # a sidecar of another engine vouches nothing
    outcome = None if sidecar is None else EngineRecord.of(sidecar).verification
    check_verified(Path(engine), outcome, allow_unverified)
    return outcome is None or not outcome.passed


def _candidates(folder: Path, record: BuildRecord) -> list[Path]:
    """ONNX files in `folder` that its build summary lists and that carry a sidecar (the artifacts of that build)."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == ONNX_SUFFIX and path.is_file() and path.name in record.files:
            sidecar = read_sidecar(path)
            if sidecar is not None:
                found.append(path)
    return found


def _made_for_other_device(path: Path, cpu: bool) -> bool:
    """`build` writes its INT8 model twice: Q/DQ for TensorRT on the GPU, U8S8 for onnxruntime on the CPU."""
    sidecar = read_sidecar(path)
    other = ArtifactRole.INT8_TENSORRT if cpu else ArtifactRole.INT8_ONNXRUNTIME
    return sidecar is not None and sidecar.role is other


def select_artifact(
    location: Path,
    precision: Precision | None = None,
    input_kind: InputKind | None = None,
    allow_failed_gate: bool = False,
    cpu: bool = False,
) -> Path:
    """The model file to deploy: `location` itself, or the best match among the models a finished build
    in that directory lists (each checked by read_deploy_model) for the GPU, or for the CPU if `cpu`."""
    location = Path(location)
    if location.is_file():
        return location
    if not location.is_dir():
        raise UserInputError(f"{location}: no such artifact file or directory")
    record = read_build_record(location)
    if record is None:
        raise UserInputError(
            f"{location}: no {BUILD_SUMMARY_NAME}: not a finished build (interrupted, or its fidelity never checked)"
        )
    candidates = [p for p in _candidates(location, record) if not _made_for_other_device(p, cpu)]
    models = [read_deploy_model(p, allow_failed_gate) for p in candidates]
    if input_kind is not None:
        models = [m for m in models if m.input_kind is input_kind]
    if not models:
        wanted = f" taking {input_kind.value} input" if input_kind else ""
        raise UserInputError(f"{location}: {record.path.name} lists no ONNX model with a sidecar{wanted}; rebuild")
    order = (CPU_PRECISION_PREFERENCE if cpu else PRECISION_PREFERENCE) if precision is None else (precision,)
    for wanted_precision in order:
        matches = [m for m in models if m.precision is wanted_precision]
        if matches:
            return matches[0].path
    have = ", ".join(sorted({m.precision.value for m in models}))
    raise UserInputError(f"{location}: no {precision.value if precision else ''} model (has: {have})")
