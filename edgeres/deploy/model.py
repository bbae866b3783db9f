"""What a deployment needs to know about a built model, read from the artifact and its sidecar.

The DeepStream (edgeres/deploy_deepstream.py) and Triton (edgeres/deploy_triton.py) generators
both start here: pick the artifact of a `build` directory, read its input/output tensors from the
ONNX graph itself, and check them against what the sidecar says the stage produced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from edgeres.artifacts.precision import Precision, onnx_precision
from edgeres.artifacts.sidecar import read_sidecar
from edgeres.errors import UserInputError
from edgeres.runtime.labels import ClassNames, class_names_for

ONNX_SUFFIXES = (".onnx",)


ENGINE_SUFFIXES = (".engine", ".plan")


# Preference when the user names no precision: the reason to build for the edge is INT8.
PRECISION_PREFERENCE = ("int8", "fp16", "fp32")


class ModelFormat(str, enum.Enum):
    ONNX = "onnx"
    TENSORRT_ENGINE = "engine"


class ElementType(enum.Enum):
    """Tensor element types a classifier here uses, with their ONNX and Triton names."""

    FP32 = (TensorProto.FLOAT, "TYPE_FP32")
    FP16 = (TensorProto.FLOAT16, "TYPE_FP16")
    UINT8 = (TensorProto.UINT8, "TYPE_UINT8")
    INT8 = (TensorProto.INT8, "TYPE_INT8")

    @property
    def onnx_type(self) -> int:
        return int(self.value[0])

    @property
    def triton_type(self) -> str:
        return str(self.value[1])

    @classmethod
    def from_onnx(cls, elem_type: int, where: str) -> ElementType:
        for member in cls:
            if member.onnx_type == elem_type:
                return member
        raise UserInputError(f"{where}: element type {TensorProto.DataType.Name(elem_type)} is not supported here")


class InputLayout(str, enum.Enum):
    """RGB_PLANAR: float [batch, 3, H, W], ImageNet-normalised. YUV422_FRAME: a raw uint8 frame (frontend.py)."""

    RGB_PLANAR = "rgb_planar"
    YUV422_FRAME = "yuv422_frame"


@dataclass(frozen=True)
class TensorInfo:
    """A network tensor; shape[0] is the batch axis, None where the graph leaves it dynamic."""

    name: str
    element: ElementType
    shape: tuple[int | None, ...]

    @property
    def dims(self) -> tuple[int, ...]:
        """The shape without the batch axis (what DeepStream and Triton call dims)."""
        rest = self.shape[1:]
        if any(d is None for d in rest):
            raise UserInputError(f"tensor '{self.name}': only the batch axis may be dynamic, shape is {self.shape}")
        return tuple(d for d in rest if d is not None)


@dataclass(frozen=True)
class DeployModel:
    """A built model ready to deploy: file, format, precision, tensors, class count, provenance."""

    path: Path
    format: ModelFormat
    precision: Precision
    num_classes: int
    input: TensorInfo
    output: TensorInfo
    layout: InputLayout
    sidecar: dict[str, Any]
    options: dict[str, Any]  # the sidecar's options over those of the model it was made from

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the graph, or None when the batch axis is dynamic."""
        return self.input.shape[0]


def _onnx_tensor(value: onnx.ValueInfoProto, where: str) -> TensorInfo:
    tensor_type = value.type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim)
    element = ElementType.from_onnx(tensor_type.elem_type, f"{where}: tensor '{value.name}'")
    return TensorInfo(value.name, element, shape)


def _layout(tensor: TensorInfo, where: str) -> InputLayout:
    if len(tensor.shape) == 4 and tensor.shape[1] == 3 and tensor.element in (ElementType.FP32, ElementType.FP16):
        return InputLayout.RGB_PLANAR
    if len(tensor.shape) == 3 and tensor.element is ElementType.UINT8:
        return InputLayout.YUV422_FRAME
    raise UserInputError(
        f"{where}: input '{tensor.name}' {tensor.element.name} {list(tensor.shape)} is neither float [N, 3, H, W] "
        f"nor a uint8 [N, rows, bytes] YUV422 frame"
    )


def _check_against_sidecar(tensor: TensorInfo, recorded: object, role: str, where: str) -> None:
    """The sidecar's recorded name and fixed dimensions must agree with the graph."""
    if not isinstance(recorded, dict):
        return
    name = recorded.get("name")
    if name is not None and name != tensor.name:
        raise UserInputError(f"{where}: sidecar says {role} '{name}', the graph has '{tensor.name}'")
    shape = recorded.get("shape")
    if isinstance(shape, list) and len(shape) == len(tensor.shape):
        for axis, (want, got) in enumerate(zip(shape, tensor.shape, strict=True)):
            if isinstance(want, int) and got is not None and want != got:
                raise UserInputError(
                    f"{where}: {role} '{tensor.name}' axis {axis} is {got} in the graph, {want} in the sidecar"
                )


def _source_options(path: Path, sidecar: dict[str, Any]) -> dict[str, Any]:
    """Options of the model this one was made from (quantize sidecars name their FP32 source)."""
    recorded = sidecar.get("inputs", {}).get("onnx")
    if not recorded:
        return {}
    for candidate in (Path(str(recorded)), path.parent / Path(str(recorded)).name):
        if candidate.is_file() and candidate.resolve() != path.resolve():
            source = read_sidecar(candidate)
            if source is not None:
                return dict(source.get("options", {}))
    return {}


def model_options(path: Path, sidecar: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's options over its source model's: class count and tensors come from export."""
    return {**_source_options(path, sidecar), **sidecar.get("options", {})}


def read_deploy_model(path: Path) -> DeployModel:
    """Read an ONNX artifact made by edgeres (file + sidecar) into a DeployModel."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: model file not found")
    sidecar = read_sidecar(path)
    if sidecar is None:
        raise UserInputError(f"{path}: no sidecar ({path.name}.json); deploy needs a model made by edgeres")
    options = model_options(path, sidecar)
    precision = onnx_precision(path)  # the model's own sidecar, else its graph (Q/DQ -> INT8, FP16 weights)
    num_classes = options.get("num_classes")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UserInputError(f"{path}.json: no num_classes in its options or its source model's")
    if path.suffix.lower() not in ONNX_SUFFIXES:
        raise UserInputError(f"{path}: deploy reads ONNX models (a TensorRT engine is tied to the GPU that built it)")
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and friends
        raise UserInputError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from exc
    initializers = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) < 1:
        raise UserInputError(f"{path}: {len(inputs)} inputs, {len(graph.output)} outputs; a classifier has 1 and 1+")
    input_tensor = _onnx_tensor(inputs[0], str(path))
    output_tensor = _onnx_tensor(graph.output[0], str(path))
    _check_against_sidecar(input_tensor, options.get("input"), "input", str(path))
    _check_against_sidecar(output_tensor, options.get("output"), "output", str(path))
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
        layout=_layout(input_tensor, str(path)),
        sidecar=sidecar,
        options=options,
    )


def _candidates(folder: Path) -> list[Path]:
    """ONNX files in `folder` that carry a sidecar (the artifacts of a build)."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in ONNX_SUFFIXES and path.is_file():
            sidecar = read_sidecar(path)
            if sidecar is not None:
                found.append(path)
    return found


def _is_cpu_twin(path: Path) -> bool:
    """The U8S8 INT8 twin `build` makes for onnxruntime on x86 is not the TensorRT deployment model."""
    options = (read_sidecar(path) or {}).get("options", {})
    return str(options.get("target", "")).startswith("onnxruntime")


def select_artifact(location: Path, precision: Precision | None = None, layout: InputLayout | None = None) -> Path:
    """The model file to deploy: `location` itself, or the best match inside a build directory."""
    location = Path(location)
    if location.is_file():
        return location
    if not location.is_dir():
        raise UserInputError(f"{location}: no such artifact file or directory")
    models = [read_deploy_model(p) for p in _candidates(location) if not _is_cpu_twin(p)]
    if layout is not None:
        models = [m for m in models if m.layout is layout]
    if not models:
        wanted = f" with a {layout.value} input" if layout else ""
        raise UserInputError(f"{location}: no ONNX model with a sidecar{wanted}; run `edgeres build` into it first")
    order = [Precision(p) for p in PRECISION_PREFERENCE] if precision is None else [precision]
    for wanted_precision in order:
        matches = [m for m in models if m.precision is wanted_precision]
        if matches:
            return matches[0].path
    have = ", ".join(sorted({m.precision.value for m in models}))
    raise UserInputError(f"{location}: no {precision.value if precision else ''} model (has: {have})")


def deploy_class_names(model: DeployModel, names_file: Path | None) -> ClassNames:
    """Class names for the model's outputs; a custom file must match its class count."""
    return class_names_for(model.num_classes, names_file)

