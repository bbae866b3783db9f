"""FP32 ONNX -> FP16 ONNX (weights and compute), chosen nodes and float32 graph I/O kept.

onnxruntime's converter (onnxruntime.transformers.float16, shipped with onnxruntime, so no extra
dependency) does the conversion; it inserts the boundary casts and its result runs on onnxruntime CPU.
Its `node_block_list` does not keep a region in float32: it types every tensor FP16 and wraps each
blocked node in casts, so a chain of blocked nodes is rounded to FP16 between every two of them. Kept
nodes are therefore split off instead: they must come first (read only graph inputs, constants and one
another, as the camera front-end does), the rest of the graph is converted alone with its float32 inputs
cast to FP16 right where it reads them, and the two are joined again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import onnx
from onnx import TensorProto, helper

from edgeres.errors import UserInputError
from edgeres.frontend.graph import NODE_PREFIX
from edgeres.quantize.qdq import name_nodes, sort_nodes


def to_fp16(model: onnx.ModelProto, keep_io_float: bool = True, keep_nodes: Iterable[str] = ()) -> onnx.ModelProto:
    """Weights and compute in FP16; graph inputs/outputs stay float32 when `keep_io_float`.

    Front-end nodes stay float32: colour conversion needs more than FP16's 11-bit mantissa near white.
    """
    source = onnx.ModelProto()
    source.CopyFrom(model)
    name_nodes(source)
    block = [n.name for n in source.graph.node if n.name.startswith(NODE_PREFIX)] + list(keep_nodes)
    return convert_to_fp16(source, block, keep_io_float)


def _converter(model: onnx.ModelProto, keep_io_float: bool, op_block_list: list[str] | None) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(
        model, keep_io_types=keep_io_float, op_block_list=op_block_list, disable_shape_infer=False
    )
    sort_nodes(converted)  # the converter appends its casts at the end of the node list
    return converted


def _split_off(model: onnx.ModelProto, keep: Collection[str]) -> tuple[list[onnx.NodeProto], onnx.ModelProto]:
    """(the kept nodes, a model of the other nodes whose inputs are what they read from the kept ones)."""
    graph = model.graph
    kept = [n for n in graph.node if n.name in keep]
    rest = [n for n in graph.node if n.name not in keep]
    from_kept = {out for n in kept for out in n.output}
    from_rest = {out for n in rest for out in n.output}
    for node in kept:
        late = [name for name in node.input if name in from_rest]
        if late:
            raise UserInputError(
                f"node '{node.name}' to keep in float32 reads '{late[0]}', computed by converted nodes"
            )
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    graph_inputs = {i.name for i in graph.input}
    boundary = list(dict.fromkeys(name for n in rest for name in n.input if name in from_kept or name in graph_inputs))
    missing = [name for name in boundary if name not in infos]
    if missing:
        raise UserInputError(f"no type known for tensor '{missing[0]}' between kept and converted nodes")
    used = {name for n in rest for name in n.input}
    part = helper.make_graph(
        rest,
        graph.name,
        [infos[name] for name in boundary],
        [o for o in graph.output if o.name in from_rest],
        [init for init in graph.initializer if init.name in used],
    )
    sub = helper.make_model(part, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    return kept, sub


def convert_to_fp16(
    model: onnx.ModelProto,
    keep_nodes: Collection[str] = (),
    keep_io_float: bool = True,
    op_block_list: list[str] | None = None,
) -> onnx.ModelProto:
    """Every float tensor in FP16 except those `keep_nodes` compute (see the module docstring).

    `op_block_list` is the converter's (None: its default list, [] converts every op type).
    """
    source = onnx.ModelProto()
    source.CopyFrom(model)
    name_nodes(source)
    keep = set(keep_nodes)
    if not keep.intersection(n.name for n in source.graph.node):
        converted = _converter(source, keep_io_float, op_block_list)
        onnx.checker.check_model(converted)
        return converted
    kept, sub = _split_off(source, keep)
    converted = _converter(sub, True, op_block_list)
    graph = source.graph
    kept_inits = {name for n in kept for name in n.input}
    initializers = [i for i in graph.initializer if i.name in kept_inits] + list(converted.graph.initializer)
    outputs = list(graph.output)
    if not keep_io_float:
        for output in outputs:
            if output.type.tensor_type.elem_type == TensorProto.FLOAT:
                raise UserInputError(f"output '{output.name}' stays float32 when nodes are kept in float32")
    joined = helper.make_graph(
        kept + list(converted.graph.node),
        graph.name,
        list(graph.input),
        outputs,
        initializers,
        value_info=[v for v in converted.graph.value_info if v.name not in {i.name for i in converted.graph.input}],
    )
    out = helper.make_model(joined, opset_imports=list(source.opset_import), ir_version=source.ir_version)
    out.producer_name, out.doc_string = source.producer_name, source.doc_string
    sort_nodes(out)
    onnx.checker.check_model(out)
    return out
