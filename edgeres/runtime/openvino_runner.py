"""The OpenVINO runner: an ONNX file (FP32, FP16, or the TensorRT Q/DQ model as it is) on OpenVINO's CPU device.

OpenVINO reads the TensorRT Q/DQ model unchanged and runs its quantized layers on its own INT8 kernels
(how much faster than onnxruntime runs the CPU twin depends on the CPU: bench/openvino_runner.py). It fuses
and rounds differently from the Q/DQ reference arithmetic, so its logits are to be measured against that
reference, not assumed equal.
`openvino` is an optional extra, imported on load: importing this module never needs it.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgeres.artifacts.onnx import load_onnx
from edgeres.artifacts.tensors import TensorSpec
from edgeres.errors import EdgeresError, UserInputError
from edgeres.runtime.base import Runner

DEVICE = "CPU"
# The first OpenVINO whose ONNX reader takes FP16 Q/DQ scales (opset 19), as the TensorRT model has them;
# earlier releases refuse the model edgeres builds by default. The openvino extra asks for it.
MIN_VERSION = (2025, 3)
# The lines of an OpenVINO exception that say where in its sources it was raised, not what went wrong.
_LOCATION_LINES = ("Exception from ", "Check '")
# The input element types a classifier of edgeres takes (as the onnxruntime runner accepts them).
_INPUT_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.uint8, np.int8, np.uint16))


class PerformanceHint(str, enum.Enum):
    """OpenVINO's high-level performance hint. LATENCY: one stream, every thread on one request (what a
    camera loop wants). THROUGHPUT: the threads split into streams for parallel requests; a single request
    at a time, as this runner makes them, then runs on one stream's share of the threads."""

    LATENCY = "latency"
    THROUGHPUT = "throughput"


def import_openvino() -> ModuleType:
    """The `openvino` module; a one-line UserInputError saying how to install it when it is missing or older
    than MIN_VERSION."""
    try:
        import openvino
    except ImportError as exc:
        raise UserInputError(
            f"OpenVINO is not installed: pip install edgeres[openvino] ({type(exc).__name__}: {exc})"
        ) from exc
    found = re.match(r"(\d+)\.(\d+)", openvino.get_version())
    if found is None or (int(found[1]), int(found[2])) < MIN_VERSION:
        raise UserInputError(
            f"OpenVINO {openvino.get_version()} cannot read the TensorRT Q/DQ model's FP16 scales, "
            f"{'.'.join(map(str, MIN_VERSION))} or later can: pip install -U edgeres[openvino]"
        )
    return openvino


class OpenVinoRunner(Runner):
    """An ONNX model compiled once by OpenVINO for its CPU device, run through one reused infer request.

    `threads` 0 leaves the count to OpenVINO (every core). A dynamic batch axis stays dynamic: OpenVINO's
    CPU plugin runs any batch size from one compile, as fast as a compile reshaped to that batch.
    """

    def __init__(self, artifact: Path, threads: int = 0, hint: PerformanceHint = PerformanceHint.LATENCY) -> None:
        super().__init__(artifact)
        if threads < 0:
            raise UserInputError(f"OpenVINO threads {threads}: must be 0 (OpenVINO's choice) or more")
        self.threads = threads
        self.hint = hint
        self._compiled: Any = None
        self._request: Any = None

    def _load_impl(self) -> TensorSpec:
        ov = import_openvino()
        load_onnx(self.artifact, weights=False)  # the file's own refusals first (empty, not ONNX, missing weights)
        core = ov.Core()
        try:
            model = core.read_model(str(self.artifact))
        except Exception as exc:  # OpenVINO raises RuntimeError/OpConversionFailure with multi-line text
            raise UserInputError(f"{self.artifact}: OpenVINO cannot read it ({_one_line(exc)})") from exc
        spec = _input_spec(model, self.artifact)
        try:
            self._compiled = core.compile_model(model, DEVICE, self._properties(ov))
        except Exception as exc:
            raise UserInputError(f"{self.artifact}: OpenVINO cannot compile it ({_one_line(exc)})") from exc
        self._request = self._compiled.create_infer_request()
        return spec

    def _properties(self, ov: ModuleType) -> dict[str, Any]:
        properties = ov.properties
        modes = {
            PerformanceHint.LATENCY: properties.hint.PerformanceMode.LATENCY,
            PerformanceHint.THROUGHPUT: properties.hint.PerformanceMode.THROUGHPUT,
        }
        config: dict[str, Any] = {
            properties.hint.performance_mode(): modes[self.hint],
            # f32 for whatever the model does not quantize. OpenVINO's default on CPUs with AVX-512 BF16 or AMX
            # is bf16 (8 mantissa bits): an FP32 or FP16 model would then no longer compute what its file says
            # (a trained FP32 model drifts as far from itself as its INT8 model does). The hint sets the float
            # precision only: the Q/DQ model's quantized layers stay on OpenVINO's INT8 kernels either way, and
            # its float remainder (pooling, activations between Q/DQ pairs) is small, so f32 costs it little.
            properties.hint.inference_precision(): ov.Type.f32,
        }
        if self.threads:
            config[properties.inference_num_threads()] = self.threads
        return config

    @property
    def inference_precision(self) -> str:
        """The float precision OpenVINO compiled the model's non-quantized layers in (e.g. 'f32')."""
        return str(self._loaded().get_property("INFERENCE_PRECISION_HINT").get_type_name())

    def layer_precisions(self) -> list[tuple[str, str]]:
        """(layer type, precision) of each layer OpenVINO executes, e.g. ("Convolution", "u8"): what shows
        that a Q/DQ model's layers run on INT8 kernels rather than on dequantized floats."""
        layers = []
        for op in self._loaded().get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if "layerType" in info and "runtimePrecision" in info:
                layers.append((info["layerType"].astype(str), info["runtimePrecision"].astype(str)))
        return layers

    def _loaded(self) -> Any:
        if self._compiled is None:
            raise EdgeresError(f"{self.name}: load() the runner before asking what it executes")
        return self._compiled

    def _infer_impl(self, batch: np.ndarray) -> np.ndarray:
        return self._run(self._request, batch)

    def _run(self, request: Any, batch: np.ndarray) -> np.ndarray:
        """`batch` through the infer request `request`: OpenVINO reads the (contiguous) batch in place; outputs come
        back as a copy, so the logits outlive the next call on the same request."""
        try:
            outputs = request.infer({0: batch}, share_inputs=True)
        except RuntimeError as exc:  # OpenVINO's inference errors, multi-line: one line naming the file
            raise UserInputError(f"{self.artifact}: OpenVINO failed to run it ({_one_line(exc)})") from exc
        return np.asarray(outputs[0])

    def _close_impl(self) -> None:
        self._request = None
        self._compiled = None


def _input_spec(model: Any, artifact: Path) -> TensorSpec:
    """The one input of the model read by OpenVINO, as a TensorSpec (None for each dynamic axis)."""
    inputs = model.inputs
    if len(inputs) != 1:
        raise UserInputError(f"{artifact}: {len(inputs)} inputs, a classifier with one input is expected")
    port = inputs[0]
    name = port.any_name
    try:
        dtype = np.dtype(port.get_element_type().to_dtype())
    except Exception as exc:  # an element type without a numpy equivalent (bf16, u4 ...)
        raise UserInputError(f"{artifact}: input '{name}' has unsupported type {port.get_element_type()}") from exc
    if dtype not in _INPUT_TYPES:
        raise UserInputError(f"{artifact}: input '{name}' has unsupported type {dtype}")
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        raise UserInputError(f"{artifact}: input '{name}' has no fixed rank")
    return TensorSpec(name, dtype, tuple(int(d.get_length()) if d.is_static else None for d in shape))


def _one_line(exc: BaseException) -> str:
    """An OpenVINO exception as one line: its type and message, without the source locations it opens with."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_LOCATION_LINES)]
    return f"{type(exc).__name__}: {' '.join(kept)}" if kept else type(exc).__name__
