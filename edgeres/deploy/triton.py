"""Triton Inference Server: a model repository with `config.pbtxt`, the model file and a labels file.

Layout (Triton "Model Repository" docs): `REPO/<name>/config.pbtxt`, `REPO/<name>/<version>/model.onnx`
(platform `onnxruntime_onnx`, or backend `openvino` with default_model_filename model.onnx) or `model.plan`
(platform `tensorrt_plan`), and `REPO/<name>/labels.txt`
named by the output's `label_filename`, one class per line, so Triton's classification extension
can return names. Which file is served, on which instances and why is chosen in
edgeres.deploy.triton_config. The config is protobuf text of Triton's `inference.ModelConfig`; tests
parse it back with the schema that ships in the `tritonclient` wheel.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic, write_with
from edgeres.artifacts.class_names import ClassNames
from edgeres.artifacts.kinds import ArtifactRole
from edgeres.artifacts.staging import staged_folder
from edgeres.artifacts.tensors import TensorSpec
from edgeres.deploy.cpu_backend import CpuBackend, cpu_backend_for, require_verified
from edgeres.deploy.model import (
    ENGINE_UNVERIFIED_COMMENT,
    GATE_OVERRIDDEN_COMMENT,
    DeployModel,
    ElementType,
    engine_overridden,
    read_deploy_model,
)
from edgeres.deploy.record import PROVENANCE_NAME, ServedModel, TritonRecord
from edgeres.deploy.triton_config import (
    InstanceKind,
    ServingChoice,
    TritonServing,
    instance_group_block,
    openvino_notes,
    openvino_parameters,
    optimization_block,
    serving_reason,
)
from edgeres.engine.record import read_engine_record
from edgeres.errors import UserInputError
from edgeres.frames.contract import InputKind
from edgeres.quantize.artifacts import CPU_MODEL_NAME, TENSORRT_MODEL_NAME
from edgeres.runtime.kinds import RuntimeKind

CONFIG_NAME = "config.pbtxt"
RUNTIME_UNVERIFIED_COMMENT = "# served on OpenVINO, never verified there by its build; deployed with allow_unverified"
LABELS_NAME = "labels.txt"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TritonOptions:
    name: str | None = None  # default: <arch>_<precision>[_yuv422]
    max_batch_size: int = 8
    max_queue_delay_us: int = 100
    version: int = 1
    plan: Path | None = None  # a TensorRT engine built from the artifact on the serving GPU
    kind: InstanceKind = InstanceKind.GPU  # where the instances run
    instances: int = 1  # instances of the model on each GPU (KIND_GPU) or in all (KIND_CPU)
    allow_failed_gate: bool = False  # deploy a build that failed its fidelity gate (recorded in the config)
    # serve a plan never verified against its ONNX, or failed; or a model on OpenVINO its build never verified there
    allow_unverified: bool = False  # (either recorded)
    cpu_backend: CpuBackend = CpuBackend.AUTO  # what CPU instances run the model on (edgeres.deploy.cpu_backend)


@dataclass(frozen=True)
class TritonResult:
    model_dir: Path
    config: Path
    model_file: Path
    labels: Path
    name: str
    max_batch_size: int
    serving: ServingChoice


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def default_model_name(model: DeployModel, kind: InstanceKind = InstanceKind.GPU) -> str:
    arch = model.spec.arch or model.path.stem
    suffix = "_yuv422" if model.input_kind is InputKind.YUV422 else ""
    suffix += "_cpu" if kind is InstanceKind.CPU else ""
    return f"{arch}_{model.precision.value}{suffix}"


def choose_serving(model: DeployModel, options: TritonOptions) -> ServingChoice:
    """What the instances of `options.kind` serve of `model` (or of `options.plan`), and why."""
    if options.instances < 1:
        raise UserInputError(f"instance count {options.instances}: must be at least 1")
    if options.kind is InstanceKind.CPU:
        return _cpu_serving(model, options)
    if options.cpu_backend is not CpuBackend.AUTO:
        backend, kind = options.cpu_backend.value, options.kind.value
        raise UserInputError(f"CPU backend {backend}: it names what CPU instances run, these instances are {kind}")
    if model.sidecar.role is ArtifactRole.INT8_ONNXRUNTIME:
        raise UserInputError(
            f"{model.path}: the CPU twin is made for onnxruntime's CPU provider; GPU instances serve the "
            f"TensorRT Q/DQ model {TENSORRT_MODEL_NAME} of the same build, or an engine built from it"
        )
    serving = TritonServing.TENSORRT_PLAN if options.plan is not None else TritonServing.ONNX_TENSORRT
    return ServingChoice(serving, options.instances, model.precision, serving_reason(serving, model.precision))


def _cpu_serving(model: DeployModel, options: TritonOptions) -> ServingChoice:
    """onnxruntime's CPU provider, or Triton's OpenVINO backend where the build verified it (or the user insists)."""
    if options.plan is not None:
        raise UserInputError(f"{options.plan}: a TensorRT plan runs on GPU instances only, not on the CPU")
    role = model.sidecar.role
    backend = cpu_backend_for(model.path, options.cpu_backend)
    if backend.runtime is RuntimeKind.ONNXRUNTIME:
        if role is ArtifactRole.INT8_TENSORRT:
            raise UserInputError(
                f"{model.path}: its Q/DQ model is made for TensorRT; CPU instances serve the CPU twin {CPU_MODEL_NAME} "
                "that the same build wrote for onnxruntime's CPU provider, or this model on OpenVINO"
            )
        serving = TritonServing.ONNX_CPU
        return ServingChoice(serving, options.instances, model.precision, serving_reason(serving, model.precision))
    if role is ArtifactRole.INT8_ONNXRUNTIME:
        raise UserInputError(
            f"{model.path}: the CPU twin is made for onnxruntime's CPU provider; OpenVINO serves the TensorRT Q/DQ "
            f"model {TENSORRT_MODEL_NAME} of the same build as it is"
        )
    require_verified(model.path, backend, options.allow_unverified)
    serving = TritonServing.OPENVINO_CPU
    why = f"{serving_reason(serving, model.precision)} {backend.why()}"
    return ServingChoice(serving, options.instances, model.precision, why, runtime_verified=backend.verified)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=110, initial_indent="# ", subsequent_indent="# ")


def _tensor_block(tensor: TensorSpec, dims: tuple[int, ...], extra: str = "") -> str:
    joined = ", ".join(str(d) for d in dims)
    return (
        "  {\n"
        f'    name: "{tensor.name}"\n'
        f"    data_type: {ElementType.of(tensor, tensor.name).triton_type}\n"
        f"    dims: [ {joined} ]\n"
        f"{extra}"
        "  }"
    )


def triton_config_text(
    model: DeployModel,
    name: str,
    choice: ServingChoice,
    max_batch_size: int,
    delay_us: int,
    engine_unverified: bool = False,
) -> str:
    """`config.pbtxt` for one classifier. max_batch_size 0 means the graph's batch axis is fixed."""
    if max_batch_size > 0:
        input_dims, output_dims = model.dims(model.input), model.dims(model.output)
    else:  # no batching: dims are the full shapes
        input_dims = tuple(int(d) for d in model.input.shape if d is not None)
        output_dims = tuple(int(d) for d in model.output.shape if d is not None)
    lines = [GATE_OVERRIDDEN_COMMENT] if model.gate_overridden else []
    lines += [ENGINE_UNVERIFIED_COMMENT] if engine_unverified else []
    lines += [RUNTIME_UNVERIFIED_COMMENT] if not choice.runtime_verified else []
    lines += [
        f"# Generated by `edgeres deploy triton` from {model.path.name} ({model.num_classes} classes, "
        f"{model.precision.value.upper()}, {model.input_kind.value} input).",
        *_comment(f"{choice.count} {choice.kind.triton} instance(s) serve {choice.serving.model_file}. {choice.why}"),
        *(line for note in openvino_notes(choice, max_batch_size) for line in _comment(note)),
        f'name: "{name}"',
        *choice.serving.runtime_lines,
        f"max_batch_size: {max_batch_size}",
        "input [",
        _tensor_block(model.input, input_dims),
        "]",
        "output [",
        _tensor_block(model.output, output_dims, f'    label_filename: "{LABELS_NAME}"\n'),
        "]",
    ]
    lines += instance_group_block(choice)
    lines += optimization_block(choice)
    lines += openvino_parameters(choice, max_batch_size)
    if max_batch_size > 0:
        lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {delay_us}", "}"]
    return "\n".join(lines) + "\n"


def plan_max_batch(plan: Path, model: DeployModel) -> int:
    """Check a TensorRT plan against the artifact through its sidecar; return its profile's max batch.

    Engines cannot be opened without TensorRT and a GPU, so the sidecar `edgeres engine` wrote is
    what ties the plan to the ONNX (its sha256), the precision and the batch range.
    """
    if not plan.is_file():
        raise UserInputError(f"{plan}: TensorRT engine not found")
    record = read_engine_record(plan)
    if record is None:
        raise UserInputError(f"{plan}: no sidecar, so nothing says it was built from {model.path.name}")
    if record.onnx_sha256 != sha256_file(model.path):
        raise UserInputError(f"{plan}: its sidecar does not record the sha256 of {model.path.name}: another model's")
    if record.precision is not model.precision:
        built = record.precision.value if record.precision else "unrecorded"
        raise UserInputError(f"{plan}: precision {built}, the model is {model.precision.value}")
    if record.profile is None:
        raise UserInputError(f"{plan}: its sidecar has no batch profile (options.profile.min/max)")
    low, high = record.profile.batch_range
    if low != 1:
        raise UserInputError(f"{plan}: its profile starts at batch {low}, Triton sends from 1: rebuild with 1:OPT:MAX")
    return high


def write_triton_repository(
    artifact: Path, repo: Path, names: ClassNames, options: TritonOptions = TritonOptions()
) -> TritonResult:
    """Add one model to the Triton repository `repo` (created if needed); returns what was written."""
    model = read_deploy_model(artifact, options.allow_failed_gate)
    names.require_count(model.num_classes)
    choice = choose_serving(model, options)
    name = options.name or default_model_name(model, options.kind)
    if not _MODEL_NAME.match(name):
        raise UserInputError(f"model name '{name}': use letters, digits, '_', '.', '-' (it is a directory name)")
    if options.version < 1:
        raise UserInputError(f"version {options.version}: Triton versions are positive integers")
    if options.max_queue_delay_us < 0:
        raise UserInputError(f"max queue delay {options.max_queue_delay_us} us: must be 0 or more")
    plan_limit = plan_max_batch(options.plan, model) if options.plan is not None else None
    unverified = options.plan is not None and engine_overridden(options.plan, options.allow_unverified)
    if model.fixed_batch is None:
        if options.max_batch_size < 1:
            raise UserInputError(f"max batch size {options.max_batch_size}: must be at least 1")
        if plan_limit is not None and options.max_batch_size > plan_limit:
            raise UserInputError(
                f"max batch size {options.max_batch_size}: {options.plan} was built for at most {plan_limit}"
            )
        max_batch = options.max_batch_size
    else:
        max_batch = 0  # the graph fixes its batch: Triton must not add one
    file_name = choice.serving.model_file
    source = options.plan or model.path
    model_dir = Path(repo) / name
    text = triton_config_text(model, name, choice, max_batch, options.max_queue_delay_us, unverified)
    provenance = TritonRecord(
        source=source.name,
        source_sha256=sha256_file(source),
        artifact=model.path.name,
        served=ServedModel(model.spec, model.precision, model.quantize),
        class_names=names.source,
        gate_overridden=model.gate_overridden,
        engine_unverified=unverified,
        instance_kind=choice.kind,
        instance_count=choice.count,
        serving=choice.serving,
        why=choice.why,
        runtime_unverified=not choice.runtime_verified,
    )
    # A new model folder appears whole (staged, then renamed); added to an existing one, the version
    # folder appears whole and config.pbtxt is written last; a failure removes what this call wrote.
    with staged_folder(model_dir) as folder:
        with staged_folder(folder / str(options.version)) as version_dir:
            write_with(version_dir / file_name, lambda tmp: _copy(source, tmp))
        write_bytes_atomic(folder / LABELS_NAME, ("\n".join(names.names) + "\n").encode())
        provenance.write(folder / PROVENANCE_NAME)
        write_bytes_atomic(folder / CONFIG_NAME, text.encode())
    config, labels = model_dir / CONFIG_NAME, model_dir / LABELS_NAME
    model_file = model_dir / str(options.version) / file_name
    return TritonResult(model_dir, config, model_file, labels, name, max_batch, choice)
