"""PyTorch model -> one self-contained ONNX file, verified against PyTorch in onnxruntime."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgeres.artifacts.atomic import sha256_file, write_bytes_atomic
from edgeres.artifacts.sidecar import Sidecar, write_sidecar
from edgeres.artifacts.staging import rollback_on_failure, scratch_folder
from edgeres.export.opsets import DEFAULT_OPSET, validate_opset
from edgeres.export.parity import ParityReport, ParityTolerance, check_parity
from edgeres.frames.contract import InputKind
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


def export_model(
    model: ResNet,
    output: Path,
    parity_inputs: np.ndarray,
    weights: str | None,
    opset: int = DEFAULT_OPSET,
    tolerance: ParityTolerance | None = None,
    input_hashes: dict[str, str | None] | None = None,
) -> ExportResult:
    """Export, check, compare against PyTorch, then write the ONNX and its sidecar atomically.

    Nothing is written when any check fails.
    """
    tolerance = tolerance or ParityTolerance()
    proto, parity = export_checked(model, parity_inputs, opset, tolerance)
    return write_export(
        output, proto.SerializeToString(), model, weights, opset, parity, tolerance, input_hashes=input_hashes
    )


RGB_INPUT_SPEC = {
    "kind": InputKind.RGB_FLOAT.value,
    "name": INPUT_NAME,
    "shape": ["batch", 3, NETWORK_SIZE, NETWORK_SIZE],
}


def export_checked(
    model: ResNet, parity_inputs: np.ndarray, opset: int, tolerance: ParityTolerance
) -> tuple[onnx.ModelProto, ParityReport]:
    """The exported graph, already compared with PyTorch (ParityError outside tolerance)."""
    proto = torch_to_onnx(model, opset)
    return proto, check_parity(model, proto.SerializeToString(), parity_inputs, tolerance)


def write_export(
    output: Path,
    model_bytes: bytes,
    model: ResNet,
    weights: str | None,
    opset: int,
    parity: ParityReport,
    tolerance: ParityTolerance,
    input_spec: dict[str, Any] = RGB_INPUT_SPEC,
    input_hashes: dict[str, str | None] | None = None,
    results: dict[str, Any] | None = None,
) -> ExportResult:
    """Write a checked export and its sidecar (what it was made from, options, parity numbers)."""
    output = Path(output)
    with rollback_on_failure(output.parent):  # the model and its sidecar land together, or neither does
        write_bytes_atomic(output, model_bytes)
        weights_hash = sha256_file(Path(weights)) if weights else None
        inputs: dict[str, str | None] = {"weights": weights, "weights_sha256": weights_hash}
        inputs.update(input_hashes or {})
        sidecar = write_sidecar(
            output,
            stage="export",
            inputs=inputs,
            options={
                "arch": model.arch.value,
                "num_classes": model.num_classes,
                "opset": opset,
                "precision": "fp32",
                "input": input_spec,
                "output": {"name": OUTPUT_NAME, "shape": ["batch", model.num_classes]},
                "random_weights": weights is None,
            },
            results={"parity": asdict(parity), "tolerance": asdict(tolerance), **(results or {})},
        )
    return ExportResult(output, parity, sidecar)

