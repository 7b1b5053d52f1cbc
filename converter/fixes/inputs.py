"""Graph input dtypes the target rejects: uint8 -> float32, int64 -> int32."""
import numpy as np
import onnx
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import node_label, replace_uses, target_allows_dtype, unique_name


def fix_inputs_to_float(graph, target, context):
    """uint8 graph inputs become float32 when the target rejects UINT8 (TensorRT < 8.5).

    The Cast to float that followed such an input is removed; a Cast to another type now casts
    from float32. Image pixels 0..255 are exact in float32, so numerics are unchanged.
    """
    if target_allows_dtype(target, "uint8"):
        return []
    reports = []
    for tensor in graph.inputs:
        if tensor.dtype is None or np.dtype(tensor.dtype) != np.uint8:
            continue
        changed = []
        for node in list(tensor.outputs):
            if node.op != "Cast":
                raise FixError("graph input {!r} is uint8, which target {} rejects, and node {!r} ({}) uses it as "
                               "uint8; export the model with a float32 input, or cast to float first in the "
                               "model".format(tensor.name, target.name, node_label(node), node.op))
            if int(node.attrs["to"]) == onnx.TensorProto.FLOAT:
                replace_uses(graph, node.outputs[0], tensor)
                node.outputs.clear()
            changed.append(node_label(node))
        tensor.dtype = np.float32
        reports.append(FixReport("inputs_to_float", [tensor.name] + changed,
                                 "graph input {!r} uint8 -> float32 (target {} rejects UINT8); the Cast after it "
                                 "now reads float32 or is gone".format(tensor.name, target.name)))
    return reports


def fix_int64_inputs(graph, target, context):
    """int64 graph inputs become int32 on targets without INT64, cast back to int64 inside the graph."""
    if target_allows_dtype(target, "int64"):
        return []
    reports = []
    for tensor in graph.inputs:
        if tensor.dtype is None or np.dtype(tensor.dtype) != np.int64:
            continue
        widened = gs.Variable(unique_name(graph, tensor.name + "_int64"), dtype=np.int64, shape=tensor.shape)
        replace_uses(graph, tensor, widened)
        cast = gs.Node("Cast", name=unique_name(graph, tensor.name + "_to_int64"), attrs={"to": onnx.TensorProto.INT64},
                       inputs=[tensor], outputs=[widened])
        graph.nodes.append(cast)
        tensor.dtype = np.int32
        reports.append(FixReport("int64_inputs", [tensor.name, cast.name],
                                 "graph input {!r} int64 -> int32 (target {} has no INT64), cast to int64 by "
                                 "{!r}".format(tensor.name, target.name, cast.name)))
    return reports
