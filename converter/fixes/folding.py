"""Constant folding: everything computable at build time becomes an initializer."""
import numpy as np
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.fixes.graph_tools import node_label, replace_uses, static_shape, unique_name


def _fold_static_shapes(graph):
    """Shape of a statically shaped tensor -> a constant, honouring Shape-15's start/end, which
    graph.fold_constants(fold_shapes=True) ignores (it would fold the whole shape)."""
    for node in [node for node in graph.nodes if node.op == "Shape"]:
        shape = static_shape(node.inputs[0])
        if shape is None:
            continue
        start, end = node.attrs.get("start", 0), node.attrs.get("end", None)
        value = gs.Constant(unique_name(graph, node.outputs[0].name + "_value"),
                            np.array(shape[start:end], dtype=np.int64))
        replace_uses(graph, node.outputs[0], value)
        node.outputs.clear()


def fix_fold_constants(graph, target, context):
    """graph.fold_constants(fold_shapes=True) + cleanup; reports the nodes that were folded away.

    Shape computations (Shape -> Gather -> Concat -> Reshape/Resize...) on static shapes vanish,
    which is what TensorRT 8.2 needs for Resize scales, Slice axes, Pad amounts and the like.
    """
    before = {id(node): node_label(node) for node in graph.nodes}
    _fold_static_shapes(graph)
    graph.fold_constants(fold_shapes=True, error_ok=True).cleanup(remove_unused_graph_inputs=False)
    remaining = {id(node) for node in graph.nodes}
    folded = [label for key, label in before.items() if key not in remaining]
    if not folded:
        return []
    return [FixReport("fold_constants", folded, "{} node(s) computed at build time folded into "
                                                "initializers".format(len(folded)))]
