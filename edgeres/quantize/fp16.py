"""FP32 ONNX -> FP16 ONNX (weights and compute), front-end nodes and float32 I/O kept."""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from edgeres.frontend.graph import NODE_PREFIX
from edgeres.quantize.qdq import name_nodes, sort_nodes


def to_fp16(model: onnx.ModelProto, keep_io_float: bool = True, keep_nodes: Iterable[str] = ()) -> onnx.ModelProto:
    """Weights and compute in FP16; graph inputs/outputs stay float32 when `keep_io_float`.

    Uses onnxruntime's own converter (onnxruntime.transformers.float16, shipped with onnxruntime, so no
    extra dependency); it inserts the boundary casts and its result runs on onnxruntime CPU. Front-end
    nodes stay float32: colour conversion needs more than FP16's 11-bit mantissa near white.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = onnx.ModelProto()
    source.CopyFrom(model)
    name_nodes(source)
    block = [n.name for n in source.graph.node if n.name.startswith(NODE_PREFIX)] + list(keep_nodes)
    converted = convert_float_to_float16(
        source, keep_io_types=keep_io_float, node_block_list=block or None, disable_shape_infer=False
    )
    sort_nodes(converted)  # the converter appends its input casts at the end of the node list
    onnx.checker.check_model(converted)
    return converted

