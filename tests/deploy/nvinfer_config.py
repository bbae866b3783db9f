"""Reading an nvinfer config as Gst-nvinfer does: GLib's GKeyFile, one typed getter per key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgeres.deploy.nvinfer import NVINFER_KEYS, PROPERTY_GROUP
from tests.deploy.gkeyfile import KeyFile, glib

# Every [property] key defined in gstnvinfer_property_parser.h of both DeepStream 6.3
# (sources/gst-plugins/gst-nvinfer) and 9.1 (NVIDIA/DeepStream src/gst-plugins/gst-nvinfer).
# fmt: off
DOCUMENTED_KEYS = frozenset((
    "auto-inc-mem", "batch-size", "classifier-async-mode", "classifier-threshold", "classifier-type",
    "cluster-mode", "crop-objects-to-roi-boundary", "custom-lib-path", "custom-network-config",
    "disable-output-host-copy", "enable-dbscan", "enable-dla", "engine-create-func-name", "filter-out-class-ids",
    "force-implicit-batch-dim", "gie-unique-id", "gpu-id", "infer-dims", "input-dims", "input-object-max-height",
    "input-object-max-width", "input-object-min-height", "input-object-min-width", "input-tensor-from-meta",
    "int8-calib-file", "interval", "is-classifier", "labelfile-path", "layer-device-precision",
    "maintain-aspect-ratio", "max-gpu-mem-per", "mean-file", "model-color-format", "model-engine-file",
    "model-file", "net-scale-factor", "network-input-order", "network-mode", "network-type",
    "num-detected-classes", "offsets", "onnx-file", "operate-on-class-ids", "operate-on-gie-id",
    "output-blob-names", "output-instance-mask", "output-io-formats", "output-tensor-meta", "parse-bbox-func-name",
    "parse-bbox-instance-mask-func-name", "parse-classifier-func-name", "parse-func", "process-mode", "proto-file",
    "scaling-compute-hw", "scaling-filter", "secondary-reinfer-interval", "segmentation-output-order",
    "segmentation-threshold", "symmetric-padding", "tensor-meta-pool-size", "tlt-encoded-model", "tlt-model-key",
    "uff-file", "uff-input-blob-name", "uff-input-dims", "uff-input-order", "use-dla-core", "workspace-size",
))
# fmt: on


def require_glib() -> None:
    """Skip the calling test where GLib is not installed (it is wherever GStreamer, and so DeepStream, is)."""
    try:
        glib()
    except OSError as exc:
        pytest.skip(f"GLib's GKeyFile, which nvinfer parses its config with, is not installed: {exc}")


def read_property_group(config: Path) -> dict[str, Any]:
    """Every key of the config, read with the getter nvinfer uses for it; a key nvinfer does not define,
    a value its getter refuses, or a group besides [property] fails the test."""
    require_glib()
    with KeyFile(config) as keyfile:
        assert keyfile.groups() == [PROPERTY_GROUP]
        values = {}
        for key in keyfile.keys(PROPERTY_GROUP):
            assert key in DOCUMENTED_KEYS, f"{key} is not a Gst-nvinfer key"
            values[key] = keyfile.get(PROPERTY_GROUP, key, NVINFER_KEYS[key])
        return values
