"""The Gst-nvinfer config file: the keys edgeres writes, the GLib type nvinfer reads each with, and the
engine file name nvinfer serialises a built engine to.

nvinfer loads its config with GLib's GKeyFile (`g_key_file_load_from_file`) and reads every key of the
[property] group with one typed getter (gstnvinfer_property_parser.cpp: DeepStream 6.3's
sources/gst-plugins/gst-nvinfer and 9.1's src/gst-plugins/gst-nvinfer in NVIDIA/DeepStream read these
keys with the same getters; the keys are listed in "Gst-nvinfer File Configuration Specifications",
https://docs.nvidia.com/metropolis/deepstream/dev-guide/text/DS_plugin_gst-nvinfer.html). A value is
rendered here for its getter, so a key nvinfer does not know, or a value its getter refuses, cannot be
written.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from edgeres.artifacts.precision import Precision
from edgeres.errors import UserInputError


class KeyType(enum.Enum):
    """The GKeyFile getter nvinfer reads a key with (g_key_file_get_<value>)."""

    INTEGER = "integer"
    BOOLEAN = "boolean"
    DOUBLE = "double"
    STRING = "string"
    STRING_LIST = "string_list"
    INTEGER_LIST = "integer_list"
    DOUBLE_LIST = "double_list"


PROPERTY_GROUP = "property"  # CONFIG_GROUP_PROPERTY, the one group nvinfer requires

# Each [property] key edgeres writes, with the getter gstnvinfer_property_parser.cpp reads it with.
NVINFER_KEYS: dict[str, KeyType] = {
    "gpu-id": KeyType.INTEGER,
    "onnx-file": KeyType.STRING,
    "model-engine-file": KeyType.STRING,
    "labelfile-path": KeyType.STRING,
    "int8-calib-file": KeyType.STRING,
    "batch-size": KeyType.INTEGER,
    "network-mode": KeyType.INTEGER,
    "net-scale-factor": KeyType.DOUBLE,
    "offsets": KeyType.DOUBLE_LIST,
    "model-color-format": KeyType.INTEGER,
    "network-input-order": KeyType.INTEGER,
    "infer-dims": KeyType.INTEGER_LIST,
    "output-blob-names": KeyType.STRING_LIST,
    "network-type": KeyType.INTEGER,
    "process-mode": KeyType.INTEGER,
    "classifier-threshold": KeyType.DOUBLE,
    "gie-unique-id": KeyType.INTEGER,
    "maintain-aspect-ratio": KeyType.BOOLEAN,
}

# Paths nvinfer resolves against the config file's folder when relative (get_absolute_file_path).
FILE_KEYS = ("onnx-file", "model-engine-file", "labelfile-path", "int8-calib-file")

# NvDsInferNetworkMode (nvdsinfer_context.h): FP32 = 0, INT8 = 1, FP16 = 2; networkMode2Str names them
# fp32 / int8 / fp16 in engine file names (nvdsinfer_func_utils.cpp).
NETWORK_MODE = {Precision.FP32: 0, Precision.INT8: 1, Precision.FP16: 2}
MODE_NAME = {Precision.FP32: "fp32", Precision.INT8: "int8", Precision.FP16: "fp16"}

Value = int | bool | float | str | Sequence[int] | Sequence[float] | Sequence[str]


def nvinfer_engine_name(onnx_name: str, batch_size: int, gpu_id: int, precision: Precision) -> str:
    """The file nvinfer serialises the engine it builds from `onnx_name` to, beside that ONNX.

    TrtModelBuilder::buildModel (nvdsinfer_model_builder.cpp, DeepStream 6.3 and 9.1 alike) names it
    `<model path>_b<batch-size>_gpu<gpu-id>_<mode>.engine`, and NvDsInferContextImpl serialises the new
    engine there; DeepStream's own samples point model-engine-file at that name (deepstream_python_apps
    1.2.0 for DeepStream 7.1: `resnet18_trafficcamnet_pruned.onnx_b1_gpu0_int8.engine`), so the first start
    builds and saves it and every later start loads it.
    """
    return f"{onnx_name}_b{batch_size}_gpu{gpu_id}_{MODE_NAME[precision]}.engine"


@dataclass(frozen=True)
class NvinferEntry:
    """One `key=value` line of the [property] group, with the comment lines written above it."""

    key: str
    value: Value
    comment: tuple[str, ...] = ()

    def render(self) -> list[str]:
        kind = NVINFER_KEYS.get(self.key)
        if kind is None:
            raise ValueError(f"'{self.key}' is not a Gst-nvinfer key edgeres knows")
        return [f"# {line}" for line in self.comment] + [f"{self.key}={_render(kind, self.value, self.key)}"]


LIST_ITEM = {
    KeyType.STRING_LIST: KeyType.STRING,
    KeyType.INTEGER_LIST: KeyType.INTEGER,
    KeyType.DOUBLE_LIST: KeyType.DOUBLE,
}


def _render(kind: KeyType, value: object, key: str) -> str:
    """`value` as GKeyFile's getter for `kind` reads it back: true/false, decimals, items joined by ';'."""
    refusal = UserInputError(f"nvinfer config key {key}: {value!r} cannot be written as a {kind.value}")
    if kind in LIST_ITEM:
        if not isinstance(value, list | tuple) or not value:
            raise refusal
        return ";".join(_render(LIST_ITEM[kind], item, key) for item in value)
    if kind is KeyType.BOOLEAN:
        if not isinstance(value, bool):
            raise refusal
        return "true" if value else "false"
    if kind is KeyType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise refusal
        return str(value)
    if kind is KeyType.DOUBLE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refusal
        return f"{float(value):.10g}"
    # GKeyFile strips the spaces around a value, reads backslash escapes and splits lists at ';'.
    if not isinstance(value, str) or not value or value != value.strip() or any(c in value for c in "\\;\n\r"):
        raise refusal
    return value


def nvinfer_config_text(header: Sequence[str], entries: Sequence[NvinferEntry]) -> str:
    """The config file: comment lines, then the [property] group."""
    lines = [f"# {line}" for line in header] + [f"[{PROPERTY_GROUP}]"]
    for entry in entries:
        lines += entry.render()
    return "\n".join(lines) + "\n"
