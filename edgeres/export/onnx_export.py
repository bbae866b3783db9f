"""PyTorch model -> one self-contained ONNX file, verified against PyTorch in onnxruntime."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.sidecar import Sidecar
from edgeres.artifacts.staging import rollback_on_failure, scratch_folder
from edgeres.export.opsets import DEFAULT_OPSET, validate_opset
from edgeres.export.parity import check_parity
from edgeres.export.record import ExportRecord, ModelSpec, OutputSpec, ParityReport, ParityTolerance
from edgeres.frames.contract import InputSpec
from edgeres.frames.images import NETWORK_SIZE
from edgeres.model.resnet import ResNet

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def torch_to_onnx(model: torch.nn.Module, opset: int = DEFAULT_OPSET, size: int = NETWORK_SIZE) -> onnx.ModelProto:
    """Export with the TorchScript exporter (dynamo=False): opset 17-20 as asked, one file, ~2 s.

    The dynamo exporter only really emits opset 18 and writes external data by default; the
    TorchScript one gives the opset TensorRT 8.6+/10 parse everywhere, in a single file.
    """
    validate_opset(opset)
    example = torch.zeros(1, 3, size, size)
    with scratch_folder("edgeres-export-") as scratch, warnings.catch_warnings():
        exported = scratch / "model.onnx"
        warnings.simplefilter("ignore")  # the exporter's deprecation chatter is not the user's concern
        torch.onnx.export(
            model.eval(),
            (example,),
            exported,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
        proto = onnx.load(str(exported))
    inline_initializer_identities(proto)
    onnx.checker.check_model(proto, full_check=True)
    return onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def inline_initializer_identities(proto: onnx.ModelProto) -> None:
    """Replace `Identity(initializer)` nodes by a copy of the initializer.

    The exporter shares equal constants (e.g. all-zero biases) through Identity nodes, which
    would hide a Conv's bias from the quantizer and from TensorRT's fusions.
    """
    graph = proto.graph
    initializers = {init.name: init for init in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers:
            copy = numpy_helper.from_array(numpy_helper.to_array(initializers[node.input[0]]), node.output[0])
            graph.initializer.append(copy)
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    parity: ParityReport
    sidecar: Sidecar
    record: ExportRecord  # what the sidecar holds, typed


def export_model(
    model: ResNet,
    output: Path,
    parity_inputs: np.ndarray,
    weights: str | None,
    opset: int = DEFAULT_OPSET,
    tolerance: ParityTolerance | None = None,
    parity_inputs_sha256: str | None = None,
    class_names: tuple[str, ...] | None = None,
    size: int = NETWORK_SIZE,
) -> ExportResult:
    """Export at `size` x `size`, check, compare against PyTorch, then write the ONNX and its sidecar atomically.

    Nothing is written when any check fails.
    """
    tolerance = tolerance or ParityTolerance()
    proto, parity = export_checked(model, parity_inputs, opset, tolerance, size)
    return write_export(
        output, proto.SerializeToString(), model, weights, opset, parity, tolerance, InputSpec.rgb(INPUT_NAME, size),
        parity_inputs_sha256=parity_inputs_sha256, class_names=class_names,
    )  # fmt: skip


RGB_INPUT = InputSpec.rgb(INPUT_NAME, NETWORK_SIZE)


def export_checked(
    model: ResNet, parity_inputs: np.ndarray, opset: int, tolerance: ParityTolerance, size: int = NETWORK_SIZE
) -> tuple[onnx.ModelProto, ParityReport]:
    """The exported graph, already compared with PyTorch (ParityError outside tolerance)."""
    proto = torch_to_onnx(model, opset, size)
    return proto, check_parity(model, proto.SerializeToString(), parity_inputs, tolerance)


def write_export(
    output: Path,
    model_bytes: bytes,
    model: ResNet,
    weights: str | None,
    opset: int,
    parity: ParityReport,
    tolerance: ParityTolerance,
    input_spec: InputSpec = RGB_INPUT,
    parity_inputs_sha256: str | None = None,
    parity_frames_sha256: str | None = None,
    frontend_parity: ParityReport | None = None,
    class_names: tuple[str, ...] | None = None,
) -> ExportResult:
    """Write a checked export and its sidecar (what it was made from, options, parity numbers, the class
    names when known)."""
    output = Path(output)
    spec = input_spec
    with rollback_on_failure(output.parent):  # the model and its sidecar land together, or neither does
        write_bytes_atomic(output, model_bytes)
        record = ExportRecord(
            model=ModelSpec(
                arch=model.arch.value,
                num_classes=model.num_classes,
                input=spec,
                output=OutputSpec(OUTPUT_NAME, ("batch", model.num_classes)),
                opset=opset,
                random_weights=weights is None,
                class_names=class_names,
            ),
            weights=weights,
            weights_sha256=sha256_file(Path(weights)) if weights else None,
            parity_inputs_sha256=parity_inputs_sha256,
            parity_frames_sha256=parity_frames_sha256,
            parity=parity,
            tolerance=tolerance,
            frontend_parity=frontend_parity,
        )
        sidecar = record.write(output)
    return ExportResult(output, parity, sidecar, record)
