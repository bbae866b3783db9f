"""The ONNX opsets export writes (torch-free, so the CLI can show them)."""

from __future__ import annotations

from edgeres.errors import UserInputError

MIN_OPSET = 17
MAX_OPSET = 20  # torch's legacy TorchScript exporter goes no further
DEFAULT_OPSET = 17


def validate_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserInputError(f"opset {opset} is not supported: use {MIN_OPSET}..{MAX_OPSET}")
