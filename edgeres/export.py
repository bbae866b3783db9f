"""PyTorch model -> one self-contained ONNX file, verified against PyTorch in onnxruntime."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgeres.artifacts import sha256_file, write_bytes_atomic, write_sidecar
from edgeres.errors import ParityError, UserInputError
from edgeres.images import NETWORK_SIZE
from edgeres.model import ResNet

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 17
MAX_OPSET = 20  # torch's legacy TorchScript exporter goes no further
DEFAULT_OPSET = 17


@dataclass(frozen=True)
class ParityTolerance:
    """FP32 PyTorch vs FP32 onnxruntime: only summation order differs, so errors are tiny."""

    max_abs: float = 1e-3
    min_cosine: float = 0.99999


@dataclass(frozen=True)
class ParityReport:
    samples: int
    max_abs_error: float
    max_rel_error: float
    min_cosine: float
    top1_agreement: float

    def within(self, tolerance: ParityTolerance) -> bool:
        return self.max_abs_error <= tolerance.max_abs and self.min_cosine >= tolerance.min_cosine


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> ParityReport:
    """Max abs/relative error, worst per-sample cosine and top-1 agreement of two logit batches."""
    ref = reference.astype(np.float64).reshape(len(reference), -1)
    cand = candidate.astype(np.float64).reshape(len(candidate), -1)
    diff = np.abs(ref - cand)
    scale = np.maximum(np.abs(ref).max(axis=1, keepdims=True), 1e-12)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cosine = np.sum(ref * cand, axis=1) / np.maximum(norms, 1e-30)
    return ParityReport(
        samples=len(ref),
        max_abs_error=float(diff.max()),
        max_rel_error=float((diff / scale).max()),
        min_cosine=float(cosine.min()),
        top1_agreement=float(np.mean(ref.argmax(axis=1) == cand.argmax(axis=1))),
    )


def validate_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserInputError(f"opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET}")


def torch_to_onnx(model: torch.nn.Module, opset: int = DEFAULT_OPSET, size: int = NETWORK_SIZE) -> onnx.ModelProto:
    """Export with the TorchScript exporter (dynamo=False): opset 17-20 as asked, one file, ~2 s.

    The dynamo exporter only really emits opset 18 and writes external data by default; the
    TorchScript one gives the opset TensorRT 8.6+/10 parse everywhere, in a single file.
    """
    validate_opset(opset)
    example = torch.zeros(1, 3, size, size)
    with tempfile.TemporaryDirectory(prefix="edgeres-export-") as scratch, warnings.catch_warnings():
        exported = Path(scratch) / "model.onnx"
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


def run_onnx(model_bytes: bytes | str, batch: np.ndarray, threads: int = 2) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {input_name: batch})[0])


def check_parity(
    model: torch.nn.Module, model_bytes: bytes, batch: np.ndarray, tolerance: ParityTolerance
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same batch; raise ParityError outside tolerance."""
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(batch)).numpy()
    report = compare_logits(expected, run_onnx(model_bytes, batch))
    if not report.within(tolerance):
        raise ParityError(
            f"ONNX disagrees with PyTorch: max abs error {report.max_abs_error:.3g} "
            f"(limit {tolerance.max_abs:g}), min cosine {report.min_cosine:.7f} (limit {tolerance.min_cosine})"
        )
    return report


def parity_batch(real: np.ndarray | None, random_count: int = 2, seed: int = 0, size: int = NETWORK_SIZE) -> np.ndarray:
    """Real images (already normalised) followed by seeded standard-normal inputs."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((random_count, 3, size, size)).astype(np.float32)
    return noise if real is None or len(real) == 0 else np.concatenate([real.astype(np.float32), noise])


@dataclass(frozen=True)
class ExportResult:
    path: Path
    parity: ParityReport
    sidecar: dict[str, Any]


def export_model(
    model: ResNet,
    output: Path,
    parity_inputs: np.ndarray,
    weights: str | None,
    opset: int = DEFAULT_OPSET,
    tolerance: ParityTolerance = ParityTolerance(),
    input_hashes: dict[str, str | None] | None = None,
) -> ExportResult:
    """Export, check, compare against PyTorch, then write the ONNX and its sidecar atomically.

    Nothing is written when any check fails.
    """
    proto, parity = export_checked(model, parity_inputs, opset, tolerance)
    return write_export(
        output, proto.SerializeToString(), model, weights, opset, parity, tolerance, input_hashes=input_hashes
    )


RGB_INPUT_SPEC = {"kind": "rgb_float", "name": INPUT_NAME, "shape": ["batch", 3, NETWORK_SIZE, NETWORK_SIZE]}


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
